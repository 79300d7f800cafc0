"""Whether the monitoring pipeline retrains: the drift and performance checks combined per ``retrain_on``.

``retrain_on`` says which checks may trigger a retrain:

* ``drift`` (the default): the drift monitor alone; the performance check does not run;
* ``performance``: the performance check alone (degraded cohorts); drift is reported but does not retrain;
* ``either``: whichever finds something.

Only the standard library is used, so that the decision is tested without kfp.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

RETRAIN_ON = ("drift", "performance", "either")
DRIFT = "drift"
PERFORMANCE = "performance"


@dataclass(frozen=True)
class RetrainDecision:
    """The outcome of :func:`decide`.

    Attributes:
        retrain: Whether to retrain.
        triggered_by: The checks that triggered it, in the order drift, performance (empty: no retrain).
    """

    retrain: bool
    triggered_by: List[str] = field(default_factory=list)


def check_retrain_on(retrain_on: str) -> str:
    """Returns ``retrain_on`` when it is one of :data:`RETRAIN_ON`.

    Raises:
        ValueError: naming the parameter and the values it takes.
    """
    if retrain_on not in RETRAIN_ON:
        raise ValueError(f"retrain_on must be one of {', '.join(RETRAIN_ON)}; got {retrain_on!r}")
    return retrain_on


def decide(drift_detected: bool, degraded: bool, retrain_on: str) -> RetrainDecision:
    """Combines the checks: a check triggers a retrain only when ``retrain_on`` lets it.

    Args:
        drift_detected: The drift monitor's verdict.
        degraded: The performance check's verdict (false where it did not run).
        retrain_on: ``drift``, ``performance`` or ``either``.

    Returns:
        Whether to retrain and which checks triggered it.

    Raises:
        ValueError: ``retrain_on`` is not one of :data:`RETRAIN_ON`.
    """
    check_retrain_on(retrain_on)
    triggered = []
    if drift_detected and retrain_on in (DRIFT, "either"):
        triggered.append(DRIFT)
    if degraded and retrain_on in (PERFORMANCE, "either"):
        triggered.append(PERFORMANCE)
    return RetrainDecision(retrain=bool(triggered), triggered_by=triggered)
