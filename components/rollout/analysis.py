"""The canary analysis: measure canary and stable each step, judge, and promote or roll back.

One loop for every traffic backend (:mod:`kfpkit.components.rollout.backends`):

1. Read the current traffic from the backend. A retried task continues at the step of the current canary
   weight (the first configured weight ≥ it) and analyses that step again: it never jumps ahead.
2. Set the step's weight, wait one interval, query Prometheus for canary and stable.
3. Judge each metric -- relative (canary against stable) and absolute (SLO):

   ============== ====================================== =================================
   metric         relative                               absolute (SLO)
   ============== ====================================== =================================
   error_rate     canary − stable ≤ max_error_rate_increase   canary ≤ max_error_rate
   p99_latency    canary / stable ≤ max_latency_ratio (**)   canary ≤ max_p99_seconds
   score_js       JS distance of the score histograms ≤ max_score_js (*)
   score_psi      PSI of the score histograms ≤ max_score_psi (*)
   ============== ====================================== =================================

   (*) a score distance above its limit fails only when a chi-square test of the two histograms' counts
   also rejects "same distribution" at ``score_alpha``: with few scores the distance is mostly noise.

   (**) or the p99 difference is at most ``min_latency_increase_seconds`` (p99 of a few requests on a busy
   host, read from histogram buckets, moves by a bucket width without any change in the version).

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

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
PROMOTE, ROLLBACK = "promote", "rollback"
DEFAULT_STEPS = (10, 25, 50, 100)


class RolloutError(ValueError):
    """A rollout configuration or backend state the analysis cannot work with."""


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Limits of the judgement (see the module docstring)."""

    max_error_rate_increase: float = 0.02
    max_latency_ratio: float = 2.0
    min_latency_increase_seconds: float = 0.005
    max_score_js: float = 0.1
    max_score_psi: float = 0.25
    max_error_rate: float = 0.05
    max_p99_seconds: float = 1.0
    score_alpha: float = 0.01


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
    """Steps, timing and limits of one rollout.

    Attributes:
        steps: Canary weights in percent, increasing, the last one 100.
        interval_s: Seconds of traffic analysed per step.
        min_requests: Canary requests an interval needs to be judged (stable too, while it has traffic).
        max_inconclusive: Inconclusive intervals (in all) after which the rollout rolls back.
        thresholds: The limits of :class:`Thresholds`.
        query_set: ``kfpkit`` or ``queue-proxy`` (:mod:`kfpkit.components.rollout.queries`).
        query_overrides: ``{query name: PromQL template}`` replacing templates of the set.
    """

    steps: Tuple[int, ...] = DEFAULT_STEPS
    interval_s: float = 60.0
    min_requests: int = 50
    max_inconclusive: int = 3
    thresholds: Thresholds = Thresholds()
    query_set: str = "kfpkit"
    query_overrides: Tuple[Tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        steps = tuple(int(s) for s in self.steps)
        if not steps or any(b <= a for a, b in itertools.pairwise(steps)) or steps[0] <= 0 or steps[-1] != 100:
            raise RolloutError(f"steps must increase from above 0 to exactly 100, got {list(steps)}")
        if self.interval_s <= 0:
            raise RolloutError(f"interval must be positive, got {self.interval_s}")
        if self.min_requests < 1 or self.max_inconclusive < 1:
            raise RolloutError("min_requests and max_inconclusive must be at least 1")
        object.__setattr__(self, "steps", steps)
        q.query_set(self.query_set, dict(self.query_overrides))  # fail early on a bad template

    def templates(self) -> Dict[str, str]:
        return q.query_set(self.query_set, dict(self.query_overrides))


@dataclasses.dataclass(frozen=True)
class Side:
    """One version behind the traffic split, as the query placeholders name it."""

    version: str
    revision: str = ""


@dataclasses.dataclass
class Traffic:
    """What a backend routes now: the canary's share in percent (0 when there is no canary)."""

    namespace: str
    isvc: str
    stable: Side
    canary: Optional[Side]
    canary_percent: int
    url: str = ""


@dataclasses.dataclass
class Measurement:
    """One side's numbers over one interval (``None``: no data)."""

    requests: Optional[float] = None
    errors: Optional[float] = None
    p99_seconds: Optional[float] = None
    score_counts: Optional[List[float]] = None
    score_edges: Optional[List[float]] = None
    unavailable: str = ""

    @property
    def error_rate(self) -> Optional[float]:
        if not self.requests or self.errors is None:
            return None
        return self.errors / self.requests

    def as_dict(self) -> Dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p99_seconds": self.p99_seconds,
            "scored": sum(self.score_counts) if self.score_counts else None,
        }


