"""KFP component: the performance check's ``degraded`` where the monitoring pipeline does not run the check."""

from kfp import dsl

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def performance_skipped(retrain_on: str) -> bool:
    """Stands in for the performance check when retrain_on is drift: nothing was checked, so nothing is degraded.

    The monitoring pipeline runs the performance component only when retrain_on lets it trigger a retrain;
    otherwise this task gives its ``degraded`` (false) to ``dsl.OneOf``, whose value feeds retrain_decision.
    (kfp.local 2.17 cannot branch on a ``dsl.OneOf`` directly, nor can a task outside a ``dsl.If`` read the
    output of a task inside it without one.)

    Args:
        retrain_on: The monitoring pipeline's retrain_on (drift here; logged).

    Returns:
        Always false, since no cohort was judged.
    """
    print(f"retrain_on={retrain_on}: the performance check does not run; degraded is false")
    return False
