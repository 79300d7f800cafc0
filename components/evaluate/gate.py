"""The blessing gate of evaluate: settings, and the decision with one reason per check.

Every check reads a bootstrap interval (:mod:`kfpkit.core.bootstrap`: stratified, seeded) of the test split,
so that it says how firm its verdict is. A candidate is blessed when, on the test split:

* **floor**: its PR-AUC clears the floor :meth:`GateSettings.pr_auc_floor`, set relative to the split's
  positive rate (the PR-AUC of a model that ranks at random): ``min_pr_auc_lift`` times the positive rate,
  capped at a tenth of the way from chance to a perfect model (:data:`FLOOR_CAP_SHARE`), or the absolute
  ``min_pr_auc`` when that is higher. The PR-AUC interval lies **above** the floor (pass), **below** it
  (fail) or **across** it; across, the model passes when its point estimate reaches the floor *and* the
  interval lies above chance (its lower bound exceeds the positive rate), so a model no better than chance
  never passes on any table;
* **calibration** (optional): its expected calibration error (15 bins) is at most ``max_ece`` (the point
  estimate decides; the reason gives the interval's position);
* **no regression**: when a baseline model (the registry's latest blessed version) was scored on the same
  rows, the paired bootstrap of ``PR-AUC(candidate) - PR-AUC(baseline)`` over the same resampled rows decides:
  a regression is declared when the candidate is worse by more than ``max_regression`` in at least
  ``confidence`` (95%) of the resamples, i.e. when the drop exceeds ``max_regression`` with that confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

from kfpkit.components.evaluate.errors import EvaluationError
from kfpkit.core.bootstrap import DEFAULT_LEVEL, Interval, PairedDifference

# The floor relative to chance. PR-AUC (average precision) of a model that ranks at random equals the positive
# rate. Five times chance rejects broken or near-random models (wrong features, inverted labels, collapsed
# training) and scales with the table: 0.112 on the built-in 100k sample (2.23% positives in its test split,
# where its models score ~0.29, 13x chance, and chance-level ones ~0.02), 0.01 at 0.2% positives, where the
# old absolute floor of 0.2 rejected good models. Ten times chance (the old 0.2) sat close to the best model
# the sample allows and refused useful models of smaller tables (20k rows: PR-AUC 0.14-0.19, 6-9x chance).
DEFAULT_MIN_PR_AUC_LIFT = 5.0
# Above ~2.4% positives the floor is a tenth of the way from chance to a perfect PR-AUC instead, where that is
# lower: five times chance grows out of reach with the positive rate (1.5 at 30% positives) and already asks
# 0.31 at 6% positives, where a useful model (ROC-AUC 0.81) scores 0.28. A tenth of the way: 0.15 at 6%,
# 0.37 at 30% positives. The floor is the easier of the two criteria, and a chance-level model meets neither.
FLOOR_CAP_SHARE = 0.1
# The absolute PR-AUC floor: 0 = none, only the relative floor applies.
DEFAULT_MIN_PR_AUC = 0.0
DEFAULT_MAX_REGRESSION = 0.01
DEFAULT_CONFIDENCE = DEFAULT_LEVEL
# float noise allowance in the comparisons (a model compared with itself must pass)
TOLERANCE = 1e-12


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class GateSettings:
    """The gate's thresholds.

    Attributes:
        min_pr_auc_lift: The PR-AUC floor as a multiple of the test split's positive rate (chance), >= 1.
        min_pr_auc: An absolute PR-AUC floor on top of the relative one (0: none).
        max_regression: Largest allowed PR-AUC drop against the baseline.
        max_ece: ECE ceiling; ``None``: no ceiling.
        confidence: Level of the intervals and the confidence a regression must be declared with.
    """

    min_pr_auc_lift: float = DEFAULT_MIN_PR_AUC_LIFT
    min_pr_auc: float = DEFAULT_MIN_PR_AUC
    max_regression: float = DEFAULT_MAX_REGRESSION
    max_ece: Optional[float] = None
    confidence: float = DEFAULT_CONFIDENCE

    @classmethod
    def checked(
        cls,
        min_pr_auc_lift: float = DEFAULT_MIN_PR_AUC_LIFT,
        min_pr_auc: float = DEFAULT_MIN_PR_AUC,
        max_regression: float = DEFAULT_MAX_REGRESSION,
        max_ece: Optional[float] = None,
        confidence: float = DEFAULT_CONFIDENCE,
    ) -> GateSettings:
        """Validated settings; a ``max_ece`` of ``None`` or ``<= 0`` means no ceiling.

        Raises:
            EvaluationError: ``min_pr_auc_lift`` below 1, ``min_pr_auc`` or ``max_regression`` outside [0, 1],
                ``max_ece`` above 1, ``confidence`` outside [0.5, 1), or any of them not a number.
        """
        if not (_number(min_pr_auc_lift) and min_pr_auc_lift >= 1.0):
            raise EvaluationError(
                f"min_pr_auc_lift must be a number >= 1 (1: the floor is chance), got {min_pr_auc_lift!r}"
            )
        for name, value in (("min_pr_auc", min_pr_auc), ("max_regression", max_regression)):
            if not (_number(value) and 0.0 <= value <= 1.0):
                raise EvaluationError(f"{name} must be a number in [0, 1], got {value!r}")
        if max_ece is not None:
            if not (_number(max_ece) and max_ece <= 1.0):
                raise EvaluationError(f"max_ece must be a number <= 1 (or unset / <= 0: no ceiling), got {max_ece!r}")
            if max_ece <= 0:
                max_ece = None
        if not (_number(confidence) and 0.5 <= confidence < 1.0):
            raise EvaluationError(f"confidence must be a number in [0.5, 1), got {confidence!r}")
        return cls(
            float(min_pr_auc_lift),
            float(min_pr_auc),
            float(max_regression),
            None if max_ece is None else float(max_ece),
            float(confidence),
        )

    def relative_floor(self, positive_rate: float) -> float:
        """``min(min_pr_auc_lift x rate, rate + FLOOR_CAP_SHARE x (1 - rate))``: above chance, below 1."""
        rate = float(positive_rate)
        return min(self.min_pr_auc_lift * rate, rate + FLOOR_CAP_SHARE * (1.0 - rate))

    def pr_auc_floor(self, positive_rate: float) -> float:
        """The PR-AUC floor on a test split with ``positive_rate``: the relative floor or ``min_pr_auc``."""
        return max(self.relative_floor(positive_rate), self.min_pr_auc)

    def floor_origin(self, positive_rate: float) -> str:
        """How :meth:`pr_auc_floor` came about, in words (for reasons and the report)."""
        rate = float(positive_rate)
        relative = self.relative_floor(rate)
        if self.min_pr_auc > relative:
            return f"`min_pr_auc`; the relative floor is {relative:.4f}"
        if relative < self.min_pr_auc_lift * rate:
            return (
                f"{FLOOR_CAP_SHARE:.0%} of the way from chance {rate:.4f} to 1, lower than "
                f"{self.min_pr_auc_lift:g} × chance {self.min_pr_auc_lift * rate:.4f}"
            )
        return f"`min_pr_auc_lift` {self.min_pr_auc_lift:g} × positive rate {rate:.4f}"

    def rule(self) -> str:
        """The rule in words, for the report."""
        percent = f"{self.confidence:.0%}"
        text = (
            f"blessed when the PR-AUC clears the floor: `min_pr_auc_lift` ({self.min_pr_auc_lift:g}) × the test "
            f"split's positive rate (chance), at most {FLOOR_CAP_SHARE:.0%} of the way from chance to 1"
        )
        if self.min_pr_auc > 0:
            text += f", or `min_pr_auc` ({self.min_pr_auc:.4f}) when higher"
        text += (
            f" (its {percent} interval above the floor passes, below fails; across, the point estimate must reach "
            "the floor and the interval lie above chance)"
        )
        if self.max_ece is not None:
            text += f", ECE ≤ `max_ece` ({self.max_ece:.4f})"
        return (
            f"{text} and, when a baseline (the registry's latest blessed version) was scored on the same rows, "
            f"no regression: a paired bootstrap of the PR-AUC difference on those rows does not show a drop above "
            f"`max_regression` ({self.max_regression:.4f}) in {percent} or more of its resamples"
        )


@dataclass(frozen=True)
class GateEvidence:
    """What the gate judges, all measured on the test split.

    Attributes:
        pr_auc: The candidate's PR-AUC with its interval.
        positive_rate: The split's positive rate (chance level of PR-AUC).
        ece: The candidate's ECE with its interval (needed when the gate has an ECE ceiling).
        regression: The paired bootstrap of the PR-AUC difference candidate - baseline; ``None``: no baseline.
        baseline_pr_auc: The baseline's PR-AUC on the same rows (for the reason's text).
        baseline_label: How reasons name the baseline.
    """

    pr_auc: Interval
    positive_rate: float
    ece: Optional[Interval] = None
    regression: Optional[PairedDifference] = None
    baseline_pr_auc: Optional[float] = None
    baseline_label: str = "baseline"


@dataclass
class GateDecision:
    """The verdict, one reason per check, and the figures behind them.

    Attributes:
        blessed: Whether every check passed.
        reasons: One human-readable reason per check, prefixed ``pass:`` or ``fail:``.
        pr_auc_floor: The floor the PR-AUC was held to.
        floor_position: Where the PR-AUC interval lies relative to the floor: above, below or across.
        regression_share: Share of paired resamples with a drop above ``max_regression`` (``None``: no baseline).
        regression_declared: Whether a regression was declared.
    """

    blessed: bool
    reasons: List[str] = field(default_factory=list)
    pr_auc_floor: float = 0.0
    floor_position: str = "across"
    regression_share: Optional[float] = None
    regression_declared: bool = False


def _interval_text(interval: Interval) -> str:
    if interval.low is None or interval.high is None:
        return "no interval"
    return f"{interval.level:.0%} interval {interval.low:.4f} to {interval.high:.4f}"


def _floor_check(evidence: GateEvidence, settings: GateSettings, decision: GateDecision) -> bool:
    pr_auc, rate = evidence.pr_auc, evidence.positive_rate
    if pr_auc.point is None:
        raise ValueError("the candidate's PR-AUC is undefined (a test split without positives)")
    floor = settings.pr_auc_floor(rate)
    position = pr_auc.position(floor)
    if position == "above":
        passed, why = True, ""
    elif position == "below":
        passed, why = False, ""
    else:
        reaches = pr_auc.point >= floor - TOLERANCE
        above_chance = pr_auc.low is not None and pr_auc.low > rate
        passed = reaches and above_chance
        why = (
            f": point estimate {'≥' if reaches else '<'} floor, interval "
            f"{'above' if above_chance else 'not above'} chance {rate:.4f}"
        )
    decision.pr_auc_floor, decision.floor_position = floor, position
    decision.reasons.append(
        f"{'pass' if passed else 'fail'}: PR-AUC {pr_auc.point:.4f} ({_interval_text(pr_auc)}) {position} the floor "
        f"{floor:.4f} ({settings.floor_origin(rate)}){why}"
    )
    return passed


def _ece_check(evidence: GateEvidence, ceiling: float, decision: GateDecision) -> bool:
    ece = evidence.ece
    if ece is None or ece.point is None:
        raise ValueError("the candidate's ECE is required when the gate has an ECE ceiling")
    point = ece.point
    passed = point <= ceiling + TOLERANCE
    # for a ceiling, "above" the bound is the bad side
    position = ece.position(ceiling)
    decision.reasons.append(
        f"{'pass' if passed else 'fail'}: ECE {point:.4f} {'≤' if passed else '>'} ceiling {ceiling:.4f} "
        f"({_interval_text(ece)}, {position} the ceiling; the point estimate decides)"
    )
    return passed


def _regression_check(evidence: GateEvidence, settings: GateSettings, decision: GateDecision) -> bool:
    difference = evidence.regression
    assert difference is not None
    share = difference.share_worse_by_more_than(settings.max_regression + TOLERANCE)
    declared = share >= settings.confidence
    decision.regression_share, decision.regression_declared = share, declared
    point = difference.interval.point
    baseline = "" if evidence.baseline_pr_auc is None else f" {evidence.baseline_pr_auc:.4f}"
    candidate = evidence.pr_auc.point
    verdict = "regression" if declared else "no regression"
    decision.reasons.append(
        f"{'fail' if declared else 'pass'}: PR-AUC {candidate:.4f} vs {evidence.baseline_label}{baseline}: "
        f"difference {0.0 if point is None else point:+.4f} ({_interval_text(difference.interval)}, paired on the "
        f"same rows); a drop above {settings.max_regression:.4f} in {share:.1%} of "
        f"{difference.interval.resamples} resamples {'≥' if declared else '<'} {settings.confidence:.0%}: {verdict}"
    )
    return not declared


def blessing_decision(evidence: GateEvidence, settings: GateSettings) -> GateDecision:
    """Applies every check of ``settings`` to ``evidence`` (see the module docstring for the rules).

    Args:
        evidence: The candidate's intervals on the test split and, with a baseline, the paired difference.
        settings: The gate's thresholds.

    Returns:
        The verdict with one reason per check: floor, then calibration (when set), then regression (with a
        baseline).
    """
    decision = GateDecision(blessed=False)
    blessed = _floor_check(evidence, settings, decision)
    if settings.max_ece is not None:
        blessed = _ece_check(evidence, settings.max_ece, decision) and blessed
    if evidence.regression is not None:
        blessed = _regression_check(evidence, settings, decision) and blessed
    decision.blessed = blessed
    return decision
