"""The FakeKubeApiServer (tests/deploy/fake_kube.py) and a deploy API client pointed at it."""

from __future__ import annotations

import pytest

from kfpkit.components.deploy import isvc
from tests.deploy.fake_kube import FakeKubeApiServer

DIGEST = "ab" * 32


@pytest.fixture()
def fake_kube():
    started = []

    def make(**kwargs) -> FakeKubeApiServer:
        server = FakeKubeApiServer(**kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        assert not server.schema_violations, server.schema_violations
        server.stop()


@pytest.fixture()
def api_for():
    def make(server: FakeKubeApiServer) -> isvc.InferenceServiceApi:
        return isvc.InferenceServiceApi(isvc.api_client(host=server.url))

    return make


def deploy_args(version: int, mode: str = "Serverless", **overrides):
    args = dict(
        name="fraud",
        namespace="models",
        storage_uri=f"gs://registry/fraud/{version}",
        version=version,
        content_sha256=DIGEST if version == 1 else f"{version:064x}",
        image="ghcr.io/kfpkit/kfpkit-serving:0.1.0",
        mode=mode,
        canary_percent=10,
        timeout_s=10.0,
    )
    args.update(overrides)
    return args
