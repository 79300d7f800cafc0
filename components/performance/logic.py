"""Performance logic (kfp-free): is the live model still accurate?

``run_performance`` reads the scored rows of a live window (:mod:`~kfpkit.components.performance.live`) and
the delayed labels (:mod:`~kfpkit.components.performance.labels`), joins them by key as known at ``as_of``,
cuts the rows into cohorts by scoring time, and per cohort:

* decides whether its labels have **matured**: the label delay has passed since the cohort's end
  (``cohort end + maturity <= as_of``) and/or its labelled share reached ``min_labelled_share`` (every rule
  given must hold);
* on matured cohorts, the **realized** metrics on the labelled rows (PR-AUC, ROC-AUC, precision, recall and
  F1 at the served threshold, Brier score, ECE: stratified bootstrap intervals of
  :func:`kfpkit.core.bootstrap.intervals`, resampled as :data:`REALIZED_GROUPS` score groups beyond
  ``4 x REALIZED_GROUPS`` rows, so that a cohort of a million rows costs what one of a thousand does; the
  positive rate: a Wilson interval), and the **calibration
  check**: the label-free estimate on the same rows against the realized value (positive rate, precision,
  recall), each realized value inside the estimate's :data:`CALIBRATION_LEVEL` interval or not;
* on every cohort, the **estimated** precision, recall, F1 and positive rate from the calibrated scores
  (:mod:`~kfpkit.components.performance.estimate`);
* the **verdict** against the reference band (:mod:`~kfpkit.components.performance.reference`): a matured
  cohort is degraded when a judged metric (PR-AUC, ROC-AUC, precision, recall, F1) is realized below the
  reference beyond noise: ``reference - realized > z(1 - alpha) * sqrt(se_cohort² + se_reference²)``, each
  standard error read from its interval; a cohort whose labels have not matured is judged the same way on
  its *estimate*, never on its partial labels.

``alpha`` (default 1e-4) is the false-alarm probability of one metric of one cohort of an unchanged model: a
year of daily cohorts times five metrics then raises about 0.2 false alarms (measured over seeds in the
accuracy suite). Two intervals that merely fail to overlap would reject at z = 1.96 when one interval is much
narrower than the other (a small cohort against a large test split), which raised false alarms.

The summary record (:class:`kfpkit.core.performance_summary.PerformanceSummary`) and the HTML report are
written together or not at all.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

from kfpkit.components.performance import estimate as est
from kfpkit.components.performance import labels as lab
from kfpkit.components.performance.errors import PerformanceError
from kfpkit.components.performance.live import LiveRows, read_live
from kfpkit.components.performance.reference import JUDGED_METRICS, read_card, reference_from_card
from kfpkit.core.performance_summary import (
    CalibrationCheck,
    CalibrationMetric,
    CohortPerformance,
    MetricValue,
    PerformanceSummary,
    Reference,
)

logger = logging.getLogger("kfpkit.performance")

REALIZED_METRICS = ("pr_auc", "roc_auc", "precision", "recall", "f1", "brier_score", "ece", "positive_rate")
CALIBRATION_METRICS = ("positive_rate", "precision", "recall")
CALIBRATION_LEVEL = 0.999
DEFAULT_RESAMPLES = 500
# above 4x this many labelled rows a cohort is resampled as score groups (kfpkit.core.bootstrap.score_groups):
# the bounds then agree with the row bootstrap to within its own seed-to-seed noise (a few % of the width)
REALIZED_GROUPS = 300
DEFAULT_LEVEL = 0.95
DEFAULT_ALPHA = 1e-4  # false-alarm probability of one metric of one unchanged cohort
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


# --------------------------------------------------------------------------- parameters
def parse_duration(text: str, what: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` (one number, one unit) as a timedelta.

    Raises:
        PerformanceError: not such a duration, or not positive.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text or "")
    if not match or float(match.group(1)) <= 0:
        raise PerformanceError(f"{what} {text!r} is not a positive duration such as 1d, 12h, 30d or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_time(value: Optional[str], what: str) -> Optional[datetime]:
    """An ISO-8601 time (UTC when it has no offset), or ``None`` for an empty value."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PerformanceError(f"{what} {value!r} is not an ISO-8601 time (e.g. 2026-12-01T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass
class PerformanceSettings:
    """How cohorts are cut, matured and judged.

    Attributes:
        cohort: Cohort length (e.g. ``1d``), aligned to the UTC epoch (days start at midnight UTC).
        maturity: Label delay after a cohort's end that matures it (empty: no delay rule).
        min_labelled_share: Labelled share that matures a cohort (0: no share rule).
        resamples: Bootstrap resamples behind each interval.
        level: Confidence level of the intervals.
        alpha: False-alarm probability of one judged metric of one cohort whose model is as good as the
            reference (the verdict's noise rule).
        seed: Seed of every resampling.
    """

    cohort: str = "1d"
    maturity: Optional[str] = "30d"
    min_labelled_share: float = 0.0
    resamples: int = DEFAULT_RESAMPLES
    level: float = DEFAULT_LEVEL
    alpha: float = DEFAULT_ALPHA
    seed: int = 0

    def check(self) -> None:
        """Raises PerformanceError naming the first invalid setting."""
        parse_duration(self.cohort, "cohort")
        if self.maturity:
            parse_duration(self.maturity, "maturity")
        if not 0.0 <= self.min_labelled_share <= 1.0:
            raise PerformanceError(f"min_labelled_share must be in [0, 1], got {self.min_labelled_share}")
        if not self.maturity and not self.min_labelled_share:
            raise PerformanceError("give a maturity rule: a label delay (maturity, e.g. 30d) and/or min_labelled_share")
        if self.resamples < 10:
            raise PerformanceError(f"resamples must be >= 10, got {self.resamples}")
        if not 0.5 <= self.level < 1.0:
            raise PerformanceError(f"level must be in [0.5, 1), got {self.level}")
        if not 0.0 < self.alpha < 0.5:
            raise PerformanceError(f"alpha must be in (0, 0.5), got {self.alpha}")


@dataclass
class OutputPaths:
    """Where ``run_performance`` writes (``None``: not written)."""

    summary_json: Optional[str] = None
    report_html: Optional[str] = None

    @classmethod
    def in_folder(cls, folder: str) -> OutputPaths:
        """``summary.json`` and ``report.html`` in ``folder``."""
        return cls(os.path.join(folder, SUMMARY_FILE), os.path.join(folder, REPORT_FILE))


# --------------------------------------------------------------------------- per cohort
def _value(point: Optional[float], low: Optional[float] = None, high: Optional[float] = None) -> MetricValue:
    def clean(x: Optional[float]) -> Optional[float]:
        return None if x is None or not math.isfinite(x) else round(float(x), 6)

    return MetricValue(clean(point), clean(low), clean(high))


def wilson(positives: int, rows: int, level: float) -> MetricValue:
    """The share ``positives / rows`` with its Wilson score interval."""
    if rows == 0:
        return MetricValue(None)
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    p = positives / rows
    centre = (p + z * z / (2 * rows)) / (1 + z * z / rows)
    half = z * math.sqrt(p * (1 - p) / rows + z * z / (4 * rows * rows)) / (1 + z * z / rows)
    return _value(p, max(0.0, centre - half), min(1.0, centre + half))


def realized_metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float, settings: PerformanceSettings
) -> Dict[str, MetricValue]:
    """Realized metrics of labelled rows with their intervals (empty when there are none)."""
    from kfpkit.core import bootstrap

    if labels.size == 0:
        return {}
    names = [m for m in REALIZED_METRICS if m in bootstrap.METRICS]
    found = bootstrap.intervals(
        labels, scores, threshold, names, settings.resamples, settings.level, settings.seed, groups=REALIZED_GROUPS
    )
    out = {name: _value(found[name].point, found[name].low, found[name].high) for name in names}
    out["positive_rate"] = wilson(int(labels.sum()), int(labels.size), settings.level)
    return out


