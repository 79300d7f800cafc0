"""Shared steps of the Vertex tests: deploy a scenario model through the real deploy code, against the fakes."""

from __future__ import annotations

import json
import os

from kfpkit.components.deploy import vertex as deploy_vertex
from kfpkit.core import model_dir as md
from tests.vertex.conftest import LOCATION, MODEL_NAME, PROJECT

VERSIONS = {"stable": 1, "good": 2, "errors": 3, "slow": 4, "shifted": 5}
ENDPOINT_ID = "fraud-endpoint"
IMAGE = "kfpkit-serving:test"


def digest(directory: str) -> str:
    with open(os.path.join(directory, md.MANIFEST_FILE), encoding="utf-8") as fh:
        return json.load(fh)["content_sha256"]


def api(fakes, credentials, poll_s: float = 0.05) -> deploy_vertex.VertexApi:
    where = deploy_vertex.VertexLocation(PROJECT, LOCATION, api_endpoint=fakes.vertex.url, timeout_s=240, poll_s=poll_s)
    return deploy_vertex.VertexApi(where, credentials)


def deploy(vertex_api, models, name: str, payload_log: str, canary_percent: int = 10, endpoint_id: str = ENDPOINT_ID):
    deployment = deploy_vertex.VertexDeployment(
        model_id=MODEL_NAME,
        endpoint_id=endpoint_id,
        image=IMAGE,
        payload_log=payload_log,
        payload_log_flush_seconds=0.5,
        canary_percent=canary_percent,
    )
    return deploy_vertex.run_vertex_deploy(
        vertex_api,
        deployment,
        model_name=MODEL_NAME,
        storage_uri=models[name],
        version=VERSIONS[name],
        content_sha256=digest(models[name]),
    )
