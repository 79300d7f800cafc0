"""The canary analysis: measure canary and stable each step, judge, and promote or roll back.

One loop for every traffic backend (:mod:`kfpkit.components.rollout.backends`):

1. Read the current traffic from the backend. A retried task continues at the step of the current canary
   weight (the first configured weight ≥ it) and analyses that step again: it never jumps ahead.
2. Set the step's weight, wait one interval, query Prometheus for canary and stable.
3. Judge each check -- relative (canary against stable) and absolute (SLO); the names are those of the
   rollout record (:mod:`kfpkit.core.rollout_record`):

   ======================= ======== ===========================================================
   check                   kind     passes when
   ======================= ======== ===========================================================
   ``error_rate``          slo      canary error rate ≤ ``max_error_rate``
   ``p99_seconds``         slo      canary p99 ≤ ``max_p99_seconds``
   ``error_rate_increase`` relative canary − stable error rate ≤ ``max_error_rate_increase``
   ``p99_latency_ratio``   relative canary / stable latency at the judged quantile (p99 from 500 requests
                                    on the smaller side) ≤ ``max_latency_ratio`` (**)
   ``score_js_distance``   relative Jensen-Shannon distance (base 2) of the score histograms
                                    ≤ ``max_score_js`` (*)
   ``score_psi``           relative PSI of the score histograms, counts smoothed by 0.5,
                                    ≤ ``max_score_psi`` (*)
   ======================= ======== ===========================================================

   Both distances are :mod:`kfpkit.core.distances`' (the monitor's).

   (*) the limit is ``max(fixed limit, noise floor)`` (:func:`score_limits`, the monitor's rule), and a
   score distance above it fails only when a chi-square test of the two histograms' counts also rejects
   "same distribution" at ``score_alpha``: with few scores the distance is mostly noise.

   (**) or the difference is at most ``min_latency_increase_seconds``. The quantile judged
   (:func:`latency_quantile`) is the p99 only when the side with fewer requests has at least
   :data:`LATENCY_TAIL_REQUESTS` requests above it (500); with fewer it is the highest whole percentile
   that has as many above it on that count (p88 of 45 requests), the same on both sides, read from the
   two request-duration histograms: the p99 of 45 requests is the slowest single one, and one stall of a
   busy host rolled a good canary back. The reason names the quantile and why.

   A metric whose data is missing (fewer than ``min_requests`` canary requests in the step, no stable
   traffic to compare with, Prometheus unreachable) is *inconclusive*, never a pass.
4. Step verdict: ``fail`` if any metric fails (→ rollback at once); else ``inconclusive`` if any is (→ the
   step is analysed again; after ``max_inconclusive`` inconclusive intervals in all → rollback); else
   ``pass`` (→ next step). After the last step passes → promote.

At weight 100 the stable version gets no traffic; the relative checks then compare with the stable
values of the last interval in which stable had at least ``min_requests`` requests.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from kfpkit.components.rollout import queries as q
from kfpkit.components.rollout.prometheus import PrometheusClient, PrometheusUnavailable
from kfpkit.core import distances
from kfpkit.core.rollout_record import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    PROMOTE,
    RELATIVE,
    ROLLBACK,
    SLO,
    RolloutCheck,
    RolloutRecord,
    RolloutStep,
    SideTotals,
)
from kfpkit.core.traffic import Side, Traffic

DEFAULT_STEPS = (10, 25, 50, 100)
# requests a latency quantile needs above it (on the side with fewer) to be judged: no single stall decides
LATENCY_TAIL_REQUESTS = 5
LATENCY_QUANTILE = 0.99  # the quantile judged when there are enough requests
MIN_LATENCY_QUANTILE = 0.5
# probability that a score distance of two samples of one distribution crosses its noise floor (the monitor's)
SCORE_NOISE_ALPHA = distances.DEFAULT_ALPHA


class RolloutError(ValueError):
    """A rollout configuration or backend state the analysis cannot work with."""


@dataclasses.dataclass(frozen=True)
class Flag:
    """How a configuration field is set on the command line: ``kfpkit rollout`` generates its options from it.

    Attributes:
        name: The option, e.g. ``--max-p99``.
        help: Its help text (the CLI appends the default).
        value: How the option's text is read: ``number`` (the field's type), ``duration`` (``10s``, ``500ms``,
            ``2m``), ``steps`` (``10,25,50,100``), ``choice`` (one of ``choices``) or ``query``
            (``NAME=TEMPLATE``, repeatable).
        choices: The allowed values of a ``choice``.
    """

    name: str
    help: str
    value: str = "number"
    choices: Tuple[str, ...] = ()


def _flagged(default: Any, name: str, text: str, value: str = "number", choices: Tuple[str, ...] = ()) -> Any:
    return dataclasses.field(default=default, metadata={"flag": Flag(name, text, value, choices)})


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Limits of the judgement (see the module docstring); each field is also a ``kfpkit rollout`` option."""

    max_error_rate_increase: float = _flagged(
        0.02, "--max-error-rate-increase", "relative: canary minus stable error rate"
    )
    max_latency_ratio: float = _flagged(2.0, "--max-latency-ratio", "relative: canary p99 / stable p99")
    min_latency_increase_seconds: float = _flagged(
        0.005,
        "--min-latency-increase",
        "relative: a p99 ratio above the limit fails only when the p99 grew by more than this",
        "duration",
    )
    max_score_js: float = _flagged(
        0.1, "--max-score-js", f"relative: {distances.METRIC_NAMES['js']}, of the score histograms"
    )
    max_score_psi: float = _flagged(
        0.25, "--max-score-psi", f"relative: {distances.METRIC_NAMES['psi']}, of the score histograms"
    )
    max_error_rate: float = _flagged(0.05, "--max-error-rate", "SLO: canary error rate")
    max_p99_seconds: float = _flagged(1.0, "--max-p99", "SLO: canary p99 latency", "duration")
    score_alpha: float = _flagged(
        0.01,
        "--score-alpha",
        "a score distance above its limit fails only when a chi-square test of the two histograms rejects "
        "'same distribution' at this level",
    )


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
    """Steps, timing and limits of one rollout; each field but ``thresholds`` is also a ``kfpkit rollout`` option.

    Attributes:
        steps: Canary weights in percent, increasing, the last one 100.
        interval_s: Seconds of traffic analysed per step.
        min_requests: Canary requests an interval needs to be judged (stable too, while it has traffic).
        max_inconclusive: Inconclusive intervals (in all) after which the rollout rolls back.
        thresholds: The limits of :class:`Thresholds`.
        query_set: ``kfpkit`` or ``queue-proxy`` (:mod:`kfpkit.components.rollout.queries`).
        query_overrides: ``{query name: PromQL template}`` replacing templates of the set.
    """

    steps: Tuple[int, ...] = _flagged(DEFAULT_STEPS, "--steps", "canary weights in percent", "steps")
    interval_s: float = _flagged(60.0, "--interval", "traffic analysed per step", "duration")
    min_requests: int = _flagged(50, "--min-requests", "canary requests a step needs to be judged")
    max_inconclusive: int = _flagged(3, "--max-inconclusive", "inconclusive intervals before a rollback")
    thresholds: Thresholds = Thresholds()
    query_set: str = _flagged("kfpkit", "--query-set", "PromQL template set", "choice", tuple(q.QUERY_SETS))
    query_overrides: Tuple[Tuple[str, str], ...] = _flagged(
        (),
        "--query",
        f"override one query template ({', '.join(q.QUERY_NAMES)}); repeatable",
        "query",
    )

    def __post_init__(self) -> None:
        steps = tuple(int(s) for s in self.steps)
        if not steps or any(b <= a for a, b in itertools.pairwise(steps)) or steps[0] <= 0 or steps[-1] != 100:
            raise RolloutError(f"steps must increase from above 0 to exactly 100, got {list(steps)}")
        if self.interval_s <= 0:
            raise RolloutError(f"interval must be positive, got {self.interval_s}")
        if self.min_requests < 1 or self.max_inconclusive < 1:
            raise RolloutError("min_requests and max_inconclusive must be at least 1")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "query_overrides", tuple((str(k), str(v)) for k, v in self.query_overrides))
        q.query_set(self.query_set, dict(self.query_overrides))  # fail early on a bad template

    def templates(self) -> Dict[str, str]:
        """The PromQL templates of :attr:`query_set` with :attr:`query_overrides` applied."""
        return q.query_set(self.query_set, dict(self.query_overrides))


