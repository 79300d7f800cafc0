"""The continuous-training pipeline end to end under kfp.local, against a fake KServe cluster.

Four ``kfpkit run continuous-training`` runs (the fewest that show each outcome) against one registry and
the fake cluster of ``tests/pipelines/fake_cluster.py`` (the deploy tests' fake Kubernetes API, validating
every object and patch against the KServe CRD; a real ``kfpkit serve`` per predictor; real Prometheus;
traffic routed by the ISVC's status):

1. the first model creates the InferenceService (nothing to roll out);
2. a model trained on three times the rows of the same table becomes a canary, and the analysis promotes it;
3. a model of another table (five times the fraud rate: its scores are shifted) becomes a canary, and the
   analysis rolls it back on the score distribution, and records the rollback in the registry (its
   ``LATEST_BLESSED`` names version 2 again);
4. the second run again: push finds the same model in version 2 and nothing is deployed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from kfpkit.components.ingest.synthetic import generate_fraud
from kfpkit.core.records import read_record
from kfpkit.core.registry import latest_blessed, list_versions, rolled_back_versions
from kfpkit.core.rollout_record import read_rollout_record
from kfpkit.core.run_summary import RunSummary
from kfpkit.pipelines.local import read_run_tasks
from tests import system_packages
from tests.deploy.fake_kube import VERSION_LABEL
from tests.pipelines import fake_cluster

pytestmark = pytest.mark.slow

MODEL = "fraud-detector"
NAMESPACE = "models"
TABLE = "synthetic://fraud?rows={rows}&seed=11&fraud_rate=0.1"
OTHER_TABLE = "synthetic://fraud?rows=10000&seed=12&fraud_rate=0.5"
# the canary analysis at test speed: 5 s steps at 40 requests of 10 rows a second. The p99 of two predictors
# on a busy shared box differs by tens of ms without any change in the model (the rollout scenario suite's
# floor, wider), and the scores of two retrains of one table differ a little (a 3,000-row and a 9,000-row
# model of this table: JS distance 0.27 at the first step): the models are trained on 10,000 and 30,000
# rows and the score limits leave room for a retrain, not for a model of another table. As in the rollout
# scenario suite, Prometheus's increase() extrapolates counts, which inflates the chi-square statistic.
ROLLOUT = {
    "interval_seconds": 5.0,
    "min_requests": 10,
    "max_inconclusive": 3,
    "rollout_thresholds": {
        "min_latency_increase_seconds": 0.1,
        "max_score_js": 0.2,
        "max_score_psi": 0.5,
        "score_alpha": 0.001,
    },
    "canary_percent": 10,
    "timeout_seconds": 300.0,
}


def _run(tmp_path, name, kubeconfig, prometheus_url, **parameters):
    params = {
        "registry_root": str(tmp_path / "registry"),
        "label_column": "is_fraud",
        "model_name": MODEL,
        "framework": "sklearn",
        "min_pr_auc": 0.05,
        "max_regression": 1.0,  # the gate is not under test here: every run is blessed
        "prometheus_url": prometheus_url,
        "namespace": NAMESPACE,
        **ROLLOUT,
        **parameters,
    }
    params_file = tmp_path / f"{name}.yaml"
    params_file.write_text(yaml.safe_dump(params))
    summary_path = tmp_path / f"{name}.json"
    cmd = [
        sys.executable, "-m", "kfpkit.cli.main", "run", "continuous-training", "--params-file", str(params_file),
        "--pipeline-root", str(tmp_path / "outputs"), "--summary-json", str(summary_path),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, check=False, env=fake_cluster.task_env(kubeconfig)
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    summary = read_record(str(summary_path), RunSummary)
    assert summary.status == "succeeded", proc.stdout[-4000:]
    return summary, read_run_tasks(summary.run_dir)


def _writes(kube, since=0):
    return [(method, body) for method, _path, _ct, body in kube.requests[since:] if method in ("POST", "PATCH")]


@pytest.fixture()
def cluster(tmp_path):
    system_packages.require("prometheus")
    prometheus = fake_cluster.DiscoveringPrometheus(str(tmp_path / "prometheus"))
    kube = fake_cluster.ServingFakeKube(str(tmp_path), prometheus)  # skips here without the KServe schemas
    rows = generate_fraud(2000, seed=99, fraud_rate=0.1).drop(columns=["is_fraud"]).to_dict(orient="records")
    traffic = fake_cluster.Traffic(kube, (NAMESPACE, MODEL), rows, rps=40.0, batch=10)
    kubeconfig = fake_cluster.write_kubeconfig(str(tmp_path / "kubeconfig"), kube.url, NAMESPACE)
    prometheus.start()
    try:
        kube.start()
        traffic.start()
        yield kube, prometheus, traffic, kubeconfig
    finally:
        traffic.stop()
        kube.stop()
        prometheus.stop()
    assert not kube.schema_violations, kube.schema_violations


def test_continuous_training_creates_promotes_rolls_back_and_leaves_an_unchanged_model_alone(tmp_path, cluster):
    kube, prometheus, traffic, kubeconfig = cluster
    key = (NAMESPACE, MODEL)

    # 1. the first version creates the InferenceService, with push's digest pinned; nothing to roll out
    first, tasks = _run(tmp_path, "run1", kubeconfig, prometheus.url, source=TABLE.format(rows=10000))
    assert (first.model_version, first.model_created) == (1, True)
    assert "deploy" in tasks and "rollout" not in tasks, sorted(tasks)
    ((method, created),) = _writes(kube)
    assert method == "POST"
    container = created["spec"]["predictor"]["containers"][0]
    (entry,) = list_versions(str(tmp_path / "registry"), MODEL)
    assert container["args"][container["args"].index("--expected-digest") + 1] == entry.content_sha256
    assert {"name": "STORAGE_URI", "value": first.model_uri} in container["env"]
    assert [(v, p) for v, _a, p in kube.split(key)] == [("1", 100)]

    # 2. a better model of the same table: a canary at 10 %, promoted after every step passed
    before = len(kube.requests)
    second, tasks = _run(tmp_path, "run2", kubeconfig, prometheus.url, source=TABLE.format(rows=30000))
    assert (second.model_version, second.model_created) == (2, True)
    assert tasks["deploy"].parameters["canary_version"] == "2"
    assert tasks["rollout"].parameters["decision"] == "promote", _record_text(tasks)
    record = read_rollout_record(_record_path(tasks))
    assert [s.weight for s in record.steps if s.verdict == "pass"] == [10, 25, 50, 100]
    assert (record.stable_version, record.canary_version) == ("1", "2")
    patches = [body for method, body in _writes(kube, before) if method == "PATCH"]
    assert patches[0]["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert "canaryTrafficPercent" not in kube.objects[key]["spec"]["predictor"]
    assert [(v, p) for v, _a, p in kube.split(key)] == [("2", 100)]
    assert traffic.sent.get(("2", 200), 0) > 0

    # 3. a model of another table: its canary is rolled back on the score distribution
    third, tasks = _run(tmp_path, "run3", kubeconfig, prometheus.url, source=OTHER_TABLE)
    assert (third.model_version, third.model_created) == (3, True)
    assert tasks["rollout"].parameters["decision"] == "rollback", _record_text(tasks)
    record = read_rollout_record(_record_path(tasks))
    failed = {row.metric for row in record.steps[-1].metrics if row.verdict == "fail"}
    assert failed & {"score_js_distance", "score_psi"}, _record_text(tasks)
    assert kube.objects[key]["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert kube.objects[key]["spec"]["predictor"]["labels"][VERSION_LABEL] == "3"
    assert [(v, p) for v, _a, p in kube.split(key)] == [("2", 100)]
    # the registry knows: LATEST_BLESSED names the version still serving, the next gate's baseline
    assert rolled_back_versions(str(tmp_path / "registry"), MODEL) == [3]
    assert latest_blessed(str(tmp_path / "registry"), MODEL).version == 2

    # 4. the second run's model again: push finds it in version 2, and nothing is deployed
    before, spec = len(kube.requests), kube.objects[key]["spec"]
    fourth, tasks = _run(tmp_path, "run4", kubeconfig, prometheus.url, source=TABLE.format(rows=30000))
    assert (fourth.model_version, fourth.model_created) == (2, False)
    assert "push" in tasks and "deploy" not in tasks and "rollout" not in tasks, sorted(tasks)
    assert kube.requests[before:] == [] and kube.objects[key]["spec"] == spec
    assert [e.version for e in list_versions(str(tmp_path / "registry"), MODEL)] == [1, 2, 3]


def _record_path(tasks) -> str:
    uri = tasks["rollout"].artifacts["record_json"]["uri"]
    return uri[len("file://") :] if uri.startswith("file://") else uri


def _record_text(tasks) -> str:
    path = _record_path(tasks)
    return open(path, encoding="utf-8").read() if os.path.exists(path) else "(no rollout record)"
