"""deploy against the FakeKubeApiServer: create, canary per mode, refusals, timeouts, promote/rollback patches."""

from __future__ import annotations

import pytest

from kfpkit.components.deploy import isvc
from kfpkit.components.deploy.logic import resolve_version, run_deploy
from kfpkit.components.rollout.analysis import resume_index
from kfpkit.components.rollout.backends import KServeServerlessBackend, KServeStandardBackend
from kfpkit.components.rollout.kserve import kserve_backend
from tests.deploy.conftest import DIGEST, deploy_args


def _writes(server):
    return [(m, ct, body) for m, _path, ct, body in server.requests if m in ("POST", "PATCH")]


def test_fake_kube_deploy_creates_an_absent_isvc_with_the_digest_pinned_and_waits_for_ready(fake_kube, api_for):
    server = fake_kube()
    result = run_deploy(api_for(server), **deploy_args(1))
    assert result.action == "created"
    assert result.stable_version == "1" and result.canary_version == ""
    assert result.traffic == {"1": 100}
    assert result.url == "http://fraud.models.example.com"
    ((method, _ct, body),) = _writes(server)
    assert method == "POST"
    container = body["spec"]["predictor"]["containers"][0]
    assert container["args"][container["args"].index("--expected-digest") + 1] == DIGEST
    assert {"name": "STORAGE_URI", "value": "gs://registry/fraud/1"} in container["env"]
    assert body["spec"]["predictor"]["labels"] == {isvc.VERSION_LABEL: "1"}


def test_fake_kube_serverless_deploy_replaces_the_predictor_and_sets_canary_traffic_percent(fake_kube, api_for):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1, logger_url="http://sink.monitoring"))
    result = run_deploy(api, **deploy_args(2, canary_percent=10))
    assert result.action == "canary"
    assert result.traffic == {"1": 90, "2": 10}
    assert result.canary_revision == "fraud-predictor-00002" and result.stable_revision == "fraud-predictor-00001"
    method, content_type, patch = _writes(server)[-1]
    assert (method, content_type) == ("PATCH", "application/merge-patch+json")
    assert patch["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert patch["spec"]["predictor"]["logger"] is None  # removed with an explicit null
    assert "logger" not in server.objects[("models", "fraud")]["spec"]["predictor"]


def test_fake_kube_standard_deploy_adds_a_canary_entry_named_after_the_version(fake_kube, api_for):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1, mode="Standard"))
    result = run_deploy(api, **deploy_args(2, mode="Standard", canary_percent=20))
    spec = server.objects[("models", "fraud")]["spec"]
    assert [c["predictor"]["name"] for c in spec["canary"]] == ["v2"]
    assert spec["canary"][0]["trafficPercent"] == 20
    assert "canaryTrafficPercent" not in spec["predictor"]
    assert result.traffic == {"1": 80, "2": 20}
    status = server.objects[("models", "fraud")]["status"]
    assert status["canaryStatuses"] == [{"name": "v2", "ready": True, "trafficPercent": 20}]
    assert isvc.condition(server.objects[("models", "fraud")], "CanaryPredictorReady")["reason"] == "AllCanariesReady"


def test_fake_kube_standard_isvc_with_canary_traffic_percent_is_refused_loudly(fake_kube, api_for):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1, mode="Standard"))
    api.patch("fraud", "models", {"spec": {"predictor": {"canaryTrafficPercent": 10}}})  # what KServe would ignore
    with pytest.raises(isvc.DeployError, match="kserve#5335"):
        run_deploy(api, **deploy_args(2, mode="Standard"))


def test_fake_kube_cluster_crd_without_spec_canary_is_refused_not_silently_dropped(fake_kube, api_for):
    server = fake_kube(crd_without_canary=True)
    api = api_for(server)
    run_deploy(api, **deploy_args(1, mode="Standard"))
    with pytest.raises(isvc.DeployError, match=r"CRD has no spec.canary.*unknown field \"spec.canary\""):
        run_deploy(api, **deploy_args(2, mode="Standard"))
    assert "canary" not in server.objects[("models", "fraud")]["spec"]


def test_fake_kube_deploy_times_out_with_the_isvc_condition_messages(fake_kube, api_for):
    server = fake_kube(failing_versions={"2": "Revision fraud-predictor-00002 failed: model refused: digest mismatch"})
    api = api_for(server)
    run_deploy(api, **deploy_args(1))
    with pytest.raises(
        isvc.DeployError, match=r"not ready after 2s: .*Ready=False \(RevisionMissing: .*digest mismatch"
    ):
        run_deploy(api, **deploy_args(2, timeout_s=2.0))


def test_fake_kube_deploy_refuses_changing_the_mode_of_an_existing_isvc(fake_kube, api_for):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1))
    with pytest.raises(isvc.DeployError, match="runs in Serverless mode"):
        run_deploy(api, **deploy_args(2, mode="Standard"))