@dataclasses.dataclass
class Measurement:
    """One side's numbers over one interval (``None``: no data); ``unavailable`` says why none could be read.

    ``unavailable`` names its source (``prometheus unavailable: ...``, ``cloud monitoring unavailable: ...``):
    the analysis quotes it as the reason of an inconclusive interval. ``latency_counts`` / ``latency_edges``
    are the request-duration histogram of the interval (per-bucket counts, upper edges in seconds, ``inf``
    last); the latency comparison judges a quantile from them (:func:`latency_quantile`).
    """

    requests: Optional[float] = None
    errors: Optional[float] = None
    p99_seconds: Optional[float] = None
    score_counts: Optional[List[float]] = None
    score_edges: Optional[List[float]] = None
    unavailable: str = ""
    latency_counts: Optional[List[float]] = None
    latency_edges: Optional[List[float]] = None

    @property
    def error_rate(self) -> Optional[float]:
        """Errors per request, or ``None`` without requests or error data."""
        if not self.requests or self.errors is None:
            return None
        return self.errors / self.requests

    def totals(self) -> SideTotals:
        """The numbers the rollout record keeps of this side."""
        return SideTotals(
            requests=self.requests,
            errors=self.errors,
            error_rate=self.error_rate,
            p99_seconds=self.p99_seconds,
            scored=sum(self.score_counts) if self.score_counts else None,
        )