def estimated_metrics(
    scores: np.ndarray, threshold: float, resamples: int, level: float, seed: int
) -> Dict[str, MetricValue]:
    """The label-free estimates of :func:`kfpkit.components.performance.estimate.estimate`."""
    return {name: _value(*v) for name, v in est.estimate(scores, threshold, resamples, level, seed).items()}


def calibration_check(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    realized: Dict[str, MetricValue],
    settings: PerformanceSettings,
) -> CalibrationCheck:
    """Estimated against realized on the same labelled rows (each realized value inside the estimate's interval)."""
    estimated = estimated_metrics(scores, threshold, settings.resamples * 4, CALIBRATION_LEVEL, settings.seed)
    metrics = {}
    for name in CALIBRATION_METRICS:
        e, r = estimated[name], realized[name].point
        within = e.low is None or e.high is None or r is None or (e.low <= r <= e.high)
        metrics[name] = CalibrationMetric(estimated=e, realized=r, within=within)
    return CalibrationCheck(passed=all(m.within for m in metrics.values()), level=CALIBRATION_LEVEL, metrics=metrics)


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2.0)


def verdict(
    mature: bool,
    realized: Dict[str, MetricValue],
    estimated: Dict[str, MetricValue],
    reference: Reference,
    level: float = DEFAULT_LEVEL,
    alpha: float = DEFAULT_ALPHA,
) -> List[str]:
    """Why a cohort is degraded (empty: it is not): judged metrics below the reference beyond noise.

    A metric is below beyond noise when ``reference - value > z(1 - alpha) * sqrt(se_value² + se_ref²)``,
    each standard error read from its interval at ``level`` (the value's upper half, the reference's lower
    half; ``se_ref`` is 0 for a point-only reference).
    """
    values, kind = (realized, "realized") if mature else (estimated, "estimated")
    z_level, z_alarm = _z(level), _z(1.0 - 2.0 * alpha)
    reasons = []
    for name in JUDGED_METRICS:
        ref, value = reference.metrics.get(name), values.get(name)
        if ref is None or value is None or value.high is None or value.point is None or value.low is None:
            continue
        noise = math.hypot((value.high - value.point) / z_level, (ref.point - ref.low) / z_level)
        if ref.point - value.point > z_alarm * noise:
            reasons.append(
                f"{kind} {name} {value.point:.3f} [{value.low:.3f}, {value.high:.3f}] is below the reference "
                f"{ref.point:.3f} [{ref.low:.3f}, {ref.high:.3f}] by {ref.point - value.point:.3f} "
                f"(> {z_alarm * noise:.3f}, the noise at alpha {alpha:g})"
            )
    return reasons


