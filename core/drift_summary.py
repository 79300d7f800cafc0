"""The monitor's two documents, each one typed, versioned record: the drift summary and the drift report.

* :class:`DriftSummary` -- ``summary.json`` (``kfpkit monitor --summary-json``, ``--out``): the verdict and,
  per feature, the metric that decided it. The small, stable contract for scripts and schedulers.
* :class:`DriftReport` -- ``drift.json`` (``--out`` and the monitor component's ``drift`` artifact): the same
  verdict with every metric of every feature and the histograms behind them, for the report, notebooks and
  the drift alert. :meth:`DriftReport.summary` derives the summary from it, so the two cannot disagree.

The monitor (:func:`kfpkit.components.monitor.logic.write_outputs`) writes both together; ``drift_alert``,
the demo and notebook 06 read them through these classes (:func:`kfpkit.core.records.read_record`). Metric
keys (``js``, ``psi``, ``linf``, ``missing_rate``, ``unseen_rate``) are those of
:mod:`kfpkit.core.distances`, whose ``METRIC_NAMES`` spells each one out (``js`` is the Jensen-Shannon
*distance*, base 2; ``psi`` has its counts smoothed by 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Dict, List, Optional

from kfpkit.core.distances import DEFAULT_ALPHA, MetricVerdict
from kfpkit.core.records import Record


@dataclass
class FeatureDrift:
    """The drift of one feature (or of the score).

    Attributes:
        name: Feature name (``score`` for the score).
        kind: ``numeric``, ``categorical`` or ``score``.
        drifted: Any metric flagged drift.
        deciding: The metric with the highest score-to-threshold ratio, drifted ones first (the summary's).
        metrics: Every metric's verdict by metric key, in the order they were computed.
        bins: Bin labels of the report's histograms.
        baseline_share: Baseline frequency per bin (present values).
        live_share: Live frequency per bin (present values).
        missing_rate: ``{"baseline": ..., "live": ...}``.
        unseen_values: The most frequent live values the baseline does not know (categorical).
    """

    name: str
    kind: str
    drifted: bool
    deciding: MetricVerdict
    metrics: Dict[str, MetricVerdict]
    bins: List[str] = field(default_factory=list)
    baseline_share: List[float] = field(default_factory=list)
    live_share: List[float] = field(default_factory=list)
    missing_rate: Dict[str, float] = field(default_factory=dict)
    unseen_values: Dict[str, int] = field(default_factory=dict)


@dataclass
class DriftSummary(Record):
    """``summary.json``: did the window drift, which features, and each feature's deciding metric.

    Version 2 is the typed record (``record``/``record_version``); version 1 was the untyped document with
    ``summary_version: 1`` and the same fields.

    Attributes:
        drift_detected: A feature drifted (or the score did, when score drift triggers).
        drifted_features: Drifted features, most drifted first (by score-to-threshold ratio).
        features: Per feature, the verdict of its deciding metric, in the baseline's feature order.
        score_drift: The score's deciding verdict, or ``None`` when the window had no scores.
        rows: Live rows in the window.
        model_uri: The model version compared with.
        live: The live window's source.
        since: Start of the time range (ISO-8601) or ``None``.
        until: End of the time range or ``None``.
    """

    KIND: ClassVar[str] = "drift summary"
    VERSION: ClassVar[int] = 2

    drift_detected: bool
    drifted_features: List[str]
    features: Dict[str, MetricVerdict]
    score_drift: Optional[MetricVerdict]
    rows: int
    model_uri: str
    live: str
    since: Optional[str] = None
    until: Optional[str] = None


@dataclass
class DriftReport(Record):
    """``drift.json``: the summary's verdict with every metric of every feature and the histograms.

    Attributes:
        drift_detected: As in :class:`DriftSummary`.
        drifted_features: As in :class:`DriftSummary`.
        features: Per feature its :class:`FeatureDrift`, in the baseline's feature order.
        score_drift: The score's :class:`FeatureDrift`, or ``None`` when the window had no scores.
        rows: Live rows in the window.
        model_uri: The model version compared with.
        live: The live window's source.
        since: Start of the time range (ISO-8601) or ``None``.
        until: End of the time range or ``None``.
        alpha: False-alarm probability per metric of the noise floors.
        seconds: Time spent reading and scoring the window.
    """

    KIND: ClassVar[str] = "drift report"
    VERSION: ClassVar[int] = 1

    drift_detected: bool
    drifted_features: List[str]
    features: Dict[str, FeatureDrift]
    score_drift: Optional[FeatureDrift]
    rows: int
    model_uri: str
    live: str
    since: Optional[str] = None
    until: Optional[str] = None
    alpha: float = DEFAULT_ALPHA
    seconds: float = 0.0

    def summary(self) -> DriftSummary:
        """The :class:`DriftSummary` of this report (each feature's deciding verdict)."""
        return DriftSummary(
            drift_detected=self.drift_detected,
            drifted_features=list(self.drifted_features),
            features={name: feature.deciding for name, feature in self.features.items()},
            score_drift=self.score_drift.deciding if self.score_drift else None,
            rows=self.rows,
            model_uri=self.model_uri,
            live=self.live,
            since=self.since,
            until=self.until,
        )
