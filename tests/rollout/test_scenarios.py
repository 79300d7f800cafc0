"""The scenario suite: real kfpkit predictors, real Prometheus, real nginx, a bounded loopback load.

Each scenario records its decision and its time to decision (in intervals) in ``SCENARIO_RESULTS`` and
``tests/rollout/test_scenarios.py::test_zz_report`` prints the table.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kfpkit.components.rollout import analysis
from kfpkit.core.rollout_record import read_rollout_record, to_markdown
from kfpkit.onebox import replay
from kfpkit.onebox import stack as local
from tests.rollout.conftest import ISVC, SCRAPE_S

SCENARIO_RESULTS = {}


def _rollout(kit, nginx, canary, prometheus_url, load=True, on_step=None):
    backend = local.LocalBackend(nginx, ISVC, kit.versions["stable"], kit.versions[canary])
    nginx.apply(0)
    traffic = replay.Replay(nginx.url, ISVC, kit.batches, rps=kit.rps, duration_s=60).start() if load else None
    try:
        record = analysis.run_rollout(backend, kit.source(prometheus_url), kit.config, on_step=on_step)
    finally:
        if traffic is not None:
            traffic.stop()
    return record


def _failed(record):
    return {r.metric for r in record.steps[-1].metrics if r.verdict == analysis.FAIL}


def _latency(record):
    """Each step's latency check, e.g. ``25% p88 ×1.08 pass``: the quantile judged and the ratio to stable."""
    rows = [(step.weight, r) for step in record.steps for r in step.metrics if r.metric == "p99_latency_ratio"]
    return "; ".join(
        f"{weight}% {r.reason.split(':')[0] if r.canary is not None else '-'} ×{r.canary or 0:.2f} {r.verdict}"
        for weight, r in rows
    )


def _note(name, record):
    SCENARIO_RESULTS[name] = (record.decision, record.intervals_to_decision, record.reason, _latency(record))


def test_good_canary_is_promoted_after_every_step_passes(rollout_kit, prometheus, nginx_for):
    nginx = nginx_for("good")
    record = _rollout(rollout_kit, nginx, "good", prometheus.url)
    _note("good canary", record)
    assert record.decision == analysis.PROMOTE, to_markdown(record)
    assert [s.weight for s in record.steps if s.verdict == analysis.PASS] == [25, 50, 100]
    assert nginx.canary_percent() == 100
    assert record.final_traffic == {"2": 100} and record.final_canary_percent == 100


def test_canary_answering_5_percent_server_errors_is_rolled_back_within_two_intervals(
    rollout_kit, prometheus, nginx_for
):
    nginx = nginx_for("errors")
    record = _rollout(rollout_kit, nginx, "errors", prometheus.url)
    _note("canary answering 5% 5xx", record)
    assert record.decision == analysis.ROLLBACK, to_markdown(record)
    assert record.intervals_to_decision <= 2
    # the 5xx are real (the predictor counted them); the faulty path is also slow, so the p99 check may
    # be the one that trips first
    assert sum(step.canary.errors or 0 for step in record.steps) > 0
    assert _failed(record) & {"error_rate", "error_rate_increase", "p99_latency_ratio"}
    assert nginx.canary_percent() == 0


def test_canary_with_three_times_the_p99_latency_is_rolled_back(rollout_kit, prometheus, nginx_for):
    nginx = nginx_for("slow")
    record = _rollout(rollout_kit, nginx, "slow", prometheus.url)
    _note("p99 ×3", record)
    assert record.decision == analysis.ROLLBACK, to_markdown(record)
    assert "p99_latency_ratio" in _failed(record)
    # judged on the quantile its ~45 requests can estimate (not on one request), still well past the limit
    row = {r.metric: r for r in record.steps[-1].metrics}["p99_latency_ratio"]
    assert row.reason.startswith("p") and row.canary > rollout_kit.config.thresholds.max_latency_ratio, row


def test_shifted_score_distribution_is_rolled_back_on_the_score_check_alone(rollout_kit, prometheus, nginx_for):
    nginx = nginx_for("shifted")
    record = _rollout(rollout_kit, nginx, "shifted", prometheus.url)
    _note("score distribution shifted", record)
    assert record.decision == analysis.ROLLBACK, to_markdown(record)
    assert _failed(record) and _failed(record) <= {"score_js_distance", "score_psi"}
    verdicts = {r.metric: r.verdict for r in record.steps[-1].metrics}
    assert verdicts["error_rate_increase"] == verdicts["error_rate"] == analysis.PASS


def test_no_traffic_never_promotes_and_rolls_back_after_max_inconclusive(rollout_kit, prometheus, nginx_for):
    nginx = nginx_for("good")
    record = _rollout(rollout_kit, nginx, "good", prometheus.url, load=False)
    _note("no traffic", record)
    assert record.decision == analysis.ROLLBACK
    assert [s.verdict for s in record.steps] == [analysis.INCONCLUSIVE] * rollout_kit.config.max_inconclusive
    assert "min_requests" in record.steps[0].metrics[0].reason