# ---------------------------------------------------------------------------------------------- histograms
def bucket_counts(cumulative: Sequence[Tuple[float, float]]) -> Tuple[List[float], List[float]]:
    """Per-bin counts and upper edges from cumulative ``(le, count)`` pairs (``+Inf`` included)."""
    ordered = sorted(cumulative)
    edges, counts, previous = [], [], 0.0
    for le, count in ordered:
        edges.append(le)
        counts.append(max(0.0, count - previous))
        previous = max(previous, count)
    return counts, edges


def homogeneity_p_value(a_counts: Sequence[float], b_counts: Sequence[float]) -> float:
    """p-value of a chi-square test that two histograms over the same bins come from one distribution.

    Small samples scatter the distances (the JS distance of two samples of one distribution shrinks only
    like ``sqrt(bins / n)``), so a distance above its threshold fails a step only when this test also
    says the difference is not sampling noise.
    """
    from scipy.stats import chi2_contingency

    pairs = [(round(a), round(b)) for a, b in zip(a_counts, b_counts, strict=False) if round(a) + round(b) > 0]
    if len(pairs) < 2 or not all(sum(col) > 0 for col in zip(*pairs, strict=False)):
        return 1.0
    return float(chi2_contingency([[a for a, _ in pairs], [b for _, b in pairs]])[1])


# -------------------------------------------------------------------------------------------- measuring
class PrometheusSource:
    """Measures one side over one interval with the configured PromQL templates."""

    def __init__(self, client: PrometheusClient, templates: Dict[str, str]):
        self.client = client
        self.templates = templates

    def measure(self, traffic: Traffic, side: Side, interval_s: float, at: Optional[float] = None) -> Measurement:
        """Requests, errors, p99 latency and the score histogram of ``side`` over the ``interval_s`` before ``at``.

        ``at`` is a Unix time (default: now). When Prometheus cannot be reached or refuses a query, the measurement
        says why in ``unavailable``; a histogram with a NaN bucket is left out.
        """
        values = {
            "namespace": traffic.namespace,
            "isvc": traffic.isvc,
            "version": side.version,
            "revision": side.revision,
            "interval": q.duration(interval_s),
        }
        out = Measurement()
        try:
            out.requests = self.client.scalar(q.render(self.templates["requests"], **values), at)
            out.errors = self.client.scalar(q.render(self.templates["errors"], **values), at)
            out.p99_seconds = self.client.scalar(q.render(self.templates["p99_seconds"], **values), at)
            samples = self.client.query(q.render(self.templates["score_buckets"], **values), at)
            latency_template = self.templates["latency_buckets"]  # empty: not queried (see queries.query_set)
            latency = self.client.query(q.render(latency_template, **values), at) if latency_template else []
        except PrometheusUnavailable as exc:
            return Measurement(unavailable=f"prometheus unavailable: {exc}")
        out.score_counts, out.score_edges = _histogram(samples)
        out.latency_counts, out.latency_edges = _histogram(latency)
        return out


