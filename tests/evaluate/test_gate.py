"""The blessing gate (components/evaluate/gate.py): floor, optional ECE ceiling, regression against a baseline."""

import numpy as np
import pytest

from kfpkit.components.evaluate.errors import EvaluationError
from kfpkit.components.evaluate.gate import GateSettings, blessing_decision
from kfpkit.components.evaluate.logic import checked_scores


def _gate(min_pr_auc=0.3, max_regression=0.01, max_ece=None):
    return GateSettings.checked(min_pr_auc, max_regression, max_ece)


def test_gate_fails_below_the_floor_and_says_so():
    blessed, reasons = blessing_decision(0.12, _gate(min_pr_auc=0.2))
    assert blessed is False
    assert reasons == ["fail: PR-AUC 0.1200 < floor 0.2000"]


def test_gate_passes_above_the_floor_without_a_baseline():
    blessed, reasons = blessing_decision(0.61, _gate())
    assert blessed is True
    assert reasons == ["pass: PR-AUC 0.6100 ≥ floor 0.3000"]


def test_gate_fails_when_the_drop_against_the_baseline_exceeds_the_allowed_regression():
    blessed, reasons = blessing_decision(0.61, _gate(), baseline_pr_auc=0.63, baseline_label="baseline fraud v3")
    assert blessed is False
    assert reasons[0].startswith("pass: PR-AUC 0.6100 ≥ floor")
    assert reasons[1] == "fail: PR-AUC 0.6100 vs baseline fraud v3 0.6300: drop 0.0200 > allowed 0.0100"


def test_gate_passes_when_the_drop_is_within_the_allowed_regression():
    blessed, reasons = blessing_decision(0.625, _gate(), baseline_pr_auc=0.63)
    assert blessed is True
    assert reasons[1] == "pass: PR-AUC 0.6250 vs baseline 0.6300: drop 0.0050 ≤ allowed 0.0100"


def test_gate_passes_a_model_equal_to_its_baseline_and_an_improvement():
    assert blessing_decision(0.5, _gate(max_regression=0.0), baseline_pr_auc=0.5)[0] is True
    blessed, reasons = blessing_decision(0.7, _gate(max_regression=0.0), baseline_pr_auc=0.5)
    assert blessed is True and "no drop (gain 0.2000)" in reasons[1]


def test_gate_needs_both_checks_floor_failure_is_not_rescued_by_a_worse_baseline():
    blessed, reasons = blessing_decision(0.15, _gate(min_pr_auc=0.2), baseline_pr_auc=0.10)
    assert blessed is False
    assert reasons[0].startswith("fail:") and reasons[1].startswith("pass:")


def test_ece_ceiling_fails_above_and_passes_at_or_below_it():
    blessed, reasons = blessing_decision(0.6, _gate(max_ece=0.01), candidate_ece=0.0123)
    assert blessed is False
    assert reasons == ["pass: PR-AUC 0.6000 ≥ floor 0.3000", "fail: ECE 0.0123 > ceiling 0.0100"]
    blessed, reasons = blessing_decision(0.6, _gate(max_ece=0.01), candidate_ece=0.01)
    assert blessed is True and reasons[1] == "pass: ECE 0.0100 ≤ ceiling 0.0100"


def test_ece_ceiling_failure_is_not_rescued_by_passing_pr_auc_checks():
    blessed, reasons = blessing_decision(0.9, _gate(max_ece=0.01), candidate_ece=0.2, baseline_pr_auc=0.5)
    assert blessed is False
    assert [r.split(":")[0] for r in reasons] == ["pass", "fail", "pass"]


@pytest.mark.parametrize("max_ece", [None, 0.0, -1.0])
def test_unset_zero_or_negative_max_ece_means_no_ceiling(max_ece):
    settings = _gate(max_ece=max_ece)
    assert settings.max_ece is None
    blessed, reasons = blessing_decision(0.6, settings, candidate_ece=0.9)
    assert blessed is True and len(reasons) == 1
    assert "max_ece" not in settings.rule()


@pytest.mark.parametrize(
    ("min_pr_auc", "max_regression", "max_ece", "name"),
    [
        (-0.1, 0.01, None, "min_pr_auc"),
        (1.5, 0.01, None, "min_pr_auc"),
        (float("nan"), 0.01, None, "min_pr_auc"),
        (0.2, -0.01, None, "max_regression"),
        (0.2, 0.01, 1.5, "max_ece"),
        (0.2, 0.01, float("nan"), "max_ece"),
    ],
)
def test_invalid_gate_settings_fail_naming_the_setting(min_pr_auc, max_regression, max_ece, name):
    with pytest.raises(EvaluationError, match=name):
        GateSettings.checked(min_pr_auc, max_regression, max_ece)


@pytest.mark.parametrize(("scores", "message"), [([0.1, float("nan")], "non-finite"), ([0.1, 1.2], "outside")])
def test_invalid_model_scores_are_rejected(scores, message):
    with pytest.raises(EvaluationError, match=message):
        checked_scores(np.array(scores), 2, "model m")