@dataclass
class CohortInput:
    """The rows of one cohort (slices of the window, which is sorted by time)."""

    start: datetime
    end: datetime
    scores: np.ndarray
    labels: np.ndarray  # -1: no label known at as_of


def judge_cohort(
    cohort: CohortInput,
    threshold: float,
    reference: Reference,
    settings: PerformanceSettings,
    as_of: datetime,
) -> CohortPerformance:
    """Everything the summary says about one cohort."""
    rows = int(cohort.scores.size)
    labelled_mask = cohort.labels >= 0
    labelled = int(labelled_mask.sum())
    share_ok = not settings.min_labelled_share or labelled >= settings.min_labelled_share * rows
    delay_ok = not settings.maturity or cohort.end + parse_duration(settings.maturity, "maturity") <= as_of
    mature = share_ok and delay_ok
    estimated = estimated_metrics(cohort.scores, threshold, settings.resamples, settings.level, settings.seed)
    realized: Dict[str, MetricValue] = {}
    calibration = None
    notes: List[str] = []
    if mature and labelled:
        y, s = cohort.labels[labelled_mask].astype(np.int64), cohort.scores[labelled_mask]
        realized = realized_metrics(y, s, threshold, settings)
        calibration = calibration_check(y, s, threshold, realized, settings)
        if not calibration.passed:
            off = [n for n, m in calibration.metrics.items() if not m.within]
            notes.append(f"calibration check failed: realized {', '.join(off)} outside the estimate's interval")
    elif mature:
        notes.append("matured without any label: not judged")
    else:
        notes.append(f"labels not matured ({labelled:,} of {rows:,} labelled): judged on the estimate only")
    reasons = (
        verdict(mature, realized, estimated, reference, settings.level, settings.alpha)
        if (labelled or not mature)
        else []
    )
    return CohortPerformance(
        start=cohort.start.isoformat(),
        end=cohort.end.isoformat(),
        rows=rows,
        labelled=labelled,
        mature=mature,
        realized=realized,
        estimated=estimated,
        degraded=bool(reasons),
        reasons=reasons + notes,
        calibration=calibration,
    )


