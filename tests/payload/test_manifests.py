"""manifests/payload-sink and overlays/payload-logging: render with kubectl's kustomize, validate against the
Kubernetes schemas and the KServe CRD, and point the ISVC logger at the sink's Service with args the CLI takes."""

import argparse

import pytest

from kfpkit.cli import payload_sink as payload_sink_cli
from tests.manifests import kserve_schemas
from tests.manifests.kustomize import PORTABLE_FIELDS, kustomization_fields, render_all

FOLDERS = ["payload-sink", "overlays/payload-logging"]


@pytest.fixture(scope="module")
def rendered():
    return render_all(FOLDERS)


def _one(docs, kind):
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


@pytest.mark.parametrize("name", FOLDERS)
def test_kustomizations_use_only_fields_kustomize_v2_also_accepts(name):
    assert kustomization_fields(name) <= PORTABLE_FIELDS


def test_sink_objects_validate_against_the_kubernetes_schemas(rendered):
    import kubernetes_validate

    docs = rendered["payload-sink"]
    assert {d["kind"] for d in docs} == {
        "ServiceAccount",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "NetworkPolicy",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, "1.32.0", strict=True)


def test_logger_points_at_the_sink_service_and_validates_against_the_kserve_crd(rendered):
    docs = rendered["overlays/payload-logging"]
    isvc = _one(docs, "InferenceService")
    assert not kserve_schemas.schema_errors(isvc, kserve_schemas.isvc_schema())
    logger = isvc["spec"]["predictor"]["logger"]
    service = _one(docs, "Service")
    assert logger == {
        "mode": "all",
        "url": f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local",
    }
    assert service["spec"]["ports"][0]["port"] == 80


def test_sink_container_args_parse_with_the_payload_sink_cli_and_mount_the_spool(rendered):
    from kfpkit.components import images

    deployment = _one(rendered["payload-sink"], "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == images.serving_image() and container["command"] == ["kfpkit"]
    parser = argparse.ArgumentParser()
    payload_sink_cli.add_arguments(parser)
    args = parser.parse_args(container["args"][1:])
    assert container["args"][0] == "payload-sink"
    assert payload_sink_cli.parse_models(args.model) == {"fraud-detector": "gs://kfpkit-registry/fraud-detector/1"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts[args.spool]]["persistentVolumeClaim"]["claimName"] == "kfpkit-payload-sink-spool"
    assert deployment["spec"]["strategy"]["type"] == "Recreate" and deployment["spec"]["replicas"] == 1