@dataclasses.dataclass
class MetricVerdict:
    """One row of the rollout record."""

    metric: str
    kind: str  # relative | slo
    canary: Optional[float]
    stable: Optional[float]
    threshold: float
    verdict: str
    reason: str = ""


@dataclasses.dataclass
class StepRecord:
    """One analysed interval."""

    step: int
    weight: int
    started_at: float
    interval_s: float
    verdict: str
    metrics: List[MetricVerdict]
    canary: Dict[str, Any]
    stable: Dict[str, Any]
    resumed: bool = False


@dataclasses.dataclass
class RolloutRecord:
    """The rollout record: every step, then the decision (``promote`` | ``rollback``)."""

    namespace: str
    isvc: str
    stable_version: str
    canary_version: str
    steps_config: List[int]
    interval_s: float
    steps: List[StepRecord] = dataclasses.field(default_factory=list)
    decision: str = ""
    reason: str = ""
    final_traffic: Dict[str, int] = dataclasses.field(default_factory=dict)
    resumed_at_weight: Optional[int] = None

    @property
    def intervals_to_decision(self) -> int:
        return len(self.steps)

    def as_dict(self) -> Dict[str, Any]:
        out = dataclasses.asdict(self)
        out["intervals_to_decision"] = self.intervals_to_decision
        return out


# ---------------------------------------------------------------------------------------------- distances
def bucket_counts(cumulative: Sequence[Tuple[float, float]]) -> Tuple[List[float], List[float]]:
    """Per-bin counts and upper edges from cumulative ``(le, count)`` pairs (``+Inf`` included)."""
    ordered = sorted(cumulative)
    edges, counts, previous = [], [], 0.0
    for le, count in ordered:
        edges.append(le)
        counts.append(max(0.0, count - previous))
        previous = max(previous, count)
    return counts, edges


