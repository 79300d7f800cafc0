"""The judgement and its pieces on plain numbers: verdict rules, distances, resume, config, CLI parsing."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest

from kfpkit.cli import rollout as cli
from kfpkit.cli.main import main as kfpkit_main
from kfpkit.components.monitor import logic as monitor_logic
from kfpkit.components.rollout import analysis
from kfpkit.components.rollout.analysis import FAIL, INCONCLUSIVE, PASS, Measurement, RolloutConfig, Thresholds
from kfpkit.core import distances
from kfpkit.core import monitoring_baseline as mb

CONFIG = RolloutConfig(min_requests=50)
EDGES = [0.25, 0.5, 0.75, 1.0, float("inf")]


def m(requests=200.0, errors=0.0, p99=0.02, scores=(400, 300, 200, 100, 0), unavailable=""):
    return Measurement(requests, errors, p99, list(scores), list(EDGES), unavailable)


def verdicts(canary, stable, config=CONFIG):
    step, rows = analysis.judge(canary, stable, config)
    return step, {r.metric: r.verdict for r in rows}


def test_same_numbers_pass_every_check():
    step, rows = verdicts(m(), m())
    assert step == PASS and set(rows.values()) == {PASS}


def test_error_rate_above_stable_fails_the_relative_check_and_the_slo():
    step, rows = verdicts(m(errors=12), m(errors=0))
    assert step == FAIL and rows["error_rate_increase"] == FAIL and rows["error_rate"] == FAIL


def test_p99_ratio_fails_only_when_the_increase_is_also_above_the_floor():
    assert verdicts(m(p99=0.06), m(p99=0.02))[1]["p99_latency_ratio"] == FAIL
    assert verdicts(m(p99=0.004), m(p99=0.001))[1]["p99_latency_ratio"] == PASS  # 4x, but 3 ms


def test_shifted_scores_fail_only_the_score_checks():
    step, rows = verdicts(m(scores=(0, 100, 200, 300, 400)), m())
    assert step == FAIL
    assert {k for k, v in rows.items() if v == FAIL} == {"score_js_distance", "score_psi"}


def test_a_score_distance_within_sampling_noise_passes():
    # 8 scores: both distances are above their limits, the difference is not significant
    canary, stable = m(scores=(2, 2, 2, 2, 0)), m(scores=(400, 300, 200, 100, 0))
    _step, rows = analysis.judge(canary, stable, CONFIG)
    values = {r.metric: r.canary for r in rows}
    assert values["score_js_distance"] > CONFIG.thresholds.max_score_js
    assert values["score_psi"] > CONFIG.thresholds.max_score_psi
    assert {r.metric: r.verdict for r in rows if r.metric.startswith("score_")} == {
        "score_js_distance": PASS,
        "score_psi": PASS,
    }


def test_too_few_canary_requests_are_inconclusive_never_a_pass():
    step, rows = verdicts(m(requests=10), m())
    assert step == INCONCLUSIVE and set(rows.values()) == {INCONCLUSIVE}


def test_prometheus_unavailable_is_inconclusive():
    step, rows = verdicts(Measurement(unavailable="connection refused"), Measurement(unavailable="connection refused"))
    assert step == INCONCLUSIVE and set(rows.values()) == {INCONCLUSIVE}


def test_distances_of_identical_and_disjoint_histograms():
    assert distances.js_distance([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    assert distances.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert distances.psi([1, 1], [1, 1]) == pytest.approx(0.0)
    # PSI smooths every count by 0.5: disjoint histograms give a large, finite index
    assert distances.psi([1, 0], [0, 1]) == pytest.approx(np.log(3))  # shares 0.75/0.25 against 0.25/0.75
    assert analysis.bucket_counts([(0.5, 3.0), (1.0, 5.0), (float("inf"), 5.0)]) == (
        [3.0, 2.0, 0.0],
        [0.5, 1.0, float("inf")],
    )


@pytest.mark.parametrize(("percent", "index"), [(10, 0), (25, 1), (30, 2), (50, 2), (100, 3)])
def test_a_resumed_rollout_continues_at_the_step_of_the_current_weight(percent, index):
    assert analysis.resume_index((10, 25, 50, 100), percent) == index


@pytest.mark.parametrize("steps", [(), (10, 50), (50, 25, 100), (0, 100)])
def test_steps_must_increase_to_exactly_100(steps):
    with pytest.raises(analysis.RolloutError, match="steps must increase"):
        RolloutConfig(steps=steps)


def test_cli_help_documents_every_option():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    undocumented = [a.dest for a in parser._actions if a.dest != "help" and not a.help]
    assert not undocumented


def test_cli_durations_and_bad_arguments():
    assert cli.parse_duration("10s") == 10 and cli.parse_duration("500ms") == 0.5 and cli.parse_duration("2m") == 120
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_duration("ten")
    assert kfpkit_main(["rollout", "--backend", "local", "--canary", "/x"]) == cli.EXIT_USAGE
    assert kfpkit_main(["rollout", "--steps", "10,20", "--stable", "/a", "--canary", "/b"]) == cli.EXIT_USAGE


def test_the_score_checks_report_the_distances_of_the_shared_module():
    canary, stable = m(scores=(0, 100, 200, 300, 400)), m()
    _step, rows = analysis.judge(canary, stable, CONFIG)
    values = {r.metric: r.canary for r in rows}
    assert values["score_js_distance"] == distances.js_distance(canary.score_counts, stable.score_counts)
    assert values["score_psi"] == distances.psi(canary.score_counts, stable.score_counts)


def test_the_rollout_and_the_monitor_call_the_same_distance_functions(monkeypatch):
    calls = []
    for name in ("js_distance", "psi"):
        real = getattr(distances, name)

        def spy(*args, _name=name, _real=real, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(distances, name, spy)
    analysis.judge(m(scores=(0, 100, 200, 300, 400)), m(), CONFIG)
    rollout_calls, calls[:] = list(calls), []
    profile = mb.NumericProfile("amount", edges=[1.0, 2.0], counts=[10, 20, 30], missing=0)
    counter = monitor_logic.NumericCounter(profile)
    counter.add_values(np.array([0.5, 1.5, 2.5, 2.5]))
    monitor_logic.compare_numeric(profile, counter, n_base_rows=60)
    assert rollout_calls == ["js_distance", "psi"] and calls == ["js_distance", "psi"]


def test_every_threshold_and_config_field_is_a_cli_option_that_reaches_the_config():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv, expected = [], {}
    for cls in (Thresholds, RolloutConfig):
        for spec in dataclasses.fields(cls):
            flag = spec.metadata.get("flag")
            if spec.name == "thresholds":
                continue
            assert flag is not None, f"{cls.__name__}.{spec.name} has no command-line option"
            text, value = {
                "number": ("7", 7),
                "duration": ("250ms", 0.25),
                "steps": ("20,60,100", (20, 60, 100)),
                "choice": ("queue-proxy", "queue-proxy"),
                "query": ("requests=sum(up)", (("requests", "sum(up)"),)),
            }[flag.value]
            argv += [flag.name, text]
            expected[spec.name] = value
    config = cli._config(parser.parse_args(argv))
    for name, value in expected.items():
        owner = config.thresholds if hasattr(config.thresholds, name) else config
        assert getattr(owner, name) == value, name
    assert cli._config(parser.parse_args([])) == RolloutConfig()
