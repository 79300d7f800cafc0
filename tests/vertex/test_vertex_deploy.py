"""deploy and the traffic moves of the Vertex backend against the fake aiplatform v1 REST API."""

from __future__ import annotations

import pytest

from kfpkit.components.deploy import vertex as deploy_vertex
from kfpkit.components.deploy.isvc import DeployError
from kfpkit.components.rollout.vertex import VertexEndpointBackend
from tests.vertex import helpers
from tests.vertex.conftest import MODEL_NAME


def test_first_deploy_uploads_a_version_creates_the_endpoint_and_serves_it_at_100_percent(
    fakes, credentials, models, payload_root
):
    api = helpers.api(fakes, credentials)
    result = helpers.deploy(api, models, "stable", payload_root)
    assert fakes.vertex.problems == []
    assert result.action == "created" and result.stable_version == "1" and result.traffic == {"1": 100}
    (version,) = fakes.vertex.models[f"{api.where.parent}/models/{MODEL_NAME}"]
    spec = version.container_spec
    digest = helpers.digest(models["stable"])
    assert spec.args[spec.args.index("--expected-digest") + 1] == digest  # pinned, and enforced by the server
    assert {e.name: e.value for e in spec.env}[deploy_vertex.DIGEST_ENV] == digest
    assert version.labels[deploy_vertex.VERSION_LABEL] == "1"
    # every long-running operation was polled to its end
    polls = [path for method, path in fakes.vertex.requests if "/operations/" in path]
    assert len(polls) >= 3  # upload, create endpoint, deploy
    assert result.url.endswith(f"/endpoints/{helpers.ENDPOINT_ID}:predict")


def test_a_new_version_becomes_a_canary_of_the_same_model_and_redeploying_it_changes_nothing(
    fakes, credentials, models, payload_root
):
    api = helpers.api(fakes, credentials)
    payloads = payload_root
    helpers.deploy(api, models, "stable", payloads)
    result = helpers.deploy(api, models, "good", payloads, canary_percent=10)
    assert fakes.vertex.problems == []
    assert result.action == "canary" and result.traffic == {"1": 90, "2": 10}
    versions = fakes.vertex.models[f"{api.where.parent}/models/{MODEL_NAME}"]
    assert [v.version_id for v in versions] == ["1", "2"]  # one model, two versions (parent_model)
    again = helpers.deploy(api, models, "good", payloads)
    assert again.action == "unchanged" and again.traffic == {"1": 90, "2": 10}
    assert len(fakes.vertex.models[f"{api.where.parent}/models/{MODEL_NAME}"]) == 2
    with pytest.raises(DeployError, match="undecided canary"):
        helpers.deploy(api, models, "shifted", payloads)


def test_promote_moves_all_traffic_then_undeploys_the_stable_model(fakes, credentials, models, payload_root):
    api = helpers.api(fakes, credentials)
    payloads = payload_root
    helpers.deploy(api, models, "stable", payloads)
    helpers.deploy(api, models, "good", payloads)
    backend = VertexEndpointBackend(api, helpers.ENDPOINT_ID)
    assert backend.set_canary_percent(50).canary_percent == 50
    after = backend.promote()
    assert fakes.vertex.problems == []
    assert after.canary is None and after.stable.version == "2"
    (endpoint,) = fakes.vertex.endpoints.values()
    assert [d.model_version_id for d in endpoint.deployed_models] == ["2"]
    assert dict(endpoint.traffic_split) == {endpoint.deployed_models[0].id: 100}


def test_rollback_moves_all_traffic_back_then_undeploys_the_canary(fakes, credentials, models, payload_root):
    api = helpers.api(fakes, credentials)
    payloads = payload_root
    helpers.deploy(api, models, "stable", payloads)
    helpers.deploy(api, models, "shifted", payloads)
    after = VertexEndpointBackend(api, helpers.ENDPOINT_ID).rollback()
    assert fakes.vertex.problems == []
    assert after.canary is None and after.stable.version == "1" and after.canary_percent == 0
    (endpoint,) = fakes.vertex.endpoints.values()
    assert [d.model_version_id for d in endpoint.deployed_models] == ["1"]


def test_the_same_registry_version_with_another_digest_is_refused(fakes, credentials, models, payload_root):
    api = helpers.api(fakes, credentials)
    payloads = payload_root
    helpers.deploy(api, models, "stable", payloads)
    deployment = deploy_vertex.VertexDeployment(
        model_id=MODEL_NAME, endpoint_id="other-endpoint", image=helpers.IMAGE, payload_log=payloads
    )
    with pytest.raises(DeployError, match="cannot change its content"):
        deploy_vertex.run_vertex_deploy(
            api,
            deployment,
            model_name=MODEL_NAME,
            storage_uri=models["good"],
            version=1,
            content_sha256=helpers.digest(models["good"]),
        )


def test_deploy_refuses_bad_ids_and_a_missing_payload_log_before_calling_vertex(fakes, credentials):
    api = helpers.api(fakes, credentials)
    for deployment, message in (
        (deploy_vertex.VertexDeployment("9bad", "e", "img", "gs://p"), "model_id"),
        (deploy_vertex.VertexDeployment("m", "Bad_Endpoint", "img", "gs://p"), "endpoint_id"),
        (deploy_vertex.VertexDeployment("m", "e", "img", ""), "payload_log"),
    ):
        with pytest.raises(DeployError, match=message):
            deploy_vertex.run_vertex_deploy(
                api, deployment, model_name="m", storage_uri="gs://r/m/1", version=1, content_sha256="a" * 64
            )
    assert fakes.vertex.requests == []


def test_the_deploy_components_vertex_path_deploys_with_at_least_one_replica(fakes, credentials, models, payload_root):
    result = deploy_vertex.deploy_to_vertex(
        project=helpers.PROJECT,
        location=helpers.LOCATION,
        endpoint_id="component-endpoint",
        model_name=MODEL_NAME,
        storage_uri=models["stable"],
        version=1,
        content_sha256=helpers.digest(models["stable"]),
        image=helpers.IMAGE,
        payload_log=payload_root,
        min_replicas=0,  # Vertex does not scale a custom container to zero: deploy asks for one
        max_replicas=0,
        api_endpoint=fakes.vertex.url,
        credentials=credentials,
    )
    assert fakes.vertex.problems == []
    assert result.action == "created" and result.mode == deploy_vertex.VERTEX and result.traffic == {"1": 100}
    (endpoint,) = fakes.vertex.endpoints.values()
    assert endpoint.deployed_models[0].dedicated_resources.min_replica_count == 1