def _histogram(samples: Sequence[Tuple[Dict[str, str], float]]) -> Tuple[Optional[List[float]], Optional[List[float]]]:
    """Per-bin counts and edges of a vector by ``le``; ``(None, None)`` when it is empty or has a NaN bucket."""
    pairs = [(float(labels.get("le", "nan")), v) for labels, v in samples if "le" in labels]
    if not pairs or any(math.isnan(v) for _, v in pairs):
        return None, None
    counts, edges = bucket_counts(pairs)
    return counts, edges


# -------------------------------------------------------------------------------------------- judging
def judge(canary: Measurement, stable: Optional[Measurement], config: RolloutConfig) -> Tuple[str, List[RolloutCheck]]:
    """The step verdict and one :class:`~kfpkit.core.rollout_record.RolloutCheck` per check (module docstring).

    Args:
        canary: The canary's numbers of the interval.
        stable: The stable numbers to compare with (``None``: none with enough requests yet).
        config: The rollout's configuration (``min_requests`` and the thresholds).
    """
    missing = _missing_data(canary, stable, config)
    canary_judgeable = not canary.unavailable and (canary.requests or 0) >= config.min_requests
    relative_judgeable = canary_judgeable and stable is not None and not missing
    t = config.thresholds
    rows = [
        *_slo_checks(canary, t, canary_judgeable, missing),
        *_relative_checks(canary, stable, t, relative_judgeable, missing),
        *_score_checks(canary, stable, t, relative_judgeable, missing),
    ]
    return step_verdict(rows), rows


def step_verdict(rows: Sequence[RolloutCheck]) -> str:
    """``fail`` if any check failed, else ``inconclusive`` if any is, else ``pass``."""
    verdicts = {r.verdict for r in rows}
    if FAIL in verdicts:
        return FAIL
    return INCONCLUSIVE if INCONCLUSIVE in verdicts else PASS


def _missing_data(canary: Measurement, stable: Optional[Measurement], config: RolloutConfig) -> str:
    """Why the interval cannot be judged (empty: it can)."""
    if canary.unavailable:
        return canary.unavailable
    if stable is not None and stable.unavailable:
        return stable.unavailable
    if not canary.requests or canary.requests < config.min_requests:
        return f"canary answered {canary.requests or 0:.0f} requests, fewer than min_requests={config.min_requests}"
    if stable is None:
        return "no stable interval with enough requests to compare with"
    return ""


def _check(
    metric: str,
    kind: str,
    canary: Optional[float],
    stable: Optional[float],
    threshold: float,
    ok: Optional[bool],
    reason: str = "",
) -> RolloutCheck:
    verdict = INCONCLUSIVE if ok is None else (PASS if ok else FAIL)
    return RolloutCheck(metric, kind, canary, stable, threshold, verdict, reason)


def _slo_checks(canary: Measurement, t: Thresholds, judgeable: bool, missing: str) -> List[RolloutCheck]:
    """The absolute limits: they need the canary only."""
    c_err, c_p99 = canary.error_rate, canary.p99_seconds
    if judgeable and c_err is not None:
        error = _check("error_rate", SLO, c_err, None, t.max_error_rate, c_err <= t.max_error_rate)
    else:
        error = _check("error_rate", SLO, c_err, None, t.max_error_rate, None, missing or "no error data")
    if judgeable and c_p99 is not None:
        latency = _check("p99_seconds", SLO, c_p99, None, t.max_p99_seconds, c_p99 <= t.max_p99_seconds)
    else:
        latency = _check("p99_seconds", SLO, c_p99, None, t.max_p99_seconds, None, missing or "no latency data")
    return [error, latency]


def _relative_checks(
    canary: Measurement, stable: Optional[Measurement], t: Thresholds, judgeable: bool, missing: str
) -> List[RolloutCheck]:
    """Error rate and p99 latency of the canary against the stable version's."""
    c_err = canary.error_rate
    s_err = stable.error_rate if stable else None
    limit = t.max_error_rate_increase
    if judgeable and c_err is not None and s_err is not None:
        error = _check("error_rate_increase", RELATIVE, c_err, s_err, limit, c_err - s_err <= limit)
    else:
        error = _check("error_rate_increase", RELATIVE, c_err, s_err, limit, None, missing or "no error data")
    return [error, _latency_check(canary, stable, t, judgeable, missing)]