def js_distance(p_counts: Sequence[float], q_counts: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two histograms over the same bins."""
    p, qq = _normalise(p_counts), _normalise(q_counts)
    m = [(a + b) / 2 for a, b in zip(p, qq, strict=False)]

    def kl(x: Sequence[float], y: Sequence[float]) -> float:
        return sum(a * math.log2(a / b) for a, b in zip(x, y, strict=False) if a > 0)

    return math.sqrt(max(0.0, (kl(p, m) + kl(qq, m)) / 2))


def psi(expected_counts: Sequence[float], actual_counts: Sequence[float], floor: float = 1e-4) -> float:
    """Population stability index of ``actual`` against ``expected`` (bin shares floored at ``floor``)."""
    e = [max(v, floor) for v in _normalise(expected_counts)]
    a = [max(v, floor) for v in _normalise(actual_counts)]
    return sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=False))


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


def _normalise(counts: Sequence[float]) -> List[float]:
    total = float(sum(counts))
    if total <= 0:
        raise ValueError("empty histogram")
    return [c / total for c in counts]


# -------------------------------------------------------------------------------------------- measuring
class PrometheusSource:
    """Measures one side over one interval with the configured PromQL templates."""

    def __init__(self, client: PrometheusClient, templates: Dict[str, str]):
        self.client = client
        self.templates = templates

    def measure(self, traffic: Traffic, side: Side, interval_s: float, at: Optional[float] = None) -> Measurement:
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
        except PrometheusUnavailable as exc:
            return Measurement(unavailable=str(exc))
        pairs = [(float(labels.get("le", "nan")), v) for labels, v in samples if "le" in labels]
        if pairs and not any(math.isnan(v) for _, v in pairs):
            out.score_counts, out.score_edges = bucket_counts(pairs)
        return out


# -------------------------------------------------------------------------------------------- judging
def judge(canary: Measurement, stable: Optional[Measurement], config: RolloutConfig) -> Tuple[str, List[MetricVerdict]]:
    """The step verdict and one :class:`MetricVerdict` per check (see the module docstring)."""
    t = config.thresholds
    rows: List[MetricVerdict] = []
    missing = ""
    if canary.unavailable:
        missing = f"prometheus unavailable: {canary.unavailable}"
    elif stable is not None and stable.unavailable:
        missing = f"prometheus unavailable: {stable.unavailable}"
    elif not canary.requests or canary.requests < config.min_requests:
        missing = f"canary answered {canary.requests or 0:.0f} requests, fewer than min_requests={config.min_requests}"
    elif stable is None:
        missing = "no stable interval with enough requests to compare with"

    def row(metric: str, kind: str, c: Optional[float], s: Optional[float], limit: float, ok: Optional[bool], why=""):
        verdict = INCONCLUSIVE if ok is None else (PASS if ok else FAIL)
        rows.append(MetricVerdict(metric, kind, c, s, limit, verdict, why))

    c_err = canary.error_rate
    s_err = stable.error_rate if stable else None
    c_p99 = canary.p99_seconds
    s_p99 = stable.p99_seconds if stable else None
    can_judge_canary = not canary.unavailable and bool(canary.requests) and canary.requests >= config.min_requests

    # absolute SLOs need the canary only
    if can_judge_canary and c_err is not None:
        row("error_rate", "slo", c_err, None, t.max_error_rate, c_err <= t.max_error_rate)
    else:
        row("error_rate", "slo", c_err, None, t.max_error_rate, None, missing or "no error data")
    if can_judge_canary and c_p99 is not None:
        row("p99_seconds", "slo", c_p99, None, t.max_p99_seconds, c_p99 <= t.max_p99_seconds)
    else:
        row("p99_seconds", "slo", c_p99, None, t.max_p99_seconds, None, missing or "no latency data")

    relative_ok = can_judge_canary and stable is not None and not missing
    if relative_ok and c_err is not None and s_err is not None:
        row(
            "error_rate_increase",
            "relative",
            c_err,
            s_err,
            t.max_error_rate_increase,
            c_err - s_err <= t.max_error_rate_increase,
        )
    else:
        row(
            "error_rate_increase", "relative", c_err, s_err, t.max_error_rate_increase, None, missing or "no error data"
        )
    if relative_ok and c_p99 is not None and s_p99:
        ratio = c_p99 / s_p99
        ok = ratio <= t.max_latency_ratio or c_p99 - s_p99 <= t.min_latency_increase_seconds
        why = "" if ratio <= t.max_latency_ratio or not ok else f"within {t.min_latency_increase_seconds}s of stable"
        row("p99_latency_ratio", "relative", ratio, s_p99, t.max_latency_ratio, ok, why)
    else:
        row("p99_latency_ratio", "relative", None, s_p99, t.max_latency_ratio, None, missing or "no latency data")

    scores_ok = (
        relative_ok
        and canary.score_counts
        and stable is not None
        and stable.score_counts
        and canary.score_edges == stable.score_edges
        and sum(canary.score_counts) > 0
        and sum(stable.score_counts) > 0
    )
    if scores_ok:
        js = js_distance(canary.score_counts, stable.score_counts)  # type: ignore[arg-type]
        index = psi(stable.score_counts, canary.score_counts)  # type: ignore[union-attr, arg-type]
        p_value = homogeneity_p_value(canary.score_counts, stable.score_counts)  # type: ignore[arg-type]
        significant = p_value < t.score_alpha
        why = f"chi-square p={p_value:.2g}" + ("" if significant else f" ≥ {t.score_alpha}: within sampling noise")
        row("score_js_distance", "relative", js, 0.0, t.max_score_js, js <= t.max_score_js or not significant, why)
        row("score_psi", "relative", index, 0.0, t.max_score_psi, index <= t.max_score_psi or not significant, why)
    else:
        why = missing or "no score histogram on one side (or different buckets)"
        row("score_js_distance", "relative", None, None, t.max_score_js, None, why)
        row("score_psi", "relative", None, None, t.max_score_psi, None, why)

    verdicts = {r.verdict for r in rows}
    if FAIL in verdicts:
        return FAIL, rows
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE, rows
    return PASS, rows


# -------------------------------------------------------------------------------------------- the loop
def resume_index(steps: Sequence[int], canary_percent: int) -> int:
    """Index of the step a rollout at ``canary_percent`` continues with (the first weight ≥ it)."""
    for index, weight in enumerate(steps):
        if weight >= canary_percent:
            return index
    return len(steps) - 1


def run_rollout(
    backend: Any,
    source: Any,
    config: RolloutConfig,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_step: Optional[Callable[[RolloutRecord], None]] = None,
    log: Callable[[str], None] = lambda _message: None,
) -> RolloutRecord:
    """Runs the canary analysis against ``backend`` (a :class:`~kfpkit.components.rollout.backends.TrafficBackend`)
    with measurements from ``source`` (a :class:`PrometheusSource`) and returns the record.

    Raises:
        RolloutError: the backend has no canary to analyse.
    """
    traffic = backend.current()
    if traffic.canary is None:
        raise RolloutError(f"{traffic.namespace}/{traffic.isvc} has no canary to analyse")
    record = RolloutRecord(
        namespace=traffic.namespace,
        isvc=traffic.isvc,
        stable_version=traffic.stable.version,
        canary_version=traffic.canary.version,
        steps_config=list(config.steps),
        interval_s=config.interval_s,
    )
    index = resume_index(config.steps, traffic.canary_percent) if traffic.canary_percent > 0 else 0
    if traffic.canary_percent > 0:
        record.resumed_at_weight = traffic.canary_percent
        log(f"resuming at {traffic.canary_percent}% (step {index + 1}/{len(config.steps)})")
    inconclusive = 0
    baseline: Optional[Measurement] = None
    while True:
        weight = config.steps[index]
        if traffic.canary_percent != weight:
            traffic = backend.set_canary_percent(weight)
        started = clock()
        sleep(config.interval_s)
        at = clock()
        elapsed = max(config.interval_s, at - started)
        canary_m = source.measure(traffic, traffic.canary, elapsed, at)
        stable_m = source.measure(traffic, traffic.stable, elapsed, at) if weight < 100 else None
        if stable_m is not None and not stable_m.unavailable and (stable_m.requests or 0) >= config.min_requests:
            baseline = stable_m
        compare = stable_m if (stable_m is not None and stable_m.unavailable) else baseline
        verdict, rows = judge(canary_m, compare, config)
        record.steps.append(
            StepRecord(
                step=index + 1,
                weight=weight,
                started_at=started,
                interval_s=round(elapsed, 3),
                verdict=verdict,
                metrics=rows,
                canary=canary_m.as_dict(),
                stable=(stable_m or Measurement()).as_dict(),
                resumed=record.resumed_at_weight is not None and len(record.steps) == 0,
            )
        )
        log(f"step {index + 1} at {weight}%: {verdict}" + _failing(rows))
        if on_step:
            on_step(record)
        if verdict == FAIL:
            record.reason = "failed checks: " + ", ".join(r.metric for r in rows if r.verdict == FAIL)
            break
        if verdict == INCONCLUSIVE:
            inconclusive += 1
            if inconclusive >= config.max_inconclusive:
                record.reason = f"{inconclusive} inconclusive intervals (max_inconclusive={config.max_inconclusive})"
                break
            continue
        if index == len(config.steps) - 1:
            record.decision = PROMOTE
            record.reason = f"all {len(config.steps)} steps passed"
            break
        index += 1
    if record.decision == PROMOTE:
        traffic = backend.promote()
    else:
        record.decision = ROLLBACK
        traffic = backend.rollback()
    record.final_traffic = final_traffic(traffic, record)
    log(f"decision: {record.decision} ({record.reason})")
    if on_step:
        on_step(record)
    return record


def final_traffic(traffic: Traffic, record: RolloutRecord) -> Dict[str, int]:
    """``{version: percent}`` after the decision."""
    if record.decision == PROMOTE:
        return {record.canary_version: 100}
    return {record.stable_version: 100 - traffic.canary_percent, record.canary_version: traffic.canary_percent}


def _failing(rows: Sequence[MetricVerdict]) -> str:
    bad = [f"{r.metric}={_fmt(r.canary)} (limit {r.threshold})" for r in rows if r.verdict == FAIL]
    return f" [{', '.join(bad)}]" if bad else ""


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def to_markdown(record: RolloutRecord) -> str:
    """The rollout record as Markdown for the KFP UI: one table row per step and metric."""
    lines = [
        f"# Rollout of {record.namespace}/{record.isvc}: **{record.decision}**",
        "",
        f"canary version {record.canary_version} against stable {record.stable_version}; {record.reason}.",
        f"Final traffic: {', '.join(f'{v}: {p}%' for v, p in record.final_traffic.items())}.",
        "",
        "| step | weight | metric | kind | canary | stable | threshold | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for step in record.steps:
        for r in step.metrics:
            lines.append(
                f"| {step.step} | {step.weight}% | {r.metric} | {r.kind} | {_fmt(r.canary)} | {_fmt(r.stable)} "
                f"| {r.threshold} | {r.verdict}{' (' + r.reason + ')' if r.reason else ''} |"
            )
    return "\n".join(lines) + "\n"