def cohorts_of(live: LiveRows, labels: np.ndarray, length: timedelta) -> List[CohortInput]:
    """The window's rows cut into cohorts of ``length`` aligned to the UTC epoch; cohorts without rows left out."""
    step = int(length.total_seconds() * 1e9)
    index = live.times // step
    bounds = np.flatnonzero(np.diff(index)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [index.size]))
    out = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        if a == b:
            continue
        start = datetime.fromtimestamp(int(index[a]) * step / 1e9, tz=timezone.utc)
        out.append(CohortInput(start, start + length, live.scores[a:b], labels[a:b]))
    return out


# --------------------------------------------------------------------------- entry point
@dataclass
class PerformanceInputs:
    """What ``run_performance`` reads.

    Attributes:
        model_uri: Model version folder or registry URI: its card gives the threshold and the reference.
        live: Payload-log URI or a CSV/Parquet/JSON Lines table of scored rows.
        labels: Label tables.
        label_column: Their 0/1 label column.
        key: Key column(s), in the live window and in the label tables.
        labelled_at_column: When each label became known.
        timestamp_column: When each live row was scored.
        score_column: The calibrated score of each live row.
        as_of: The moment the run looks from (ISO-8601; empty: now).
        since: Rows scored before it are left out (ISO-8601; empty: no bound).
    """

    model_uri: str
    live: str
    labels: Sequence[str]
    label_column: str
    key: Sequence[str] = lab.DEFAULT_KEY
    labelled_at_column: str = lab.DEFAULT_LABELLED_AT
    timestamp_column: str = "timestamp"
    score_column: str = "score"
    as_of: Optional[str] = None
    since: Optional[str] = None
    model_name: Optional[str] = field(default=None, repr=False)


def run_performance(
    inputs: PerformanceInputs, settings: PerformanceSettings, outputs: OutputPaths
) -> PerformanceSummary:
    """Judges every cohort of the live window and writes the summary and the report together.

    Raises:
        PerformanceError: bad input (a label table, the live window, the model card or a setting); nothing
            is written then.
    """
    started = time.perf_counter()
    settings.check()
    as_of = parse_time(inputs.as_of, "as_of") or datetime.now(timezone.utc).replace(microsecond=0)
    since = parse_time(inputs.since, "since")
    if not inputs.label_column:
        raise PerformanceError("label_column is empty")
    card = read_card(inputs.model_uri)
    reference = reference_from_card(card, settings.level)
    live, table, joined = read_and_join(inputs, as_of, since)
    length = parse_duration(settings.cohort, "cohort")
    threshold = float(card.decision_threshold)
    cohorts = in_parallel(
        lambda c: judge_cohort(c, threshold, reference, settings, as_of), cohorts_of(live, joined.label, length)
    )
    summary = PerformanceSummary(
        degraded=any(c.degraded for c in cohorts),
        as_of=as_of.isoformat(),
        reference=reference,
        cohorts=cohorts,
        calibration_failed=any(c.calibration is not None and not c.calibration.passed for c in cohorts),
        model_uri=inputs.model_uri,
        live=inputs.live,
        labels=table.sources,
        label_column=inputs.label_column,
        key=list(inputs.key),
        threshold=threshold,
        cohort=settings.cohort,
        maturity=settings.maturity or None,
        min_labelled_share=settings.min_labelled_share,
        level=settings.level,
        resamples=settings.resamples,
        rows=live.rows,
        rows_after_as_of=live.after_as_of,
        label_counts=joined.counts,
    )
    write_outputs(summary, outputs)
    logger.info(
        "performance: %d rows, %d cohorts (%d matured), %d degraded, in %.2f s",
        live.rows,
        len(cohorts),
        sum(c.mature for c in cohorts),
        len(summary.degraded_cohorts),
        time.perf_counter() - started,
    )
    return summary