def _latency_check(
    canary: Measurement, stable: Optional[Measurement], t: Thresholds, judgeable: bool, missing: str
) -> RolloutCheck:
    """Canary latency against stable at the quantile their numbers of requests can estimate (module docstring)."""
    name, limit = "p99_latency_ratio", t.max_latency_ratio
    judged = compared_latencies(canary, stable) if judgeable and stable is not None else None
    if judged is None:
        s_p99 = stable.p99_seconds if stable else None
        return _check(name, RELATIVE, None, s_p99, limit, None, missing or "no latency data")
    c_value, s_value, note = judged
    ratio = c_value / s_value
    ok = ratio <= limit or c_value - s_value <= t.min_latency_increase_seconds
    why = note
    if ratio > limit and ok:
        why += f"; within {t.min_latency_increase_seconds}s of stable"
    return _check(name, RELATIVE, ratio, s_value, limit, ok, why.lstrip("; "))


def latency_quantile(requests: float) -> float:
    """The latency quantile that ``requests`` requests can estimate: :data:`LATENCY_TAIL_REQUESTS` of them above it.

    The p99 (:data:`LATENCY_QUANTILE`) from 500 requests on; below, the highest whole percentile ``q`` with
    ``requests × (1 − q) ≥ 5`` (p98 of 250 to 499 requests, p88 of 45, p80 of 25), at least the median
    (:data:`MIN_LATENCY_QUANTILE`). A quantile with fewer requests above it is one or two requests: a
    single stall of a busy host (a scheduling delay, a garbage collection) moves it by a whole bucket.

    Args:
        requests: The number of requests of the side with fewer (Prometheus's ``increase()`` may make it
            fractional).
    """
    if requests <= 0:
        return MIN_LATENCY_QUANTILE
    percent = math.floor(100.0 * (1.0 - LATENCY_TAIL_REQUESTS / requests) + 1e-9)
    return min(LATENCY_QUANTILE, max(MIN_LATENCY_QUANTILE, percent / 100.0))


def compared_latencies(canary: Measurement, stable: Measurement) -> Optional[Tuple[float, float, str]]:
    """``(canary latency, stable latency, note)`` at the quantile the latency check judges; ``None``: no data.

    With both request-duration histograms, the quantile is :func:`latency_quantile` of the smaller of the two
    histograms' request counts, read from each histogram the way ``histogram_quantile`` reads it
    (:func:`kfpkit.components.rollout.cloud_monitoring.quantile`); the note names it and why when it is not
    the p99. Without them (a query override that returns none), the two p99s of the ``p99_seconds`` query.
    """
    from kfpkit.components.rollout.cloud_monitoring import quantile

    c_counts, s_counts = canary.latency_counts, stable.latency_counts
    if c_counts and s_counts and canary.latency_edges and stable.latency_edges:
        smaller = min(sum(c_counts), sum(s_counts))
        level = latency_quantile(smaller)
        c_value = quantile(level, canary.latency_edges, c_counts)
        s_value = quantile(level, stable.latency_edges, s_counts)
        if c_value is not None and s_value:
            label = f"p{round(level * 100)}"
            note = f"{label}: canary {c_value:.3g}s, stable {s_value:.3g}s"
            if level < LATENCY_QUANTILE:
                note += (
                    f"; p99 needs {LATENCY_TAIL_REQUESTS / (1 - LATENCY_QUANTILE):.0f} requests on the smaller side,"
                    f" {smaller:.0f} give {label} ({LATENCY_TAIL_REQUESTS} above it)"
                )
            return c_value, s_value, note
    if canary.p99_seconds is not None and stable.p99_seconds:
        return canary.p99_seconds, stable.p99_seconds, "p99 (no request-duration histograms)"
    return None


