"""The deploy and rollout components' python_func with tmp-path artifacts, and the deployment pipeline."""

from __future__ import annotations

import json

import pytest
import yaml
from kfp import dsl

from kfpkit.components.deploy import isvc
from kfpkit.components.deploy.component import deploy
from kfpkit.components.rollout.analysis import Measurement
from kfpkit.components.rollout.logic import rollout_metrics, run_rollout_task
from kfpkit.core.records import RecordError
from kfpkit.core.registry import PushedModel
from kfpkit.core.traffic import Side, Traffic
from tests.deploy.conftest import DIGEST


def _api_client_for(monkeypatch, server):
    real = isvc.api_client
    monkeypatch.setattr(isvc, "api_client", lambda **kwargs: real(host=server.url))


def test_fake_kube_deploy_component_reads_the_pushed_model_and_writes_the_status(fake_kube, monkeypatch, tmp_path):
    server = fake_kube()
    _api_client_for(monkeypatch, server)
    pushed = tmp_path / "pushed.json"
    pushed.write_text(PushedModel("gs://r/fraud/4", 4, DIGEST, True, "fraud", "gs://r").to_json())
    status = dsl.Markdown(uri=str(tmp_path / "status.md"))
    status.path = str(tmp_path / "status.md")
    model = dsl.Model(uri=str(pushed))
    model.path = str(pushed)
    out = deploy.python_func(
        isvc_name="fraud", namespace="models", status=status, pushed_model=model, timeout_seconds=10.0
    )
    assert out.stable_version == "4" and out.canary_version == "" and out.canary_traffic_percent == 0
    assert "| 4 (stable)" in (tmp_path / "status.md").read_text()
    created = server.objects[("models", "fraud")]["spec"]["predictor"]["containers"][0]
    assert created["image"].startswith("ghcr.io/kfpkit/kfpkit-serving:")
    assert DIGEST in created["args"]


def _status(tmp_path):
    status = dsl.Markdown(uri=str(tmp_path / "status.md"))
    status.path = str(tmp_path / "status.md")
    return status


def test_fake_kube_deploy_component_without_model_version_takes_it_from_the_model_uri(fake_kube, monkeypatch, tmp_path):
    server = fake_kube()
    _api_client_for(monkeypatch, server)
    out = deploy.python_func(
        isvc_name="fraud",
        namespace="models",
        status=_status(tmp_path),
        model_uri="gs://r/models/fraud/7",
        content_sha256=DIGEST,
        timeout_seconds=10.0,
    )
    assert out.stable_version == "7"
    labels = server.objects[("models", "fraud")]["spec"]["predictor"]["labels"]
    assert labels == {isvc.VERSION_LABEL: "7"}


def test_fake_kube_deploy_component_labels_the_given_int_model_version(fake_kube, monkeypatch, tmp_path):
    server = fake_kube()
    _api_client_for(monkeypatch, server)
    out = deploy.python_func(
        isvc_name="fraud",
        namespace="models",
        status=_status(tmp_path),
        model_uri="gs://bucket/exported/fraud",
        model_version=3,
        content_sha256=DIGEST,
        timeout_seconds=10.0,
    )
    assert out.stable_version == "3"


def test_deploy_component_refuses_a_non_registry_model_uri_without_model_version_naming_the_parameter(tmp_path):
    with pytest.raises(isvc.DeployError, match=r"model_version is not set \(0\) and model_uri 'gs://bucket/m'"):
        deploy.python_func(
            isvc_name="fraud",
            namespace="models",
            status=_status(tmp_path),
            model_uri="gs://bucket/m",
            content_sha256=DIGEST,
        )


def test_deploy_component_refuses_a_pushed_model_without_its_digest_naming_the_field(tmp_path):
    pushed = tmp_path / "pushed.json"
    pushed.write_text(json.dumps({"record": "pushed model", "record_version": 1, "model_uri": "gs://r/fraud/4"}))
    model = dsl.Model(uri=str(pushed))
    model.path = str(pushed)
    status = dsl.Markdown(uri=str(tmp_path / "status.md"))
    status.path = str(tmp_path / "status.md")
    with pytest.raises(RecordError, match=r"pushed\.json: version is missing"):
        deploy.python_func(isvc_name="fraud", namespace="models", status=status, pushed_model=model)


class _QuietSource:
    """No metrics at all (a Prometheus with no samples): every step is inconclusive."""

    def measure(self, traffic: Traffic, side, interval_s, at=None) -> Measurement:
        return Measurement()


class _Backend:
    def __init__(self):
        self.percent, self.calls = 0, []

    def current(self):
        return Traffic("models", "fraud", Side("1"), Side("2"), self.percent)

    def set_canary_percent(self, percent):
        self.calls.append(percent)
        self.percent = percent
        return self.current()

    def promote(self):
        self.calls.append("promote")
        return self.current()

    def rollback(self):
        self.calls.append("rollback")
        self.percent = 0
        return self.current()


def test_rollout_task_with_no_data_rolls_back_and_writes_markdown_json_and_metrics(tmp_path, monkeypatch):
    from kfpkit.components.rollout import logic

    monkeypatch.setattr(logic, "PrometheusSource", lambda client, templates: _QuietSource())
    backend = _Backend()
    record = run_rollout_task(
        name="fraud",
        namespace="models",
        prometheus_url="http://127.0.0.1:9",
        record_markdown_path=str(tmp_path / "record.md"),
        record_json_path=str(tmp_path / "record.json"),
        interval_s=0.01,
        max_inconclusive=2,
        backend=backend,
    )
    assert record.decision == "rollback" and backend.calls == [10, "rollback"]
    assert json.loads((tmp_path / "record.json").read_text())["decision"] == "rollback"
    assert "| 1 | 10% | error_rate | slo |" in (tmp_path / "record.md").read_text()
    assert rollout_metrics(record)["promoted"] == 0.0


def test_deployment_pipeline_runs_the_rollout_only_when_deploy_left_a_canary(tmp_path):
    from kfpkit.pipelines import targets

    path = targets.compile_pipeline("deployment", "kubeflow", str(tmp_path))
    spec = next(yaml.safe_load_all(open(path, encoding="utf-8")))
    condition = spec["components"]["comp-condition-1"]["dag"]["tasks"]["rollout"]
    assert condition["componentRef"]["name"] == "comp-rollout"
    trigger = spec["root"]["dag"]["tasks"]["condition-1"]["triggerPolicy"]["condition"]
    assert "canary_version" in trigger and "!= ''" in trigger
