"""The Serverless split as the rollout reads it at every step, against the FakeKubeApiServer (a fake of the API)."""

from __future__ import annotations

import pytest

from kfpkit.components.deploy.logic import run_deploy
from kfpkit.components.rollout.kserve import kserve_backend
from tests.deploy.conftest import deploy_args


@pytest.mark.parametrize("percent", [10, 50, 100])
def test_fake_kube_serverless_canary_stays_the_canary_at_every_step_up_to_100_percent(fake_kube, api_for, percent):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1))
    run_deploy(api, **deploy_args(2))
    backend = kserve_backend("fraud", "models", host=server.url, timeout_s=10.0)

    traffic = backend.set_canary_percent(percent)

    assert traffic.canary is not None and traffic.canary.version == "2"
    assert traffic.stable.version == "1" and traffic.canary_percent == percent
    assert traffic.canary.revision == "fraud-predictor-00002" and traffic.stable.revision == "fraud-predictor-00001"


def test_fake_kube_serverless_rollback_at_100_percent_returns_every_request_to_the_stable_version(fake_kube, api_for):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1))
    run_deploy(api, **deploy_args(2))
    backend = kserve_backend("fraud", "models", host=server.url, timeout_s=10.0)
    backend.set_canary_percent(100)

    traffic = backend.rollback()

    assert traffic.canary_percent == 0 and traffic.stable.version == "1"