def _score_checks(
    canary: Measurement, stable: Optional[Measurement], t: Thresholds, judgeable: bool, missing: str
) -> List[RolloutCheck]:
    """JS distance and PSI of the score histograms (:mod:`kfpkit.core.distances`), gated by a chi-square test."""
    c_counts = canary.score_counts
    s_counts = stable.score_counts if stable is not None else None
    comparable = (
        judgeable
        and c_counts
        and s_counts
        and stable is not None
        and canary.score_edges == stable.score_edges
        and sum(c_counts) > 0
        and sum(s_counts) > 0
    )
    if not comparable or c_counts is None or s_counts is None:
        why = missing or "no score histogram on one side (or different buckets)"
        return [
            _check("score_js_distance", RELATIVE, None, None, t.max_score_js, None, why),
            _check("score_psi", RELATIVE, None, None, t.max_score_psi, None, why),
        ]
    js = distances.js_distance(c_counts, s_counts)
    index = distances.psi(c_counts, s_counts)
    js_limit, psi_limit, floor_note = score_limits(c_counts, s_counts, t)
    p_value = homogeneity_p_value(c_counts, s_counts)
    significant = p_value < t.score_alpha
    why = f"chi-square p={p_value:.2g}" + ("" if significant else f" ≥ {t.score_alpha}: within sampling noise")
    why += floor_note
    return [
        _check("score_js_distance", RELATIVE, js, 0.0, js_limit, js <= js_limit or not significant, why),
        _check("score_psi", RELATIVE, index, 0.0, psi_limit, index <= psi_limit or not significant, why),
    ]


def score_limits(
    canary_counts: Sequence[float], stable_counts: Sequence[float], t: Thresholds
) -> Tuple[float, float, str]:
    """The JS-distance and PSI limits for two score histograms of these sizes, and a note for the reason.

    Each limit is ``max(fixed limit, noise floor)``: the noise floor
    (:func:`kfpkit.core.distances.js_floor`, :func:`~kfpkit.core.distances.psi_floor`, the monitor's) is the
    distance that two samples of one distribution, of the canary's and the stable version's numbers of
    scores on the histograms' non-empty buckets, exceed with probability :data:`SCORE_NOISE_ALPHA`. Without
    it the fixed 0.1 sat inside the noise of a few hundred scores per side (JS distance of two samples of
    one distribution: median about 0.07, 99th percentile about 0.1 at 900 against 2,700 scores on 20
    buckets), and the chi-square gate alone let an unlucky sample through (Prometheus's ``increase()``
    extrapolates the counts, which inflates the statistic, and the sparse tail buckets make its p-value
    too small).

    Args:
        canary_counts: The canary's score counts per bucket.
        stable_counts: The stable version's, on the same buckets.
        t: The thresholds (``max_score_js``, ``max_score_psi``).

    Returns:
        ``(js_limit, psi_limit, note)``; the note (empty when the fixed limits hold) names the floor.
    """
    bins = sum(1 for a, b in zip(canary_counts, stable_counts, strict=False) if a + b > 0)
    n_canary, n_stable = round(sum(canary_counts)), round(sum(stable_counts))
    js_floor = distances.js_floor(bins, n_canary, n_stable, SCORE_NOISE_ALPHA)
    psi_floor = distances.psi_floor(bins, n_canary, n_stable, SCORE_NOISE_ALPHA)
    note = ""
    if js_floor > t.max_score_js or psi_floor > t.max_score_psi:
        note = (
            f"; noise floor of {n_canary} vs {n_stable} scores on {bins} buckets: "
            f"JS {js_floor:.3g}, PSI {psi_floor:.3g}"
        )
    return max(t.max_score_js, js_floor), max(t.max_score_psi, psi_floor), note


# -------------------------------------------------------------------------------------------- the loop
def resume_index(steps: Sequence[int], canary_percent: int) -> int:
    """Index of the step a rollout at ``canary_percent`` continues with (the first weight ≥ it)."""
    for index, weight in enumerate(steps):
        if weight >= canary_percent:
            return index
    return len(steps) - 1


@dataclasses.dataclass
class _Progress:
    """Where the loop is between two steps."""

    traffic: Traffic
    index: int
    inconclusive: int = 0
    baseline: Optional[Measurement] = None  # the last stable interval with at least min_requests requests


