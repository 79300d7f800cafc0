"""The blessing gate of evaluate: settings, and the decision with one reason per check.

A candidate is blessed when, on the test split:

* **floor**: its PR-AUC is at least ``min_pr_auc``;
* **calibration** (optional): its expected calibration error (15 bins) is at most ``max_ece``;
* **no regression**: when a baseline model (the registry's latest blessed version) was scored on the same
  rows, ``candidate_pr_auc >= baseline_pr_auc - max_regression`` (an absolute PR-AUC drop of at most
  ``max_regression``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

from kfpkit.components.evaluate.errors import EvaluationError

# PR-AUC (average precision) of a model that ranks at random equals the positive rate: ~0.02 for fraud
# data with ~2% positives. A floor of 0.2 is ten times that: it rejects models that are broken or barely
# better than chance (wrong features, inverted labels, collapsed training) without rejecting a useful
# first model. Set it per use case; it is an absolute sanity floor, the baseline comparison guards against
# regressions.
DEFAULT_MIN_PR_AUC = 0.2
DEFAULT_MAX_REGRESSION = 0.01
# float noise allowance in the comparisons (a model compared with itself must pass)
TOLERANCE = 1e-12


@dataclass(frozen=True)
class GateSettings:
    """The gate's thresholds; ``max_ece`` ``None`` means no calibration ceiling."""

    min_pr_auc: float = DEFAULT_MIN_PR_AUC
    max_regression: float = DEFAULT_MAX_REGRESSION
    max_ece: Optional[float] = None

    @classmethod
    def checked(cls, min_pr_auc: float, max_regression: float, max_ece: Optional[float] = None) -> GateSettings:
        """Validated settings; a ``max_ece`` of ``None`` or ``<= 0`` means no ceiling.

        Raises:
            EvaluationError: ``min_pr_auc`` or ``max_regression`` outside [0, 1], or ``max_ece`` above 1 or
                not a number.
        """
        for name, value in (("min_pr_auc", min_pr_auc), ("max_regression", max_regression)):
            if not (_number(value) and 0.0 <= value <= 1.0):
                raise EvaluationError(f"{name} must be a number in [0, 1], got {value!r}")
        if max_ece is not None:
            if not (_number(max_ece) and max_ece <= 1.0):
                raise EvaluationError(f"max_ece must be a number <= 1 (or unset / <= 0: no ceiling), got {max_ece!r}")
            if max_ece <= 0:
                max_ece = None
        return cls(float(min_pr_auc), float(max_regression), None if max_ece is None else float(max_ece))

    def rule(self) -> str:
        """The rule in words, for the report."""
        text = f"blessed when PR-AUC ≥ `min_pr_auc` ({self.min_pr_auc:.4f})"
        if self.max_ece is not None:
            text += f", ECE ≤ `max_ece` ({self.max_ece:.4f})"
        return (
            f"{text} and, when a baseline (the registry's latest blessed version) was scored on the same rows, "
            f"PR-AUC ≥ baseline PR-AUC - `max_regression` ({self.max_regression:.4f})"
        )


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def blessing_decision(
    candidate_pr_auc: float,
    settings: GateSettings,
    *,
    candidate_ece: Optional[float] = None,
    baseline_pr_auc: Optional[float] = None,
    baseline_label: str = "baseline",
) -> Tuple[bool, List[str]]:
    """Applies every check of ``settings``.

    Args:
        candidate_pr_auc: The candidate's PR-AUC on the test split.
        settings: The gate's thresholds.
        candidate_ece: The candidate's ECE on the test split (needed when ``settings.max_ece`` is set).
        baseline_pr_auc: The baseline's PR-AUC on the same rows; ``None``: no regression check.
        baseline_label: How reasons name the baseline.

    Returns:
        ``(blessed, reasons)``: one human-readable reason per check, prefixed ``pass:`` or ``fail:``.
    """
    reasons = []
    floor_ok = candidate_pr_auc >= settings.min_pr_auc - TOLERANCE
    reasons.append(
        f"{'pass' if floor_ok else 'fail'}: PR-AUC {candidate_pr_auc:.4f} {'≥' if floor_ok else '<'} "
        f"floor {settings.min_pr_auc:.4f}"
    )
    blessed = floor_ok
    if settings.max_ece is not None:
        if candidate_ece is None:
            raise ValueError("candidate_ece is required when the gate has an ECE ceiling")
        ece_ok = candidate_ece <= settings.max_ece + TOLERANCE
        reasons.append(
            f"{'pass' if ece_ok else 'fail'}: ECE {candidate_ece:.4f} {'≤' if ece_ok else '>'} "
            f"ceiling {settings.max_ece:.4f}"
        )
        blessed = blessed and ece_ok
    if baseline_pr_auc is not None:
        drop = baseline_pr_auc - candidate_pr_auc
        regression_ok = drop <= settings.max_regression + TOLERANCE
        if drop <= 0:
            detail = f"no drop (gain {-drop:.4f})"
        else:
            detail = f"drop {drop:.4f} {'≤' if regression_ok else '>'} allowed {settings.max_regression:.4f}"
        reasons.append(
            f"{'pass' if regression_ok else 'fail'}: PR-AUC {candidate_pr_auc:.4f} vs {baseline_label} "
            f"{baseline_pr_auc:.4f}: {detail}"
        )
        blessed = blessed and regression_ok
    return blessed, reasons
