"""retrain_decision: which check retrains per retrain_on (logic and the component's python_func)."""

import pytest

from kfpkit.components.performance_skipped.component import performance_skipped
from kfpkit.components.retrain_decision.component import retrain_decision
from kfpkit.components.retrain_decision.logic import RETRAIN_ON, decide


@pytest.mark.parametrize(
    ("retrain_on", "drift", "degraded", "triggered"),
    [
        ("drift", True, False, ["drift"]),
        ("drift", False, True, []),
        ("drift", True, True, ["drift"]),
        ("performance", True, False, []),
        ("performance", False, True, ["performance"]),
        ("performance", True, True, ["performance"]),
        ("either", True, False, ["drift"]),
        ("either", False, True, ["performance"]),
        ("either", True, True, ["drift", "performance"]),
    ],
)
def test_a_check_retrains_only_when_retrain_on_lets_it_and_names_itself(retrain_on, drift, degraded, triggered):
    decision = decide(drift, degraded, retrain_on)
    assert decision.triggered_by == triggered
    assert decision.retrain is bool(triggered)


@pytest.mark.parametrize("retrain_on", RETRAIN_ON)
def test_nothing_found_never_retrains(retrain_on):
    assert decide(False, False, retrain_on).retrain is False


@pytest.mark.parametrize("retrain_on", ["", "Drift", "both", "accuracy"])
def test_an_unknown_retrain_on_is_refused_naming_the_parameter_and_its_values(retrain_on):
    with pytest.raises(ValueError, match="retrain_on must be one of drift, performance, either"):
        decide(True, True, retrain_on)


def test_the_component_returns_the_triggering_checks_comma_separated_and_empty_without_a_retrain():
    assert retrain_decision.python_func(drift_detected=True, degraded=True, retrain_on="either") == "drift,performance"
    assert retrain_decision.python_func(drift_detected=False, degraded=True, retrain_on="performance") == "performance"
    assert retrain_decision.python_func(drift_detected=True, degraded=False, retrain_on="performance") == ""


def test_the_skipped_performance_check_is_never_degraded():
    assert performance_skipped.python_func(retrain_on="drift") is False
