"""The performance report: one time-series plot per metric, cohorts along the x axis.

Each plot shows the reference band of the model card (grey band, its point as a dashed line), the estimate
of every cohort (orange line with its interval as a band), the realized value of every matured cohort
(blue dots with their interval), cohorts whose labels have not matured on a hatched background, and degraded
cohorts in red. One self-contained page (inline SVG, no scripts, no external assets) that the KFP UI renders
from an HTML artifact; only the standard library is used.
"""

from __future__ import annotations

import html
from typing import Any, List, Optional, Tuple

_WIDTH, _HEIGHT, _PAD, _LEFT = 720, 170, 22, 48
_REALIZED, _ESTIMATED, _REFERENCE, _BAD = "#1f77b4", "#ff7f0e", "#bbbbbb", "#d62728"
PLOTTED = ("precision", "recall", "f1", "positive_rate", "pr_auc", "roc_auc", "brier_score", "ece")
NAMES = {
    "precision": "precision at the served threshold",
    "recall": "recall at the served threshold",
    "f1": "F1 at the served threshold",
    "positive_rate": "positive rate (share of label 1)",
    "pr_auc": "PR-AUC (average precision)",
    "roc_auc": "ROC-AUC",
    "brier_score": "Brier score (lower is better)",
    "ece": "expected calibration error (lower is better)",
}


def _values(summary: Any, metric: str) -> List[Optional[float]]:
    out: List[Optional[float]] = []
    for cohort in summary.cohorts:
        for part in (cohort.realized.get(metric), cohort.estimated.get(metric)):
            if part is not None:
                out += [part.point, part.low, part.high]
    reference = summary.reference.metrics.get(metric)
    if reference is not None:
        out += [reference.low, reference.high]
    return out


def _range(values: List[Optional[float]]) -> Tuple[float, float]:
    present = [v for v in values if v is not None]
    if not present:
        return 0.0, 1.0
    low, high = min(present), max(present)
    pad = max((high - low) * 0.08, 0.005)
    return max(0.0, low - pad), min(1.0, high + pad) if high + pad > low - pad else low + 0.01


def _plot(summary: Any, metric: str) -> str:
    cohorts = summary.cohorts
    n = max(len(cohorts), 1)
    low, high = _range(_values(summary, metric))
    slot = (_WIDTH - _LEFT - _PAD) / n

    def x(i: int) -> float:
        return _LEFT + (i + 0.5) * slot

    def y(v: float) -> float:
        return _PAD + _HEIGHT * (1 - (v - low) / ((high - low) or 1.0))

    parts = [f'<svg width="{_WIDTH}" height="{_HEIGHT + 2 * _PAD + 14}" role="img" aria-label="{html.escape(metric)}">']
    for i, cohort in enumerate(cohorts):
        if not cohort.mature:
            parts.append(
                f'<rect x="{_LEFT + i * slot:.1f}" y="{_PAD}" width="{slot:.1f}" height="{_HEIGHT}" fill="url(#hatch)">'
                f"<title>{html.escape(cohort.start[:10])}: labels not matured</title></rect>"
            )
    reference = summary.reference.metrics.get(metric)
    if reference is not None:
        top, bottom = y(reference.high), y(reference.low)
        parts.append(
            f'<rect x="{_LEFT}" y="{top:.1f}" width="{_WIDTH - _LEFT - _PAD}" height="{max(bottom - top, 1):.1f}" '
            f'fill="{_REFERENCE}" fill-opacity="0.45"><title>reference {reference.point:.4f} '
            f"[{reference.low:.4f}, {reference.high:.4f}] ({html.escape(reference.source)})</title></rect>"
            f'<line x1="{_LEFT}" x2="{_WIDTH - _PAD}" y1="{y(reference.point):.1f}" y2="{y(reference.point):.1f}" '
            'stroke="#666" stroke-dasharray="4 3"/>'
        )
    estimates = [(i, c.estimated.get(metric)) for i, c in enumerate(cohorts)]
    estimates = [(i, e) for i, e in estimates if e is not None and e.point is not None]
    banded = [(i, e) for i, e in estimates if e.low is not None and e.high is not None]
    if banded:
        upper = " ".join(f"{x(i):.1f},{y(e.high):.1f}" for i, e in banded)
        lower = " ".join(f"{x(i):.1f},{y(e.low):.1f}" for i, e in reversed(banded))
        parts.append(f'<polygon points="{upper} {lower}" fill="{_ESTIMATED}" fill-opacity="0.18"/>')
    if estimates:
        line = " ".join(f"{x(i):.1f},{y(e.point):.1f}" for i, e in estimates)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{_ESTIMATED}" stroke-width="2"/>')
    for i, cohort in enumerate(cohorts):
        value = cohort.realized.get(metric)
        if value is None or value.point is None:
            continue
        colour = _BAD if cohort.degraded else _REALIZED
        if value.low is not None and value.high is not None:
            parts.append(
                f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(value.low):.1f}" y2="{y(value.high):.1f}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(value.point):.1f}" r="4" fill="{colour}"><title>'
            f"{html.escape(cohort.start[:10])}: realized {value.point:.4f}</title></circle>"
        )
    parts.append(_axes(cohorts, low, high, slot))
    parts.append("</svg>")
    return "".join(parts)


