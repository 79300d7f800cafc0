"""The Markdown report of evaluate on the test split.

It holds the verdict, the gate (its reasons, the floor in PR-AUC and where the PR-AUC interval lies, the
paired difference against the baseline), the test-split metrics with their bootstrap intervals, the
reliability plot and table, the threshold, the confusion matrix and the slices.

The reliability plot is an SVG generated here and embedded as a ``data:image/svg+xml;base64`` image, so the
report is one self-contained Markdown file for the KFP UI.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from kfpkit.core.bootstrap import Interval
from kfpkit.core.classification_metrics import ECE_BINS, ReliabilityBin

if TYPE_CHECKING:
    from kfpkit.components.evaluate.logic import EvaluationResult

NOT_AVAILABLE = "n/a"
MAX_REPORT_SLICES = 50
THRESHOLD_RULE = (
    "the model card's `decision_threshold`, which train sets to the threshold that maximizes F1 on the eval "
    "split (after calibration); a row is predicted positive when its calibrated probability is >= the threshold"
)
SPLIT_STATEMENT = (
    "Every figure, slice and gate decision in this report comes from the **test split** only. Training never "
    "read it: train fitted on the train split and used the eval split for early stopping, the calibration and "
    "the decision threshold."
)

# Keys of EvaluationResult.metrics, in report order, with their display names.
METRIC_NAMES: Dict[str, str] = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC (average precision)",
    "log_loss": "log loss",
    "brier_score": "Brier score",
    "ece": f"expected calibration error ({ECE_BINS} bins)",
    "precision": "precision @ threshold",
    "recall": "recall @ threshold",
    "f1": "F1 @ threshold",
    "decision_threshold": "decision threshold",
}


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return NOT_AVAILABLE if value is None else f"{value:.{digits}f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def reliability_svg(bins: Sequence[ReliabilityBin], title: str, size: int = 320) -> str:
    """An SVG reliability diagram: observed positive rate against mean predicted probability per bin.

    It draws the diagonal of perfect calibration and a dot per non-empty bin whose area grows with its row
    count.
    """
    margin, plot = 44, size - 64
    total = sum(b.rows for b in bins) or 1

    def x(value: float) -> float:
        return margin + value * plot

    def y(value: float) -> float:
        return margin - 20 + (1.0 - value) * plot

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
        'font-family="sans-serif" font-size="10">',
        f'<rect width="{size}" height="{size}" fill="white"/>',
        f'<text x="{size / 2}" y="14" text-anchor="middle" font-size="12">{title}</text>',
        f'<rect x="{x(0)}" y="{y(1)}" width="{plot}" height="{plot}" fill="none" stroke="#888"/>',
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#bbb" stroke-dasharray="4 3"/>',
    ]
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        parts.append(f'<text x="{x(tick)}" y="{y(0) + 14}" text-anchor="middle">{tick:.1f}</text>')
        parts.append(f'<text x="{x(0) - 6}" y="{y(tick) + 3}" text-anchor="end">{tick:.1f}</text>')
    parts.append(f'<text x="{x(0.5)}" y="{size - 4}" text-anchor="middle">mean predicted probability</text>')
    parts.append(
        f'<text x="12" y="{y(0.5)}" text-anchor="middle" transform="rotate(-90 12 {y(0.5)})">'
        "observed positive rate</text>"
    )
    # mean score and positive rate are set exactly for the bins with rows
    points = [
        (b.mean_score, b.positive_rate, b.rows)
        for b in bins
        if b.rows and b.mean_score is not None and b.positive_rate is not None
    ]
    if points:
        path = " ".join(f"{x(p):.1f},{y(r):.1f}" for p, r, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
        for p, r, rows in points:
            radius = 2.0 + 6.0 * (rows / total) ** 0.5
            parts.append(
                f'<circle cx="{x(p):.1f}" cy="{y(r):.1f}" r="{radius:.1f}" fill="#1f77b4" fill-opacity="0.7"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def svg_data_uri(svg: str) -> str:
    """A ``data:image/svg+xml;base64`` URI of ``svg``, for an image embedded in Markdown."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def reliability_lines(bins: Sequence[ReliabilityBin], split: str) -> List[str]:
    """The reliability section: plot and table (empty bins are left out of the table)."""
    svg = reliability_svg(bins, f"Reliability on the {split} split ({len(bins)} bins)")
    lines = [
        f"![Reliability diagram on the {split} split]({svg_data_uri(svg)})",
        "",
        "| probability bin | rows | mean predicted | observed positive rate | gap |",
        "|---|---|---|---|---|",
    ]
    for b in bins:
        if b.rows and b.mean_score is not None and b.positive_rate is not None:  # set exactly when rows
            lines.append(
                f"| [{b.lower:.3f}, {b.upper:.3f}) | {b.rows} | {b.mean_score:.4f} | {b.positive_rate:.4f} | "
                f"{b.positive_rate - b.mean_score:+.4f} |"
            )
    return lines


def _interval_cell(interval: Optional[Interval]) -> str:
    if interval is None or interval.low is None or interval.high is None:
        return ""
    return f"{interval.low:.4f} to {interval.high:.4f}"


