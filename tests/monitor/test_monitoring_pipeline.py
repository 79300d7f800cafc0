"""The monitoring pipeline under kfp.local: drift → the nested continuous-training pipeline retrains, pushes and
deploys the new version (against the deploy tests' FakeKubeApiServer, a fake of the Kubernetes API) + alert."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.deploy.fake_kube import FakeKubeApiServer
from tests.pipelines.fake_cluster import task_env, write_kubeconfig

pytestmark = pytest.mark.slow


class _Webhook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        _Webhook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_drift_retrains_through_continuous_training_deploys_the_new_version_and_posts_the_alert(
    tmp_path, model_dir, mh
):
    live = mh.write_window(tmp_path / "live.parquet", 3000, seed=31, shift_names=["mean", "new_category"])
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    registry = tmp_path / "registry"
    kube = FakeKubeApiServer().start()  # the first version creates the InferenceService: nothing to roll out
    kubeconfig = write_kubeconfig(str(tmp_path / "kubeconfig"), kube.url, "models")
    cmd = [
        sys.executable, "-m", "kfpkit.cli.main", "run", "monitoring",
        "--model-uri", model_dir, "--live-source", live, "--registry-root", str(registry),
        "--alert-webhook-url", f"http://127.0.0.1:{server.server_port}/hook",
        "--retrain-source", "synthetic://fraud?rows=3000&seed=3&fraud_rate=0.08",
        "--label-column", "is_fraud", "--model-name", "fraud-detector",
        "--framework", "sklearn", "--min-pr-auc", "0.05",
        "--prometheus-url", "http://127.0.0.1:9", "--namespace", "models",
        "--pipeline-root", str(tmp_path / "outputs"), "--summary-json", str(tmp_path / "summary.json"),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=task_env(kubeconfig))
    finally:
        server.shutdown()
        kube.stop()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"monitor", "train", "push", "deploy"} <= set(summary["tasks"]), summary["tasks"]
    # the compiler names the monitoring pipeline's own alert drift-alert-2 (the nested pipeline has one too)
    assert [t for t in summary["tasks"] if t.startswith("drift-alert")] == ["drift-alert-2"], summary["tasks"]
    assert "rollout" not in summary["tasks"]
    assert "performance" not in summary["tasks"], "retrain_on defaults to drift: the performance check does not run"
    assert os.path.isfile(registry / "fraud-detector" / "1" / "MANIFEST.json")
    assert not kube.schema_violations, kube.schema_violations
    created = kube.objects[("models", "fraud-detector")]
    env = created["spec"]["predictor"]["containers"][0]["env"]
    assert {"name": "STORAGE_URI", "value": str(registry / "fraud-detector" / "1")} in env
    assert len(_Webhook.received) == 1
    alert = _Webhook.received[0]
    assert alert["event"] == "kfpkit.drift_detected" and alert["model_uri"] == model_dir
    assert sorted(alert["drifted_features"]) == ["c10", "f00"] and alert["triggered_by"] == ["drift"]


def test_concept_drift_retrains_on_performance_while_the_drift_monitor_stays_silent(tmp_path):
    from benchmarks.performance import traffic

    model_dir = traffic.make_model_dir(str(tmp_path / "monitored" / "fraud-detector" / "1"))
    generated = traffic.generate(16_000, 8, "concept", days=8, change_day=4)  # fraud moves, P(x) does not
    live, labels = tmp_path / "live.parquet", tmp_path / "labels.csv"
    generated.frame.to_parquet(live, index=False)
    traffic.labels_frame(generated).to_csv(labels, index=False)
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Webhook.received = []
    registry = tmp_path / "registry"
    cmd = [
        sys.executable, "-m", "kfpkit.cli.main", "run", "monitoring",
        "--model-uri", model_dir, "--live-source", str(live), "--registry-root", str(registry),
        "--retrain-on", "performance", "--performance-labels", json.dumps([str(labels)]),
        "--performance-maturity", "20d", "--performance-as-of", "2026-02-10T00:00:00Z",
        "--alert-webhook-url", f"http://127.0.0.1:{server.server_port}/hook",
        "--retrain-source", "synthetic://fraud?rows=3000&seed=3&fraud_rate=0.08",
        "--label-column", "is_fraud", "--model-name", "fraud-detector",
        "--framework", "sklearn", "--min-pr-auc", "0.05", "--no-deploy-new-version",
        "--prometheus-url", "http://127.0.0.1:9",
        "--pipeline-root", str(tmp_path / "outputs"), "--summary-json", str(tmp_path / "summary.json"),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"monitor", "performance", "retrain-decision", "train", "push"} <= set(summary["tasks"]), summary["tasks"]
    assert "performance-skipped" not in summary["tasks"]
    assert os.path.isfile(registry / "fraud-detector" / "1" / "MANIFEST.json")
    (alert,) = _Webhook.received
    assert alert["event"] == "kfpkit.performance_degraded" and alert["triggered_by"] == ["performance"]
    assert alert["drifted_features"] == [], "concept drift leaves the inputs, and the drift monitor, as they were"