def test_fake_kube_serverless_promote_removes_canary_traffic_percent_with_null(fake_kube, api_for):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1))
    run_deploy(api, **deploy_args(2))
    backend = kserve_backend("fraud", "models", host=server.url, timeout_s=10)
    assert isinstance(backend, KServeServerlessBackend)
    assert backend.set_canary_percent(50).canary_percent == 50
    traffic = backend.promote()
    assert _writes(server)[-1][2]["spec"]["predictor"]["canaryTrafficPercent"] is None
    assert traffic.canary is None and traffic.stable.version == "2"
    predictor_status = server.objects[("models", "fraud")]["status"]["components"]["predictor"]
    assert predictor_status["traffic"] == [
        {"revisionName": "fraud-predictor-00002", "percent": 100, "latestRevision": True}
    ]


def test_fake_kube_serverless_rollback_sets_zero_percent(fake_kube, api_for):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1))
    run_deploy(api, **deploy_args(2))
    traffic = kserve_backend("fraud", "models", host=server.url, timeout_s=10).rollback()
    assert _writes(server)[-1][2] == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}
    assert traffic.canary_percent == 0 and traffic.stable.version == "1"


def test_fake_kube_standard_promote_and_rollback_rewrite_predictor_and_canary(fake_kube, api_for):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1, mode="Standard"))
    run_deploy(api, **deploy_args(2, mode="Standard"))
    backend = kserve_backend("fraud", "models", host=server.url, timeout_s=10)
    assert isinstance(backend, KServeStandardBackend)
    backend.set_canary_percent(25)
    traffic = backend.promote()
    spec = server.objects[("models", "fraud")]["spec"]
    assert spec["predictor"]["name"] == "v2" and spec["canary"] == []
    assert traffic.stable.version == "2" and traffic.canary is None
    assert isvc.condition(server.objects[("models", "fraud")], "CanaryPredictorReady") is None

    run_deploy(api, **deploy_args(3, mode="Standard"))
    backend.rollback()
    spec = server.objects[("models", "fraud")]["spec"]
    assert spec["canary"] == [] and spec["predictor"]["name"] == "v2"


def test_fake_kube_retried_rollout_reads_the_current_traffic_and_resumes_at_its_step(fake_kube, api_for):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1, mode="Standard"))
    run_deploy(api, **deploy_args(2, mode="Standard", canary_percent=10))
    kserve_backend("fraud", "models", host=server.url, timeout_s=10).set_canary_percent(25)
    traffic = kserve_backend("fraud", "models", host=server.url, timeout_s=10).current()  # a new task
    assert traffic.canary_percent == 25
    assert resume_index((10, 25, 50, 100), traffic.canary_percent) == 1


def test_fake_kube_deploy_writes_the_int_version_as_the_label_annotation_and_serve_flag(fake_kube, api_for):
    server = fake_kube()
    run_deploy(api_for(server), **deploy_args(12, storage_uri="gs://registry/fraud/12"))
    ((_method, _ct, body),) = _writes(server)
    assert body["metadata"]["annotations"][isvc.STABLE_VERSION_ANNOTATION] == "12"
    assert body["spec"]["predictor"]["labels"] == {isvc.VERSION_LABEL: "12"}
    args = body["spec"]["predictor"]["containers"][0]["args"]
    assert args[args.index("--model-version") + 1] == "12"


@pytest.mark.parametrize("mode", ["Serverless", "Standard"])
def test_fake_kube_deploying_the_stable_int_version_again_leaves_the_isvc_unchanged(fake_kube, api_for, mode):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1, mode=mode))
    result = run_deploy(api, **deploy_args(1, mode=mode))
    assert result.action == "unchanged" and result.stable_version == "1"
    assert len(_writes(server)) == 1


@pytest.mark.parametrize("version", ["1", 0, -1, True, 1.0])
def test_run_deploy_refuses_a_version_that_is_not_a_registry_version_number_naming_it(version):
    with pytest.raises(isvc.DeployError, match=r"version must be a registry version number 1, 2, \.\.\., got"):
        run_deploy(None, **dict(deploy_args(1), version=version))  # type: ignore[arg-type]  # refused before any call


def test_resolve_version_takes_model_version_else_parses_it_from_the_registry_version_uri():
    assert resolve_version("gs://registry/models/fraud/7", 7) == 7
    assert resolve_version("gs://registry/models/fraud/7") == 7
    assert resolve_version("gs://registry/models/fraud/7/", 0) == 7
    assert resolve_version("s3://bucket/not-a-version-uri", 5) == 5


@pytest.mark.parametrize("uri", ["gs://bucket/model.tar.gz", "gs://registry/fraud/latest", ""])
def test_resolve_version_without_a_version_refuses_a_uri_that_names_none_naming_model_version(uri):
    with pytest.raises(isvc.DeployError, match=r"model_version is not set \(0\) and model_uri .* is not a registry"):
        resolve_version(uri, 0)


@pytest.mark.parametrize("version", [-1, "3", True])
def test_resolve_version_refuses_a_model_version_that_is_not_a_number_naming_it(version):
    with pytest.raises(isvc.DeployError, match=r"model_version must be a registry version number"):
        resolve_version("gs://registry/models/fraud/7", version)


def test_resolve_version_refuses_a_model_version_that_disagrees_with_the_uri():
    with pytest.raises(isvc.DeployError, match=r"model_version 3 disagrees with model_uri .*version 7"):
        resolve_version("gs://registry/models/fraud/7", 3)
