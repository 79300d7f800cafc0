"""The rollout scenario table on the Vertex backend: real ``kfpkit serve`` containers behind the fake Endpoint.

The same scenarios, thresholds and decisions as the KServe suite (tests/rollout/test_scenarios.py): each
deploys the stable version and a canary (0 %) through deploy's real code, sends a bounded loopback load to the
fake Endpoint's ``:predict``, and runs the analysis with :class:`VertexEndpointBackend` and
:class:`VertexEndpointSource` (Cloud Monitoring through the fake's gRPC API, scores from the containers' payload
log). Each scenario's decision and intervals to decision land in ``SCENARIO_RESULTS``; the table is printed
after the module (and appended to ``$KFPKIT_SCENARIO_REPORT``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from kfpkit.components.rollout import analysis
from kfpkit.components.rollout.cloud_monitoring import CloudMonitoring
from kfpkit.components.rollout.vertex import VertexEndpointBackend, VertexEndpointSource
from kfpkit.core.rollout_record import read_rollout_record, to_markdown
from kfpkit.onebox import replay
from tests.rollout import harness
from tests.vertex import helpers
from tests.vertex.conftest import CONFIG, LOCATION, PROJECT

SCENARIO_RESULTS = {}
RPS = 60.0


@pytest.fixture(scope="module")
def batches():
    return harness.replay_batches()


def _load(fakes, batches, duration_s=60.0):
    load = replay.Replay(fakes.vertex.url, "unused", batches, rps=RPS, duration_s=duration_s)
    load.path = f"/v1/projects/{PROJECT}/locations/{LOCATION}/endpoints/{helpers.ENDPOINT_ID}:predict"
    return load


def _prepare(fakes, credentials, models, payload_root, canary):
    api = helpers.api(fakes, credentials)
    helpers.deploy(api, models, "stable", payload_root)
    helpers.deploy(api, models, canary, payload_root, canary_percent=0)
    monitoring = CloudMonitoring(PROJECT, fakes.monitoring.address, credentials=credentials, timeout_s=2.0)
    backend = VertexEndpointBackend(api, helpers.ENDPOINT_ID)
    return backend, VertexEndpointSource(api, monitoring, helpers.ENDPOINT_ID)


def _rollout(fakes, credentials, models, payload_root, batches, canary, load=True, on_step=None):
    backend, source = _prepare(fakes, credentials, models, payload_root, canary)
    traffic = _load(fakes, batches).start() if load else None
    try:
        record = analysis.run_rollout(backend, source, CONFIG, on_step=on_step)
    finally:
        if traffic is not None:
            traffic.stop()
    assert fakes.vertex.problems == [] and fakes.monitoring.problems == []
    return record, backend


def _failed(record):
    return {r.metric for r in record.steps[-1].metrics if r.verdict == analysis.FAIL}


def _note(name, record):
    SCENARIO_RESULTS[name] = (record.decision, record.intervals_to_decision, record.reason)


def _deployed_versions(fakes):
    (endpoint,) = fakes.vertex.endpoints.values()
    return sorted(d.model_version_id for d in endpoint.deployed_models)


def test_good_canary_is_promoted_after_every_step_passes_and_the_stable_model_is_undeployed(
    fakes, credentials, models, payload_root, batches
):
    record, _ = _rollout(fakes, credentials, models, payload_root, batches, "good")
    _note("good canary", record)
    assert record.decision == analysis.PROMOTE, to_markdown(record)
    assert [s.weight for s in record.steps if s.verdict == analysis.PASS] == [25, 50, 100]
    assert record.backend == "vertex-endpoint" and record.final_traffic == {"2": 100}
    assert all(s.canary.scored for s in record.steps)  # the score checks read the payload log
    assert _deployed_versions(fakes) == ["2"]


def test_canary_answering_5_percent_server_errors_is_rolled_back_within_two_intervals(
    fakes, credentials, models, payload_root, batches
):
    record, _ = _rollout(fakes, credentials, models, payload_root, batches, "errors")
    _note("canary answering 5% 5xx", record)
    assert record.decision == analysis.ROLLBACK, to_markdown(record)
    assert record.intervals_to_decision <= 2
    assert sum(step.canary.errors or 0 for step in record.steps) > 0  # 5xx counted by Cloud Monitoring
    assert _failed(record) & {"error_rate", "error_rate_increase", "p99_latency_ratio"}
    assert _deployed_versions(fakes) == ["1"]


def test_canary_with_three_times_the_p99_latency_is_rolled_back(fakes, credentials, models, payload_root, batches):
    record, _ = _rollout(fakes, credentials, models, payload_root, batches, "slow")
    _note("p99 ×3", record)
    assert record.decision == analysis.ROLLBACK, to_markdown(record)
    assert "p99_latency_ratio" in _failed(record)
    assert _deployed_versions(fakes) == ["1"]


def test_shifted_score_distribution_is_rolled_back_on_the_score_check_alone(
    fakes, credentials, models, payload_root, batches
):
    record, _ = _rollout(fakes, credentials, models, payload_root, batches, "shifted")
    _note("score distribution shifted", record)
    assert record.decision == analysis.ROLLBACK, to_markdown(record)
    assert _failed(record) and _failed(record) <= {"score_js_distance", "score_psi"}
    verdicts = {r.metric: r.verdict for r in record.steps[-1].metrics}
    assert verdicts["error_rate_increase"] == verdicts["error_rate"] == analysis.PASS


def test_no_traffic_never_promotes_and_rolls_back_after_max_inconclusive(fakes, credentials, models, payload_root):
    record, _ = _rollout(fakes, credentials, models, payload_root, [], "good", load=False)
    _note("no traffic", record)
    assert record.decision == analysis.ROLLBACK
    assert [s.verdict for s in record.steps] == [analysis.INCONCLUSIVE] * CONFIG.max_inconclusive
    assert "min_requests" in record.steps[0].metrics[0].reason
    assert _deployed_versions(fakes) == ["1"]


def test_cloud_monitoring_unreachable_never_promotes_and_rolls_back_after_max_inconclusive(
    fakes, credentials, models, payload_root, batches
):
    # stopped before the first measurement: a stop after a step would test nothing whenever that step failed
    # on its own (a noisy p99 on a loaded machine)
    backend, source = _prepare(fakes, credentials, models, payload_root, "good")
    fakes.monitoring.stop()
    traffic = _load(fakes, batches).start()
    try:
        record = analysis.run_rollout(backend, source, CONFIG)
    finally:
        traffic.stop()
    _note("Cloud Monitoring unreachable", record)
    assert fakes.vertex.problems == []
    assert record.decision == analysis.ROLLBACK, to_markdown(record)
    assert [s.verdict for s in record.steps] == [analysis.INCONCLUSIVE] * CONFIG.max_inconclusive
    assert "cloud monitoring unavailable" in record.steps[-1].metrics[0].reason
    assert _deployed_versions(fakes) == ["1"]


def _cli(summary, fakes, service_account_file):
    command = [
        sys.executable, "-m", "kfpkit.cli", "rollout", "--backend", "vertex",
        "--project", PROJECT, "--location", LOCATION, "--endpoint", helpers.ENDPOINT_ID,
        "--vertex-api-endpoint", fakes.vertex.url, "--monitoring-api-endpoint", fakes.monitoring.address,
        "--steps", ",".join(str(s) for s in CONFIG.steps), "--interval", f"{CONFIG.interval_s}s",
        "--min-requests", str(CONFIG.min_requests), "--max-inconclusive", "4",
        "--min-latency-increase", f"{CONFIG.thresholds.min_latency_increase_seconds}s",
        "--score-alpha", str(CONFIG.thresholds.score_alpha), "--summary-json", str(summary),
    ]  # fmt: skip
    env = dict(os.environ, GOOGLE_APPLICATION_CREDENTIALS=service_account_file)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _wait_for(check, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_rollout_killed_mid_rollout_resumes_at_its_step_from_the_endpoint_split(
    fakes, credentials, service_account_file, models, payload_root, batches, tmp_path
):
    _prepare(fakes, credentials, models, payload_root, "good")
    (endpoint,) = fakes.vertex.endpoints.values()
    summary = tmp_path / "summary.json"
    load = _load(fakes, batches, duration_s=120).start()
    first = _cli(summary, fakes, service_account_file)
    try:
        canary_id = max(endpoint.deployed_models, key=lambda d: d.create_time.timestamp()).id
        _wait_for(
            lambda: dict(endpoint.traffic_split).get(canary_id) == 50 or first.poll() is not None, 90, "step 2 at 50%"
        )
        assert first.poll() is None, first.communicate()[0]
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert dict(endpoint.traffic_split)[canary_id] == 50  # the split outlives the killed task
        second = _cli(summary, fakes, service_account_file)
        output, _ = second.communicate(timeout=180)
    finally:
        load.stop()
        if first.poll() is None:
            first.kill()
    record = read_rollout_record(str(summary))
    SCENARIO_RESULTS["task killed and restarted mid-rollout"] = (
        record.decision,
        record.intervals_to_decision,
        record.reason,
    )
    assert second.returncode == 0, output
    assert record.resumed_at_weight == 50 and record.steps[0].resumed and record.steps[0].weight == 50
    assert record.decision == analysis.PROMOTE and record.backend == "vertex-endpoint", output
    assert "resuming at 50%" in output
    assert fakes.vertex.problems == [] and fakes.monitoring.problems == []
    assert _deployed_versions(fakes) == ["2"]


@pytest.fixture(scope="module", autouse=True)
def scenario_report():
    """After the module: prints the scenario table (decision, time to decision in intervals) for the note."""
    yield
    lines = ["| scenario (Vertex Endpoint) | decision | intervals to decision |", "|---|---|---|"]
    lines += [f"| {name} | {d} | {n} |" for name, (d, n, _why) in SCENARIO_RESULTS.items()]
    report = "\n".join(lines)
    path = os.environ.get("KFPKIT_SCENARIO_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(report + "\n\n")
    print(report)