def test_prometheus_stopped_mid_rollout_never_promotes(rollout_kit, predictors, nginx_for, tmp_path):
    from tests.rollout.conftest import targets

    own = local.PrometheusServer(str(tmp_path / "prometheus"), targets(predictors), SCRAPE_S).start()
    try:

        def stop_after_first_step(record):
            if len(record.steps) == 1:
                own.stop()

        nginx = nginx_for("good")
        record = _rollout(rollout_kit, nginx, "good", own.url, on_step=stop_after_first_step)
    finally:
        own.stop()
    _note("Prometheus stopped mid-rollout", record)
    assert record.decision == analysis.ROLLBACK
    assert all(s.verdict == analysis.INCONCLUSIVE for s in record.steps[1:])
    assert "prometheus unavailable" in record.steps[-1].metrics[0].reason
    assert nginx.canary_percent() == 0, (nginx.state(), [s.weight for s in record.steps], record.final_traffic)


def _cli(work_dir, summary, predictors, prometheus, kit):
    command = [
        sys.executable, "-m", "kfpkit.cli", "rollout", "--backend", "local",
        "--stable-url", predictors["stable"].address, "--canary-url", predictors["good"].address,
        "--stable-version", kit.versions["stable"], "--canary-version", kit.versions["good"],
        "--model-name", ISVC, "--prometheus-url", prometheus.url, "--work-dir", str(work_dir),
        "--steps", ",".join(str(s) for s in kit.config.steps), "--interval", f"{kit.config.interval_s}s",
        # the test's load starts once nginx is up, so the first interval may be short of requests
        "--min-requests", str(kit.config.min_requests), "--max-inconclusive", "4",
        "--min-latency-increase", f"{kit.config.thresholds.min_latency_increase_seconds}s",
        "--summary-json", str(summary),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(check, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_rollout_killed_mid_rollout_resumes_at_its_step(rollout_kit, predictors, prometheus, tmp_path):
    system_packages_nginx = local.find_binary("nginx", ["/usr/sbin/nginx"])
    if not system_packages_nginx:
        from tests import system_packages

        system_packages.require("nginx")
    work_dir, summary = tmp_path / "work", tmp_path / "summary.json"
    state = work_dir / "nginx" / "traffic.json"
    first = _cli(work_dir, summary, predictors, prometheus, rollout_kit)
    load = None
    try:
        _wait_for(state.exists, 60, "nginx state of the first run")
        port = json.loads(state.read_text())["port"]
        load = replay.Replay(
            f"http://127.0.0.1:{port}", ISVC, rollout_kit.batches, rps=rollout_kit.rps, duration_s=90
        ).start()
        # kill it once step 1 passed and step 2 (50 %) is being analysed
        _wait_for(
            lambda: json.loads(state.read_text())["canary_percent"] == 50 or first.poll() is not None, 60, "step 2"
        )
        assert first.poll() is None, first.communicate()[0]
        first.send_signal(signal.SIGKILL)
        first.wait()
        nginx = local.Nginx(str(work_dir / "nginx"), "", "")
        assert nginx.running() and nginx.canary_percent() == 50  # the split outlives the killed task
        second = _cli(work_dir, summary, predictors, prometheus, rollout_kit)
        output, _ = second.communicate(timeout=120)
    finally:
        if load is not None:
            load.stop()
        if first.poll() is None:
            first.kill()
        local.Nginx(str(work_dir / "nginx"), "", "").stop()
    record = read_rollout_record(str(summary))
    SCENARIO_RESULTS["task killed and restarted mid-rollout"] = (
        record.decision,
        record.intervals_to_decision,
        record.reason,
        _latency(record),
    )
    assert second.returncode == 0, output
    assert record.resumed_at_weight == 50 and record.steps[0].resumed
    assert record.steps[0].weight == 50  # resumed at its step, never jumped to 100
    assert record.decision == analysis.PROMOTE and record.backend == "local" and record.url.startswith("http://")
    assert "resuming at 50%" in output


@pytest.fixture(scope="module", autouse=True)
def scenario_report():
    """After the module: prints the scenario table (decision, time to decision in intervals) for the note."""
    yield
    lines = ["| scenario | decision | intervals to decision | latency check per step |", "|---|---|---|---|"]
    lines += [f"| {name} | {d} | {n} | {lat} |" for name, (d, n, _why, lat) in SCENARIO_RESULTS.items()]
    report = "\n".join(lines)
    path = os.environ.get("KFPKIT_SCENARIO_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(report + "\n\n")
    print(report)
