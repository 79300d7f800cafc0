"""KFP component: whether the monitoring pipeline retrains, from the drift and performance checks."""

from kfp import dsl

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def retrain_decision(drift_detected: bool, degraded: bool, retrain_on: str) -> str:
    """Combines the drift monitor's and the performance check's verdicts into one retrain decision.

    A check triggers the retrain only when retrain_on lets it: drift (the monitor alone), performance (the
    performance check alone) or either. An unknown retrain_on fails the task. Logic:
    ``kfpkit.components.retrain_decision.logic``.

    Args:
        drift_detected: The monitor's drift_detected.
        degraded: The performance check's degraded (false where the check did not run).
        retrain_on: Which checks may trigger a retrain: drift, performance or either.

    Returns:
        The checks that triggered the retrain, comma-separated in the order drift, performance (drift,
        performance or drift,performance); empty: no retrain. One plain output, because kfp.local 2.17 skips
        a dsl.If on a named output of a NamedTuple.
    """
    from kfpkit.components.retrain_decision.logic import decide

    decision = decide(drift_detected, degraded, retrain_on)
    print(f"retrain_on={retrain_on}: drift_detected={drift_detected}, degraded={degraded} -> {decision}")
    return ",".join(decision.triggered_by)
