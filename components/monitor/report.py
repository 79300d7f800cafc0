"""The monitor's HTML report: per feature, the baseline and live histograms overlaid, drifted features first.

One self-contained page (inline SVG, no scripts, no external assets) that the KFP UI renders from an HTML
artifact. Only the standard library is used.
"""

from __future__ import annotations

import html
from typing import Any, List

from kfpkit.core.distances import METRIC_NAMES

_WIDTH, _HEIGHT, _PAD = 560, 150, 24
_BASE_COLOUR, _LIVE_COLOUR = "#4c78a8", "#f58518"


def _svg(feature: Any) -> str:
    base: List[float] = feature.baseline_share
    live: List[float] = feature.live_share
    bins = max(len(base), 1)
    top = max([*base, *live, 1e-9])
    slot = (_WIDTH - 2 * _PAD) / bins
    parts = [
        f'<svg width="{_WIDTH}" height="{_HEIGHT + 2 * _PAD}" role="img" '
        f'aria-label="{html.escape(feature.name)} baseline and live histograms">'
    ]
    for i, (b, lv) in enumerate(zip(base, live, strict=False)):
        x = _PAD + i * slot
        for share, colour, offset in ((b, _BASE_COLOUR, 0.1), (lv, _LIVE_COLOUR, 0.35)):
            h = _HEIGHT * share / top
            parts.append(
                f'<rect x="{x + offset * slot:.1f}" y="{_PAD + _HEIGHT - h:.1f}" width="{0.55 * slot:.1f}" '
                f'height="{h:.1f}" fill="{colour}" fill-opacity="0.6"><title>{html.escape(feature.bins[i])}: '
                f"baseline {b:.2%}, live {lv:.2%}</title></rect>"
            )
    parts.append(f'<line x1="{_PAD}" y1="{_PAD + _HEIGHT}" x2="{_WIDTH - _PAD}" y2="{_PAD + _HEIGHT}" stroke="#333"/>')
    if feature.bins:
        parts.append(
            f'<text x="{_PAD}" y="{_HEIGHT + 2 * _PAD - 6}" font-size="10">{html.escape(feature.bins[0])}</text>'
            f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT + 2 * _PAD - 6}" font-size="10" text-anchor="end">'
            f"{html.escape(feature.bins[-1])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _metrics_table(feature: Any) -> str:
    rows = "".join(
        f"<tr{' class=drift' if m.drifted else ''}><td>{_metric_name(m.metric)}</td><td>{m.score:.4f}</td>"
        f"<td>{m.threshold:.4f}</td><td>{'drift' if m.drifted else 'ok'}</td></tr>"
        for m in feature.metrics.values()
    )
    return f"<table><tr><th>metric</th><th>score</th><th>threshold</th><th>verdict</th></tr>{rows}</table>"


def _metric_name(metric: str) -> str:
    """``metric`` with its exact name, e.g. ``js (Jensen-Shannon distance, base 2)``."""
    return html.escape(f"{metric} ({METRIC_NAMES[metric]})" if metric in METRIC_NAMES else metric)


def _section(feature: Any) -> str:
    status = "DRIFT" if feature.drifted else "ok"
    missing = feature.missing_rate
    extra = (
        f"<p>missing rate: baseline {missing.get('baseline', 0):.2%}, live {missing.get('live', 0):.2%}</p>"
        if missing
        else ""
    )
    if feature.unseen_values:
        shown = ", ".join(f"{html.escape(str(k))} ({v})" for k, v in feature.unseen_values.items())
        extra += f"<p>unseen values: {shown}</p>"
    return (
        f'<section class="{"drift" if feature.drifted else "ok"}"><h2>{html.escape(feature.name)} '
        f"<small>({feature.kind}; {status}: {feature.deciding.metric} {feature.deciding.score:.4f} vs "
        f"{feature.deciding.threshold:.4f})</small></h2>{_svg(feature)}{_metrics_table(feature)}{extra}</section>"
    )


def render_html(result: Any) -> str:
    """The report page of a :class:`~kfpkit.components.monitor.logic.MonitorResult`."""
    ordered = sorted(result.features, key=lambda f: (not f.drifted, -f.deciding.ratio))
    if result.score is not None:
        ordered.insert(0 if result.score.drifted else len(ordered), result.score)
    headline = (
        f"Drift detected in {len(result.drifted_features)} feature(s): "
        f"{html.escape(', '.join(result.drifted_features))}"
        if result.drifted_features
        else ("Score drift detected" if result.drift_detected else "No drift detected")
    )
    window = f"{result.rows:,} live rows from {html.escape(result.live)}"
    if result.since or result.until:
        window += f" between {html.escape(str(result.since or '-∞'))} and {html.escape(str(result.until or '+∞'))}"
    style = (
        "body{font-family:sans-serif;margin:1.5em}section{border:1px solid #ccc;margin:1em 0;padding:.5em 1em}"
        "section.drift{border-color:#d62728;background:#fff5f5}table{border-collapse:collapse}"
        "td,th{border:1px solid #ddd;padding:2px 8px}tr.drift td{color:#d62728;font-weight:bold}"
        ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px}"
    )
    legend = (
        f'<p class="legend"><span style="background:{_BASE_COLOUR}"></span>baseline (training; eval for the score)'
        f'<span style="background:{_LIVE_COLOUR}"></span>live window</p>'
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>kfpkit drift report</title>"
        f"<style>{style}</style></head><body><h1>{headline}</h1><p>Model {html.escape(result.model_uri)}; {window}. "
        "A metric flags drift above max(threshold, noise floor of the window size).</p>"
        f"{legend}{''.join(_section(f) for f in ordered)}</body></html>"
    )
