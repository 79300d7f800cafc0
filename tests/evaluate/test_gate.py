"""The blessing gate (components/evaluate/gate.py): a floor relative to chance, read through its interval;
an optional ECE ceiling; a regression declared only when the paired bootstrap shows it with confidence.

The rules run on real scores: numpy draws of labels and scores, their bootstrap intervals and paired
differences from kfpkit.core.bootstrap, and the intervals written out where a rule's edge is tested.
"""

import numpy as np
import pytest

from kfpkit.components.evaluate.errors import EvaluationError
from kfpkit.components.evaluate.gate import (
    DEFAULT_MIN_PR_AUC_LIFT,
    FLOOR_CAP_SHARE,
    GateEvidence,
    GateSettings,
    blessing_decision,
)
from kfpkit.components.evaluate.logic import bootstrap_resamples, checked_scores
from kfpkit.core import bootstrap


def _table(rows: int, rate: float, signal: float, seed: int):
    """Labels at ``rate`` and scores whose logit rises with the label by ``signal`` (0: chance)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < rate).astype(np.int64)
    logit = rng.normal(0.0, 1.0, rows) + signal * labels + np.log(rate / (1 - rate))
    return labels, 1.0 / (1.0 + np.exp(-logit))


def _evidence(labels, scores, resamples=400, **extra) -> GateEvidence:
    intervals = bootstrap.intervals(labels, scores, 0.5, names=("pr_auc", "ece"), resamples=resamples)
    return GateEvidence(pr_auc=intervals["pr_auc"], positive_rate=float(labels.mean()), ece=intervals["ece"], **extra)


def _interval(point, low, high) -> bootstrap.Interval:
    return bootstrap.Interval(point, low, high, 0.95, 1000)


# ------------------------------------------------------------------------------------------------ floor
@pytest.mark.parametrize(
    ("rate", "floor"),
    [(0.002, 0.01), (0.02, 0.1), (0.0223, 0.1115), (0.06, 0.154), (0.3, 0.37), (0.5, 0.55)],
)
def test_floor_is_five_times_chance_or_a_tenth_of_the_way_to_perfect_whichever_is_lower(rate, floor):
    settings = GateSettings.checked()
    assert settings.pr_auc_floor(rate) == pytest.approx(floor, abs=1e-4)
    assert rate < settings.pr_auc_floor(rate) < 1.0
    assert settings.pr_auc_floor(rate) == min(DEFAULT_MIN_PR_AUC_LIFT * rate, rate + FLOOR_CAP_SHARE * (1 - rate))


def test_absolute_min_pr_auc_raises_the_floor_only_where_it_is_higher():
    settings = GateSettings.checked(min_pr_auc=0.2)
    assert settings.pr_auc_floor(0.02) == 0.2 and "`min_pr_auc`" in settings.floor_origin(0.02)
    assert settings.pr_auc_floor(0.3) == pytest.approx(0.37)


@pytest.mark.parametrize(("rate", "rows"), [(0.002, 60_000), (0.02, 6_000), (0.3, 2_000)])
def test_chance_level_model_is_refused_on_every_positive_rate(rate, rows):
    labels, scores = _table(rows, rate, signal=0.0, seed=3)
    decision = blessing_decision(_evidence(labels, scores), GateSettings.checked())
    assert decision.blessed is False
    assert decision.reasons[0].startswith("fail: PR-AUC")


def test_useful_model_on_a_rare_table_passes_where_the_old_absolute_floor_refused_it():
    labels, scores = _table(60_000, 0.002, signal=2.0, seed=4)
    evidence = _evidence(labels, scores)
    assert evidence.pr_auc.point < 0.2  # the old floor of 0.2 refused it
    decision = blessing_decision(evidence, GateSettings.checked())
    assert decision.blessed is True and decision.floor_position == "above"
    assert f"above the floor {decision.pr_auc_floor:.4f}" in decision.reasons[0]
    assert "`min_pr_auc_lift` 5 × positive rate" in decision.reasons[0]


def test_weak_model_on_a_table_with_many_positives_fails_where_the_old_floor_passed_it():
    labels, scores = _table(3_000, 0.3, signal=0.2, seed=5)
    evidence = _evidence(labels, scores)
    assert evidence.pr_auc.point > 0.2  # the old floor of 0.2 passed it
    decision = blessing_decision(evidence, GateSettings.checked())
    assert decision.blessed is False and decision.floor_position == "below"
    assert "10% of the way from chance" in decision.reasons[0]


def test_interval_above_the_floor_passes_and_below_it_fails():
    settings = GateSettings.checked()  # floor 0.1 at 2% positives
    above = blessing_decision(GateEvidence(_interval(0.3, 0.25, 0.35), 0.02), settings)
    below = blessing_decision(GateEvidence(_interval(0.06, 0.04, 0.08), 0.02), settings)
    assert (above.blessed, above.floor_position) == (True, "above")
    assert (below.blessed, below.floor_position) == (False, "below")
    assert below.reasons[0] == (
        "fail: PR-AUC 0.0600 (95% interval 0.0400 to 0.0800) below the floor 0.1000 "
        "(`min_pr_auc_lift` 5 × positive rate 0.0200)"
    )


def test_interval_across_the_floor_passes_when_the_point_reaches_it_and_the_interval_is_above_chance():
    settings = GateSettings.checked()  # floor 0.1 at 2% positives
    decision = blessing_decision(GateEvidence(_interval(0.12, 0.05, 0.2), 0.02), settings)
    assert (decision.blessed, decision.floor_position) == (True, "across")
    assert decision.reasons[0].endswith(": point estimate ≥ floor, interval above chance 0.0200")


def test_interval_across_the_floor_fails_when_the_point_misses_it():
    decision = blessing_decision(GateEvidence(_interval(0.09, 0.05, 0.2), 0.02), GateSettings.checked())
    assert (decision.blessed, decision.floor_position) == (False, "across")
    assert "point estimate < floor" in decision.reasons[0]


def test_interval_across_the_floor_fails_when_it_reaches_down_to_chance():
    decision = blessing_decision(GateEvidence(_interval(0.12, 0.015, 0.3), 0.02), GateSettings.checked())
    assert (decision.blessed, decision.floor_position) == (False, "across")
    assert "interval not above chance 0.0200" in decision.reasons[0]


def test_small_table_with_a_real_model_gets_an_interval_across_the_floor_and_a_reason_saying_so():
    labels, scores = _table(1_500, 0.02, signal=1.2, seed=6)
    decision = blessing_decision(_evidence(labels, scores), GateSettings.checked())
    assert decision.floor_position == "across"
    assert "across the floor" in decision.reasons[0]


# ------------------------------------------------------------------------------------------ calibration
def test_ece_ceiling_fails_above_and_passes_at_or_below_it_and_gives_the_interval():
    pr_auc = _interval(0.6, 0.55, 0.65)
    settings = GateSettings.checked(max_ece=0.01)
    high = blessing_decision(GateEvidence(pr_auc, 0.02, ece=_interval(0.0123, 0.009, 0.016)), settings)
    assert high.blessed is False
    assert high.reasons[1] == (
        "fail: ECE 0.0123 > ceiling 0.0100 (95% interval 0.0090 to 0.0160, across the ceiling; the point "
        "estimate decides)"
    )
    at = blessing_decision(GateEvidence(pr_auc, 0.02, ece=_interval(0.01, 0.008, 0.012)), settings)
    assert at.blessed is True and at.reasons[1].startswith("pass: ECE 0.0100 ≤ ceiling 0.0100")


@pytest.mark.parametrize("max_ece", [None, 0.0, -1.0])
def test_unset_zero_or_negative_max_ece_means_no_ceiling(max_ece):
    settings = GateSettings.checked(max_ece=max_ece)
    assert settings.max_ece is None
    decision = blessing_decision(GateEvidence(_interval(0.6, 0.5, 0.7), 0.02, ece=_interval(0.9, 0.8, 1.0)), settings)
    assert decision.blessed is True and len(decision.reasons) == 1
    assert "max_ece" not in settings.rule()


# ------------------------------------------------------------------------------------------- regression
def _paired(labels, baseline, candidate, resamples=500):
    return bootstrap.paired_difference(labels, baseline, candidate, "pr_auc", resamples=resamples)


def test_clearly_worse_candidate_is_declared_a_regression_with_the_interval_of_the_difference():
    labels, strong = _table(4_000, 0.05, signal=2.5, seed=7)
    rng = np.random.default_rng(8)
    weak = 1.0 / (1.0 + np.exp(-(np.log(strong / (1 - strong)) + rng.normal(0, 2.0, labels.size))))
    difference = _paired(labels, strong, weak)
    evidence = _evidence(labels, weak, regression=difference, baseline_pr_auc=0.5, baseline_label="baseline fraud v3")
    decision = blessing_decision(evidence, GateSettings.checked(min_pr_auc_lift=1.0))
    assert decision.regression_declared is True and decision.blessed is False
    assert decision.regression_share >= 0.95
    reason = decision.reasons[-1]
    assert reason.startswith("fail: PR-AUC") and "vs baseline fraud v3 0.5000" in reason
    assert f"95% interval {difference.interval.low:.4f} to {difference.interval.high:.4f}" in reason
    assert reason.endswith("≥ 95%: regression")


def test_point_drop_above_max_regression_within_the_noise_is_not_a_regression():
    labels, baseline = _table(1_500, 0.03, signal=2.0, seed=9)
    rng = np.random.default_rng(109)
    candidate = 1.0 / (1.0 + np.exp(-(np.log(baseline / (1 - baseline)) + rng.normal(0, 0.6, labels.size))))
    difference = _paired(labels, baseline, candidate)
    assert difference.interval.point < -0.01  # the old point rule would have declared a regression
    decision = blessing_decision(
        _evidence(labels, candidate, regression=difference), GateSettings.checked(min_pr_auc_lift=1.0)
    )
    assert decision.regression_declared is False
    assert decision.regression_share < 0.95
    assert decision.reasons[-1].startswith("pass:") and decision.reasons[-1].endswith("< 95%: no regression")


def test_model_equal_to_its_baseline_passes_with_zero_allowed_regression():
    labels, scores = _table(2_000, 0.05, signal=2.0, seed=11)
    evidence = _evidence(labels, scores, regression=_paired(labels, scores, scores))
    decision = blessing_decision(evidence, GateSettings.checked(max_regression=0.0))
    assert decision.regression_share == 0.0 and decision.blessed is True


def test_regression_confidence_is_a_setting():
    labels, baseline = _table(1_500, 0.03, signal=2.0, seed=9)
    rng = np.random.default_rng(109)
    candidate = 1.0 / (1.0 + np.exp(-(np.log(baseline / (1 - baseline)) + rng.normal(0, 0.6, labels.size))))
    evidence = _evidence(labels, candidate, regression=_paired(labels, baseline, candidate))
    share = blessing_decision(evidence, GateSettings.checked(min_pr_auc_lift=1.0)).regression_share
    lenient = blessing_decision(evidence, GateSettings.checked(min_pr_auc_lift=1.0, confidence=max(0.5, share)))
    assert lenient.regression_declared is True


def test_a_floor_failure_is_not_rescued_by_a_worse_baseline():
    labels, scores = _table(6_000, 0.02, signal=0.0, seed=12)
    evidence = _evidence(labels, scores, regression=_paired(labels, scores, scores))
    decision = blessing_decision(evidence, GateSettings.checked())
    assert decision.blessed is False
    assert [reason.split(":")[0] for reason in decision.reasons] == ["fail", "pass"]


# ------------------------------------------------------------------------------------------------ settings
@pytest.mark.parametrize(
    ("settings", "name"),
    [
        (dict(min_pr_auc_lift=0.5), "min_pr_auc_lift"),
        (dict(min_pr_auc_lift=float("nan")), "min_pr_auc_lift"),
        (dict(min_pr_auc=-0.1), "min_pr_auc"),
        (dict(min_pr_auc=1.5), "min_pr_auc"),
        (dict(max_regression=-0.01), "max_regression"),
        (dict(max_ece=1.5), "max_ece"),
        (dict(max_ece=float("nan")), "max_ece"),
        (dict(confidence=1.0), "confidence"),
        (dict(confidence=0.3), "confidence"),
    ],
)
def test_invalid_gate_settings_fail_naming_the_setting(settings, name):
    with pytest.raises(EvaluationError, match=name):
        GateSettings.checked(**settings)


@pytest.mark.parametrize(
    ("rows", "resamples"), [(500, 1000), (10_000, 1000), (15_051, 600), (20_000, 500), (50_000, 200), (150_000, 200)]
)
def test_bootstrap_size_is_1000_resamples_up_to_10k_rows_then_bounded_in_work_down_to_200(rows, resamples):
    assert bootstrap_resamples(rows) == resamples


@pytest.mark.parametrize(("scores", "message"), [([0.1, float("nan")], "non-finite"), ([0.1, 1.2], "outside")])
def test_invalid_model_scores_are_rejected(scores, message):
    with pytest.raises(EvaluationError, match=message):
        checked_scores(np.array(scores), 2, "model m")