def run_rollout(
    backend: Any,
    source: Any,
    config: RolloutConfig,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_step: Optional[Callable[[RolloutRecord], None]] = None,
    log: Callable[[str], None] = lambda _message: None,
) -> RolloutRecord:
    """Runs the canary analysis and returns the record: analyse each step, then promote or roll back.

    Args:
        backend: A :class:`~kfpkit.components.rollout.backends.TrafficBackend`.
        source: Measures each side over an interval (a :class:`PrometheusSource`).
        config: Steps, timing, limits and queries.
        clock: Unix time (tests pass a fake one).
        sleep: Waits one interval (tests pass a fake one).
        on_step: Called with the record after every step and after the decision (the writers).
        log: Receives one line per step and one for the decision.

    Raises:
        RolloutError: the backend has no canary to analyse.
    """
    traffic = backend.current()
    if traffic.canary is None:
        raise RolloutError(f"{traffic.namespace}/{traffic.isvc} has no canary to analyse")
    record = RolloutRecord(
        backend=getattr(backend, "NAME", ""),
        namespace=traffic.namespace,
        isvc=traffic.isvc,
        stable_version=traffic.stable.version,
        canary_version=traffic.canary.version,
        steps_config=list(config.steps),
        interval_s=config.interval_s,
        url=traffic.url,
    )
    progress = _Progress(traffic, index=0)
    if traffic.canary_percent > 0:
        progress.index = resume_index(config.steps, traffic.canary_percent)
        record.resumed_at_weight = traffic.canary_percent
        log(f"resuming at {traffic.canary_percent}% (step {progress.index + 1}/{len(config.steps)})")
    decided = False
    while not decided:
        step = _analyse_step(backend, source, config, progress, record, clock, sleep)
        record.steps.append(step)
        log(f"step {step.step} at {step.weight}%: {step.verdict}" + _failing(step.metrics))
        if on_step:
            on_step(record)
        decided = _advance(record, step, progress, config)
    _decide(backend, record, log)
    if on_step:
        on_step(record)
    return record


def _analyse_step(
    backend: Any,
    source: Any,
    config: RolloutConfig,
    progress: _Progress,
    record: RolloutRecord,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> RolloutStep:
    """Sets the step's weight, waits one interval, measures both sides and judges them."""
    weight = config.steps[progress.index]
    if progress.traffic.canary_percent != weight:
        progress.traffic = backend.set_canary_percent(weight)
    traffic = progress.traffic
    started = clock()
    sleep(config.interval_s)
    at = clock()
    elapsed = max(config.interval_s, at - started)
    canary = source.measure(traffic, traffic.canary, elapsed, at)
    stable = source.measure(traffic, traffic.stable, elapsed, at) if weight < 100 else None
    if stable is not None and not stable.unavailable and (stable.requests or 0) >= config.min_requests:
        progress.baseline = stable
    compare = stable if (stable is not None and stable.unavailable) else progress.baseline
    verdict, rows = judge(canary, compare, config)
    return RolloutStep(
        step=progress.index + 1,
        weight=weight,
        started_at=started,
        interval_s=round(elapsed, 3),
        verdict=verdict,
        metrics=rows,
        canary=canary.totals(),
        stable=(stable or Measurement()).totals(),
        resumed=record.resumed_at_weight is not None and not record.steps,
    )


def _advance(record: RolloutRecord, step: RolloutStep, progress: _Progress, config: RolloutConfig) -> bool:
    """Moves past ``step``: True when the rollout is decided (``record.reason`` says why), else it goes on."""
    if step.verdict == FAIL:
        record.reason = "failed checks: " + ", ".join(r.metric for r in step.metrics if r.verdict == FAIL)
        return True
    if step.verdict == INCONCLUSIVE:
        progress.inconclusive += 1
        if progress.inconclusive >= config.max_inconclusive:
            record.reason = (
                f"{progress.inconclusive} inconclusive intervals (max_inconclusive={config.max_inconclusive})"
            )
            return True
        return False
    if progress.index == len(config.steps) - 1:
        record.decision = PROMOTE
        record.reason = f"all {len(config.steps)} steps passed"
        return True
    progress.index += 1
    return False


def _decide(backend: Any, record: RolloutRecord, log: Callable[[str], None]) -> None:
    """Promotes after every step passed, else rolls back; records the traffic after it."""
    if record.decision == PROMOTE:
        traffic = backend.promote()
    else:
        record.decision = ROLLBACK
        traffic = backend.rollback()
    record.final_traffic = final_traffic(traffic, record)
    log(f"decision: {record.decision} ({record.reason})")


def final_traffic(traffic: Traffic, record: RolloutRecord) -> Dict[str, int]:
    """``{version: percent}`` after the decision."""
    if record.decision == PROMOTE:
        return {record.canary_version: 100}
    return {record.stable_version: 100 - traffic.canary_percent, record.canary_version: traffic.canary_percent}


def _failing(rows: Sequence[RolloutCheck]) -> str:
    bad = [f"{r.metric}={_fmt(r.canary)} (limit {r.threshold})" for r in rows if r.verdict == FAIL]
    return f" [{', '.join(bad)}]" if bad else ""


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4g}"