def _axes(cohorts: List[Any], low: float, high: float, slot: float) -> str:
    bottom = _PAD + _HEIGHT
    parts = [
        f'<line x1="{_LEFT}" y1="{bottom}" x2="{_WIDTH - _PAD}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{_LEFT}" y1="{_PAD}" x2="{_LEFT}" y2="{bottom}" stroke="#333"/>',
        f'<text x="{_LEFT - 4}" y="{_PAD + 4}" font-size="10" text-anchor="end">{high:.3f}</text>',
        f'<text x="{_LEFT - 4}" y="{bottom}" font-size="10" text-anchor="end">{low:.3f}</text>',
    ]
    every = max(1, len(cohorts) // 8)
    for i, cohort in enumerate(cohorts):
        if i % every == 0:
            parts.append(
                f'<text x="{_LEFT + (i + 0.5) * slot:.1f}" y="{bottom + 14}" font-size="10" text-anchor="middle">'
                f"{html.escape(cohort.start[:10])}</text>"
            )
    return "".join(parts)


def _cohort_table(summary: Any) -> str:
    rows = []
    for cohort in summary.cohorts:
        calibration = "" if cohort.calibration is None else ("passed" if cohort.calibration.passed else "FAILED")
        rows.append(
            f"<tr{' class=bad' if cohort.degraded else ''}><td>{html.escape(cohort.start)}</td>"
            f"<td>{cohort.rows:,}</td><td>{cohort.labelled:,}</td><td>{'yes' if cohort.mature else 'no'}</td>"
            f"<td>{'DEGRADED' if cohort.degraded else 'ok'}</td><td>{calibration}</td>"
            f"<td>{html.escape('; '.join(cohort.reasons))}</td></tr>"
        )
    return (
        "<table><tr><th>cohort start</th><th>rows</th><th>labelled</th><th>matured</th><th>verdict</th>"
        f"<th>calibration</th><th>reasons</th></tr>{''.join(rows)}</table>"
    )


def render_html(summary: Any) -> str:
    """The report page of a :class:`~kfpkit.core.performance_summary.PerformanceSummary`."""
    degraded = summary.degraded_cohorts
    headline = (
        f"Degraded: {len(degraded)} cohort(s), first {html.escape(degraded[0].start[:10])}"
        if degraded
        else "No cohort degraded"
    )
    counts = summary.label_counts
    labels = (
        f"Labels: {counts.rows:,} rows read, {counts.after_as_of:,} after as_of, {counts.keys:,} keys, "
        f"{counts.matched:,} matched, {counts.unknown_keys:,} unknown, {counts.duplicates:,} duplicates, "
        f"{counts.conflicting_keys:,} conflicting keys, {counts.out_of_order:,} out of order."
    )
    style = (
        "body{font-family:sans-serif;margin:1.5em}section{margin:1em 0}table{border-collapse:collapse}"
        "td,th{border:1px solid #ddd;padding:2px 8px;font-size:12px}tr.bad td{color:#d62728;font-weight:bold}"
    )
    legend = (
        f'<p><span style="color:{_REALIZED}">● realized (matured cohorts, bootstrap interval)</span> · '
        f'<span style="color:{_ESTIMATED}">— estimated from the calibrated scores '
        "(interval of the realized value)</span>"
        f' · <span style="color:#888">▮ reference band ({html.escape(summary.reference.split)} split)</span> · '
        f'hatched: labels not matured · <span style="color:{_BAD}">● degraded</span></p>'
    )
    hatch = (
        '<svg width="0" height="0"><defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#ddd" stroke-width="3"/>'
        "</pattern></defs></svg>"
    )
    plots = "".join(
        f"<section><h2>{html.escape(NAMES[m])}</h2>{_plot(summary, m)}</section>" for m in PLOTTED if _has(summary, m)
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>kfpkit performance report</title>"
        f"<style>{style}</style></head><body>{hatch}<h1>{headline}</h1>"
        f"<p>Model {html.escape(summary.model_uri)}; {summary.rows:,} scored rows from {html.escape(summary.live)} "
        f"as of {html.escape(summary.as_of)}; cohorts of {html.escape(summary.cohort)}, maturity "
        f"{html.escape(summary.maturity or '-')} / labelled share {summary.min_labelled_share:g}; threshold "
        f"{summary.threshold:.4f}; intervals at {summary.level:.0%}.</p><p>{html.escape(labels)}</p>"
        f"{legend}{plots}<h2>Cohorts</h2>{_cohort_table(summary)}</body></html>"
    )


def _has(summary: Any, metric: str) -> bool:
    return any(metric in c.realized or metric in c.estimated for c in summary.cohorts)
