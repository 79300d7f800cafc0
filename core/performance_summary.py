"""The performance summary: a typed, versioned record of one ``kfpkit performance`` run.

``summary.json`` of ``kfpkit performance --out`` / ``--summary-json`` and the performance component's
``summary`` artifact. Per cohort of scoring time: rows, labelled rows, whether its labels have matured, the
**realized** metrics (matured cohorts only, with bootstrap intervals), the **estimated** metrics (every
cohort, from the calibrated scores), the calibration check (matured cohorts), and the verdict against the
reference band of the model card's metrics. Written by
:func:`kfpkit.components.performance.logic.run_performance`, read with
:func:`kfpkit.core.records.read_record` (the monitoring pipeline and scripts read ``degraded``).

Every metric value is ``{"point", "low", "high"}`` (``None`` where undefined on the rows); the intervals are
at the summary's ``level``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Dict, List, Optional

from kfpkit.core.records import Record


@dataclass
class MetricValue:
    """A metric with its interval.

    Attributes:
        point: The value on the rows (``None``: undefined, e.g. ROC-AUC with one class).
        low: Lower bound of the interval.
        high: Upper bound of the interval.
    """

    point: Optional[float]
    low: Optional[float] = None
    high: Optional[float] = None


@dataclass
class ReferenceMetric:
    """One metric of the reference: the model card's value and its band.

    Attributes:
        point: The card's value.
        low: Lower end of the band.
        high: Upper end of the band.
        source: Where the band comes from: ``card interval`` (the card's bootstrap interval), ``normal
            approximation`` (computed from the split's rows and label rate, see the component README) or
            ``point only`` (no band: the card gives neither).
    """

    point: float
    low: float
    high: float
    source: str


@dataclass
class Reference:
    """The reference a cohort is judged against.

    Attributes:
        split: The model card's split the metrics come from (``test``, else ``eval``).
        rows: Rows of that split behind the band (``None`` when unknown).
        metrics: By metric name.
    """

    split: str
    rows: Optional[int]
    metrics: Dict[str, ReferenceMetric] = field(default_factory=dict)


@dataclass
class CalibrationMetric:
    """One metric of a matured cohort's calibration check.

    Attributes:
        estimated: The estimate on the cohort's labelled rows, with the interval of the realized value.
        realized: The realized value on the same rows.
        within: Whether ``realized`` lies inside the estimate's interval.
    """

    estimated: MetricValue
    realized: Optional[float]
    within: bool


@dataclass
class CalibrationCheck:
    """Estimated against realized on a matured cohort's labelled rows (what tells covariate from concept drift).

    Attributes:
        passed: Every metric's realized value lies inside its estimate's interval.
        level: The intervals' level.
        metrics: By metric name (positive rate, precision, recall).
    """

    passed: bool
    level: float
    metrics: Dict[str, CalibrationMetric]


@dataclass
class CohortPerformance:
    """One cohort of scoring time.

    Attributes:
        start: Start of the cohort (ISO-8601, UTC, inclusive).
        end: End (exclusive).
        rows: Scored rows.
        labelled: Rows with a label known at ``as_of``.
        mature: Whether its labels have matured (the maturity rule); only matured cohorts have realized metrics.
        realized: Realized metrics on the labelled rows (empty when not mature).
        estimated: Estimated metrics on every row, from the calibrated scores.
        degraded: A metric is below the reference beyond noise (realized when mature, estimated otherwise).
        reasons: Why it is degraded, or why it was not judged.
        calibration: The calibration check (matured cohorts with labels), else ``None``.
    """

    start: str
    end: str
    rows: int
    labelled: int
    mature: bool
    realized: Dict[str, MetricValue]
    estimated: Dict[str, MetricValue]
    degraded: bool
    reasons: List[str]
    calibration: Optional[CalibrationCheck] = None


@dataclass
class LabelCounts:
    """What the label join found; every figure exact (:mod:`kfpkit.components.performance.labels`).

    Attributes:
        rows: Label rows read from every table.
        after_as_of: Rows known after ``as_of`` (left out).
        keys: Distinct keys among the rows kept.
        superseded: Rows kept that lost to a later label of their key.
        duplicates: Superseded rows with the same label as their key's winner.
        conflicting_keys: Keys whose rows hold both 0 and 1.
        out_of_order: Rows known earlier than a row read before them.
        unknown_keys: Keys matching no scored row of the window.
        matched: Keys matched to a scored row.
        labelled_before_scored: Matched rows whose label is dated before the row was scored.
    """

    rows: int = 0
    after_as_of: int = 0
    keys: int = 0
    superseded: int = 0
    duplicates: int = 0
    conflicting_keys: int = 0
    out_of_order: int = 0
    unknown_keys: int = 0
    matched: int = 0
    labelled_before_scored: int = 0


@dataclass
class PerformanceSummary(Record):
    """``summary.json`` of ``kfpkit performance``: the verdict, the reference and every cohort.

    Attributes:
        degraded: Any cohort is degraded.
        as_of: The moment the run looks from (ISO-8601, UTC): later rows and labels are left out.
        reference: The model card's metrics and their bands.
        cohorts: Every cohort with rows, oldest first.
        calibration_failed: A matured cohort failed the calibration check.
        model_uri: The model version judged.
        live: The live window's source.
        labels: The label tables read.
        label_column: Their label column.
        key: The key column(s) of the join.
        threshold: The served decision threshold (the model card's).
        cohort: The cohort length (e.g. ``1d``).
        maturity: The label delay after a cohort's end that matures it (``None``: no delay rule).
        min_labelled_share: The labelled share that matures a cohort (0: no share rule).
        level: Confidence level of every interval.
        resamples: Bootstrap resamples behind each interval.
        rows: Scored rows in the window.
        rows_after_as_of: Scored rows left out because they came after ``as_of``.
        label_counts: The label join's counts.
    """

    KIND: ClassVar[str] = "performance summary"
    VERSION: ClassVar[int] = 1

    degraded: bool
    as_of: str
    reference: Reference
    cohorts: List[CohortPerformance]
    calibration_failed: bool
    model_uri: str
    live: str
    labels: List[str]
    label_column: str
    key: List[str]
    threshold: float
    cohort: str
    maturity: Optional[str]
    min_labelled_share: float
    level: float
    resamples: int
    rows: int
    rows_after_as_of: int
    label_counts: LabelCounts

    @property
    def degraded_cohorts(self) -> List[CohortPerformance]:
        """The degraded cohorts, oldest first."""
        return [c for c in self.cohorts if c.degraded]