def read_and_join(inputs: PerformanceInputs, as_of: datetime, since: Optional[datetime]) -> tuple:
    """The live window's rows, the label tables and the join, as ``(LiveRows, LabelTable, JoinedLabels)``.

    The label tables are read on a second thread while the live window is read (Arrow's readers and kernels
    release the GIL); a bad live window is reported first, as when they were read one after the other.

    Raises:
        PerformanceError: a bad live window (or one without rows before ``as_of``) or label table.
    """
    from kfpkit.components.performance.tables import table_format

    # the model's name and version narrow a payload-log root (a table needs neither, nor the registry's import)
    name, version = _name_and_version(inputs.model_uri) if table_format(inputs.live) is None else (None, None)
    key = list(inputs.key) if inputs.labels else []  # without labels, nothing is joined: no key is read

    def labels() -> lab.LabelTable:
        return lab.read_labels(inputs.labels, inputs.label_column, list(inputs.key), inputs.labelled_at_column)

    with _pool(2 if inputs.labels else 1) as pool:
        tables = pool.submit(labels) if pool else None
        live = read_live(inputs.live, key, inputs.timestamp_column, inputs.score_column, as_of, since, name, version)
        if live.rows == 0:
            raise PerformanceError(f"live window {inputs.live!r} has no rows scored before as_of {as_of.isoformat()}")
        table = tables.result() if tables else labels()
    return live, table, lab.join_labels(live.keys, live.times, table, int(as_of.timestamp() * 1e6) * 1000)


MAX_THREADS = 4


def _cores() -> int:
    try:
        return max(1, min(MAX_THREADS, len(os.sched_getaffinity(0))))
    except AttributeError:  # not Linux
        return max(1, min(MAX_THREADS, os.cpu_count() or 1))


@contextlib.contextmanager
def _pool(wanted: int) -> Iterator[Any]:
    """A thread pool of up to ``wanted`` threads, at most one per core; ``None`` on one core."""
    workers = min(wanted, _cores())
    if workers <= 1:
        yield None
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        yield pool


def in_parallel(function: Callable[[Any], Any], items: Sequence[Any]) -> List[Any]:
    """``[function(item) for item in items]``, on one thread per core (numpy releases the GIL), in order.

    Every cohort is seeded by itself, so the results do not depend on the threads.
    """
    with _pool(len(items)) as pool:
        return list(pool.map(function, items)) if pool else [function(item) for item in items]


def _name_and_version(model_uri: str) -> tuple:
    from kfpkit.components.monitor.logic import model_name_and_version

    name, version = model_name_and_version(model_uri)
    return name, None if version is None else str(version)


def write_outputs(summary: PerformanceSummary, outputs: OutputPaths) -> None:
    """Writes the requested outputs all together (a failure leaves none of them)."""
    from kfpkit.components.performance.report import render_html
    from kfpkit.core.publish import publish_together

    files = []
    if outputs.summary_json:
        files.append((outputs.summary_json, summary.to_json().encode()))
    if outputs.report_html:
        files.append((outputs.report_html, render_html(summary).encode("utf-8")))
    if files:
        publish_together(files)


def metrics_to_log(summary: PerformanceSummary) -> Dict[str, float]:
    """The figures of the KFP ``Metrics`` output: counts, the verdict, the latest matured and latest cohort."""
    out: Dict[str, float] = {
        "rows": summary.rows,
        "cohorts": len(summary.cohorts),
        "mature_cohorts": sum(c.mature for c in summary.cohorts),
        "degraded_cohorts": len(summary.degraded_cohorts),
        "degraded": int(summary.degraded),
        "calibration_failed": int(summary.calibration_failed),
    }
    for name, value in vars(summary.label_counts).items():
        out[f"labels.{name}"] = value
    matured = [c for c in summary.cohorts if c.realized]
    for name, value in (matured[-1].realized if matured else {}).items():
        if value.point is not None:
            out[f"realized.{name}"] = round(value.point, 6)
    for name, value in (summary.cohorts[-1].estimated if summary.cohorts else {}).items():
        if value.point is not None:
            out[f"estimated.{name}"] = round(value.point, 6)
    return out