def gate_lines(result: EvaluationResult) -> List[str]:
    """The gate's figures: the floor in PR-AUC and where the interval lies, and the paired difference."""
    decision = result.decision
    if decision is None:
        return []
    rate = result.test_positives / result.test_rows
    pr_auc = result.intervals.get("pr_auc")
    lines = [
        "| check | figure | interval | bound | verdict |",
        "|---|---|---|---|---|",
        f"| PR-AUC floor | {_fmt(result.metrics['pr_auc'])} | {_interval_cell(pr_auc)} | "
        f"{decision.pr_auc_floor:.4f} (chance {rate:.4f}) | {decision.floor_position} the floor |",
    ]
    if result.regression is not None and decision.regression_share is not None:
        difference = result.regression.interval
        lines.append(
            f"| PR-AUC difference vs {_cell(result.baseline_label)} | {_fmt(difference.point, 4)} | "
            f"{_interval_cell(difference)} | drop ≤ {result.gate.max_regression:.4f} | drop above it in "
            f"{decision.regression_share:.1%} of resamples: "
            f"{'regression' if decision.regression_declared else 'no regression'} |"
        )
    return lines


def _noise_statement(result: EvaluationResult) -> str:
    interval = next(iter(result.intervals.values()), None)
    if interval is None:
        return ""
    return (
        f"Intervals: {interval.level:.0%} percentile intervals of {interval.resamples} stratified bootstrap "
        "resamples of the test rows (positives and negatives drawn separately, seeded, so the same model on the "
        "same rows gets the same intervals). The baseline comparison resamples both models on the same rows."
    )


def _metric_table(result: EvaluationResult) -> List[str]:
    header = "| metric | candidate | interval |"
    rule = "|---|---|---|"
    if result.baseline_metrics is not None:
        header += f" {_cell(result.baseline_label)} |"
        rule += "---|"
    lines = [header, rule]
    for key, name in METRIC_NAMES.items():
        line = f"| {name} | {_fmt(result.metrics[key])} | {_interval_cell(result.intervals.get(key))} |"
        if result.baseline_metrics is not None:
            line += f" {_fmt(result.baseline_metrics.get(key))} |"
        lines.append(line)
    return lines


def render_report(result: EvaluationResult) -> str:
    """The Markdown report of an :class:`~kfpkit.components.evaluate.logic.EvaluationResult`."""
    rate = result.test_positives / result.test_rows
    lines = [f"# Model evaluation on the {result.split} split", ""]
    lines.append(f"**Verdict: {'BLESSED' if result.blessed else 'NOT BLESSED'}**")
    lines += ["", SPLIT_STATEMENT, "", "## Blessing gate", ""]
    lines += [f"- {_cell(reason)}" for reason in result.reasons]
    lines += ["", *gate_lines(result)]
    lines += [
        "",
        f"Rule: {result.gate.rule()}.",
        "",
        f"## Metrics on the {result.split} split",
        "",
        f"Rows: {result.test_rows}, positives: {result.test_positives} ({rate:.2%}). Model framework: "
        f"{result.framework or NOT_AVAILABLE}, calibration: {result.calibration or 'none'}. A constant "
        f"prediction of the positive rate would score Brier {rate * (1 - rate):.4f}.",
        "",
    ]
    lines += _metric_table(result)
    lines += ["", _noise_statement(result)]
    lines += ["", "## Calibration", ""]
    lines += reliability_lines(result.reliability, result.split)
    lines += [
        "",
        "ECE is the row-weighted mean of |gap| over the bins; a calibrated model's dots lie on the diagonal.",
        "",
        "## Decision threshold",
        "",
        f"Threshold {result.threshold:.4f}. Rule: {THRESHOLD_RULE}. It was chosen on the eval split, so "
        f"precision, recall and F1 on the {result.split} split are not optimistic.",
        "",
        f"### Confusion matrix at {result.threshold:.4f}",
        "",
        "| actual \\ predicted | 0 | 1 |",
        "|---|---|---|",
        f"| 0 | {result.confusion_matrix[0][0]} | {result.confusion_matrix[0][1]} |",
        f"| 1 | {result.confusion_matrix[1][0]} | {result.confusion_matrix[1][1]} |",
    ]
    if result.slice_column is not None:
        column = _cell(result.slice_column)
        lines += [
            "",
            f"## Slices by `{column}`",
            "",
            f"| {column} | rows | positives | ROC-AUC | PR-AUC | recall @ threshold | precision @ threshold |",
            "|---|---|---|---|---|---|---|",
        ]
        for item in result.slices[:MAX_REPORT_SLICES]:
            lines.append(
                f"| {_cell(item.value)} | {item.rows} | {item.positives} | {_fmt(item.roc_auc)} | "
                f"{_fmt(item.pr_auc)} | {_fmt(item.recall)} | {_fmt(item.precision)} |"
            )
        if len(result.slices) > MAX_REPORT_SLICES:
            lines += ["", f"{len(result.slices) - MAX_REPORT_SLICES} smaller slice(s) not shown."]
        lines += ["", "ROC-AUC is n/a where a slice holds one class only; PR-AUC and recall where it has no positives."]
    return "\n".join(lines) + "\n"
