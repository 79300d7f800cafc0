"""The rollout record: per step, the traffic weight and every check's values and verdict; then the decision.

Each check carries its canary value, stable value, threshold and verdict. One typed, versioned record, one
writer (JSON and the Markdown of the KFP UI).

The canary analysis (:func:`kfpkit.components.rollout.analysis.run_rollout`) builds it for every traffic
backend; the rollout component, ``kfpkit rollout`` and the demo write it with :func:`write_rollout_record`;
readers (notebook 05, tests, scripts) read it with :func:`read_rollout_record`.

Checks (``RolloutCheck.metric``), each a ``slo`` (the canary alone) or ``relative`` (canary against stable):
``error_rate``, ``p99_seconds``, ``error_rate_increase``, ``p99_latency_ratio``, ``score_js_distance`` (the
Jensen-Shannon distance, base 2, of the two score histograms) and ``score_psi`` (their PSI, counts smoothed
by 0.5); the distances are :mod:`kfpkit.core.distances`'. A verdict is ``pass``, ``fail`` or
``inconclusive`` (data missing: never a pass); the decision ``promote`` or ``rollback`` (empty while the
rollout runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Dict, List, Optional

from kfpkit.core.distances import METRIC_NAMES
from kfpkit.core.records import Record, RecordError, read_record

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)
PROMOTE, ROLLBACK = "promote", "rollback"
DECISIONS = ("", PROMOTE, ROLLBACK)
SLO, RELATIVE = "slo", "relative"
CHECK_KINDS = (SLO, RELATIVE)
# the exact name of every check, for the Markdown and the READMEs
CHECK_NAMES: Dict[str, str] = {
    "error_rate": "canary error rate",
    "p99_seconds": "canary p99 latency, seconds",
    "error_rate_increase": "canary error rate minus stable error rate",
    "p99_latency_ratio": "canary p99 / stable p99",
    "score_js_distance": f"{METRIC_NAMES['js']}, of the score histograms",
    "score_psi": f"{METRIC_NAMES['psi']}, of the score histograms",
}


@dataclass
class RolloutCheck:
    """One check of one step: a row of the record.

    Attributes:
        metric: The check's name (see :data:`CHECK_NAMES`).
        kind: ``slo`` (the canary alone) or ``relative`` (canary against stable).
        canary: The canary's value (``None``: no data).
        stable: The stable version's value (``None`` for an SLO or without data).
        threshold: The limit the value is held to.
        verdict: ``pass``, ``fail`` or ``inconclusive``.
        reason: Why it is inconclusive, or what decided a borderline verdict.
    """

    metric: str
    kind: str
    canary: Optional[float]
    stable: Optional[float]
    threshold: float
    verdict: str
    reason: str = ""


@dataclass
class SideTotals:
    """One version's numbers over one interval (``None``: no data)."""

    requests: Optional[float] = None
    errors: Optional[float] = None
    error_rate: Optional[float] = None
    p99_seconds: Optional[float] = None
    scored: Optional[float] = None


@dataclass
class RolloutStep:
    """One analysed interval.

    Attributes:
        step: The step's position in the configured weights, from 1.
        weight: The canary's traffic share in percent.
        started_at: Unix time the interval started.
        interval_s: Seconds analysed.
        verdict: ``fail`` if any check failed, else ``inconclusive`` if any was, else ``pass``.
        metrics: Every check of the step.
        canary: The canary's numbers.
        stable: The stable version's numbers (empty at weight 100).
        resumed: The first interval of a rollout that resumed at this weight.
    """

    step: int
    weight: int
    started_at: float
    interval_s: float
    verdict: str
    metrics: List[RolloutCheck]
    canary: SideTotals
    stable: SideTotals
    resumed: bool = False


@dataclass
class RolloutRecord(Record):
    """The rollout record: every analysed step, then the decision (see the module docstring).

    Attributes:
        backend: The traffic backend: ``kserve-serverless``, ``kserve-standard`` or ``local``.
        namespace: Namespace of the InferenceService (``local`` for the local backend).
        isvc: Its name.
        stable_version: The stable version's ``model_version`` label.
        canary_version: The canary's ``model_version`` label.
        steps_config: The configured canary weights in percent.
        interval_s: Configured seconds per step.
        url: Where the traffic goes (the ISVC's URL, or nginx's for the local backend).
        steps: The analysed intervals, in order.
        decision: ``promote`` or ``rollback``; empty while the rollout runs.
        reason: Why.
        final_traffic: ``{version: percent}`` after the decision.
        resumed_at_weight: The canary weight a resumed rollout found, or ``None``.
    """

    KIND: ClassVar[str] = "rollout record"
    VERSION: ClassVar[int] = 1

    backend: str
    namespace: str
    isvc: str
    stable_version: str
    canary_version: str
    steps_config: List[int]
    interval_s: float
    url: str = ""
    steps: List[RolloutStep] = field(default_factory=list)
    decision: str = ""
    reason: str = ""
    final_traffic: Dict[str, int] = field(default_factory=dict)
    resumed_at_weight: Optional[int] = None

    def __post_init__(self) -> None:
        _check_choice("decision", self.decision, DECISIONS)
        for i, step in enumerate(self.steps):
            _check_choice(f"steps[{i}].verdict", step.verdict, VERDICTS)
            for j, check in enumerate(step.metrics):
                _check_choice(f"steps[{i}].metrics[{j}].verdict", check.verdict, VERDICTS)
                _check_choice(f"steps[{i}].metrics[{j}].kind", check.kind, CHECK_KINDS)

    @property
    def intervals_to_decision(self) -> int:
        """Intervals analysed (``len(steps)``)."""
        return len(self.steps)

    @property
    def final_canary_percent(self) -> int:
        """The canary's traffic share after the decision (100 after a promotion)."""
        return int(self.final_traffic.get(self.canary_version, 0))


def _check_choice(name: str, value: str, choices: tuple) -> None:
    if value not in choices:
        raise RecordError(f"{name} must be one of {[c for c in choices if c]}, got {value!r}")


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def to_markdown(record: RolloutRecord) -> str:
    """The rollout record as Markdown for the KFP UI: one table row per step and check, then the checks' names."""
    lines = [
        f"# Rollout of {record.namespace}/{record.isvc}: **{record.decision or 'in progress'}**",
        "",
        f"canary version {record.canary_version} against stable {record.stable_version} "
        f"({record.backend or 'backend not named'}); {record.reason or 'no decision yet'}.",
        f"Final traffic: {', '.join(f'{v}: {p}%' for v, p in record.final_traffic.items()) or 'n/a'}.",
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
    lines += ["", *(f"- `{name}`: {meaning}" for name, meaning in CHECK_NAMES.items())]
    return "\n".join(lines) + "\n"


def write_rollout_record(
    record: RolloutRecord, json_path: Optional[str] = None, markdown_path: Optional[str] = None
) -> None:
    """The one writer of the rollout record: JSON (every call) and Markdown (once the rollout decided).

    Each file is replaced atomically, so a reader sees the previous step's record or this one.

    Args:
        record: The record, complete or in progress.
        json_path: Local path of the JSON document (skipped when empty).
        markdown_path: Local path of the Markdown (skipped when empty or while there is no decision).
    """
    from kfpkit.core.publish import publish_bytes, publish_json

    if json_path:
        publish_json(json_path, record.to_dict())
    if markdown_path and record.decision:
        publish_bytes(markdown_path, to_markdown(record).encode("utf-8"))


def read_rollout_record(path: str) -> RolloutRecord:
    """Reads the rollout record JSON at the local ``path``; errors name the file and the field."""
    return read_record(path, RolloutRecord)
