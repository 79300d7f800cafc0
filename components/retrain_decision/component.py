"""KFP component: whether the monitoring pipeline retrains, from the drift and performance checks."""

from typing import List, NamedTuple

from kfp import dsl

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def retrain_decision(drift_detected: bool, degraded: bool, retrain_on: str) -> NamedTuple(
    "Outputs", [("retrain", bool), ("triggered_by", List[str])]
):
    """Combines the drift monitor's and the performance check's verdicts into one retrain decision.

    A check triggers the retrain only when retrain_on lets it: drift (the monitor alone), performance (the
    performance check alone) or either. An unknown retrain_on fails the task. Logic:
    ``kfpkit.components.retrain_decision.logic``.

    Args:
        drift_detected: The monitor's drift_detected.
        degraded: The performance check's degraded (false where the check did not run).
        retrain_on: Which checks may trigger a retrain: drift, performance or either.

    Returns:
        retrain: Whether to retrain.
        triggered_by: The checks that triggered it (drift, performance), in that order; empty without a retrain.
    """
    from collections import namedtuple

    from kfpkit.components.retrain_decision.logic import decide

    decision = decide(drift_detected, degraded, retrain_on)
    print(f"retrain_on={retrain_on}: drift_detected={drift_detected}, degraded={degraded} -> {decision}")
    return namedtuple("Outputs", ["retrain", "triggered_by"])(decision.retrain, decision.triggered_by)
