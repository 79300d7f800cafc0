"""The pipeline runner's Role (manifests/pipeline-runner) grants exactly the verbs deploy and rollout send.

Every request deploy and the rollout's KServe backends make in their whole life cycle (create, canary,
each traffic step, promote, rollback; Serverless and Standard) is sent to the FakeKubeApiServer and
translated into the RBAC verb the real API server would authorize it as.
"""

from __future__ import annotations

import os
import urllib.parse

import pytest
import yaml

from kfpkit.components.deploy.logic import run_deploy
from kfpkit.components.rollout.kserve import kserve_backend
from tests.deploy.conftest import deploy_args

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "manifests", "pipeline-runner", "role.yaml")


def _verb(method: str, path: str) -> str:
    """The RBAC verb of one request on ``.../inferenceservices[/name]`` (as the API server's authorizer names it)."""
    parsed = urllib.parse.urlparse(path)
    named = not parsed.path.rstrip("/").endswith("/inferenceservices")
    if method == "GET":
        if named:
            return "get"
        watching = urllib.parse.parse_qs(parsed.query).get("watch", ["false"])[0].lower() in ("true", "1")
        return "watch" if watching else "list"
    return {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method]


def _role_verbs() -> set:
    with open(ROLE, encoding="utf-8") as fh:
        (role,) = [d for d in yaml.safe_load_all(fh) if d and d["kind"] == "Role"]
    (rule,) = [r for r in role["rules"] if r["apiGroups"] == ["serving.kserve.io"]]
    assert rule["resources"] == ["inferenceservices"]
    return set(rule["verbs"])


@pytest.mark.parametrize("mode", ["Serverless", "Standard"])
def test_fake_kube_deploy_and_rollout_use_exactly_the_verbs_the_runner_role_grants(fake_kube, api_for, mode):
    server = fake_kube()
    api = api_for(server)
    run_deploy(api, **deploy_args(1, mode=mode))
    run_deploy(api, **deploy_args(2, mode=mode))
    backend = kserve_backend("fraud", "models", host=server.url, timeout_s=10.0)
    backend.current()
    backend.set_canary_percent(50)
    backend.promote()
    run_deploy(api, **deploy_args(3, mode=mode))
    kserve_backend("fraud", "models", host=server.url, timeout_s=10.0).rollback()

    used = {_verb(method, path) for method, path, _content_type, _body in server.requests}
    assert used == _role_verbs()
