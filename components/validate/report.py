"""The Markdown report of the validate component (what the Kubeflow and Vertex UIs render for ``Output[Markdown]``).

Pure Python on the result JSON (``ValidationResult.to_json()``), so it renders the same in both
interpreters and is testable without TFDV.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

METRIC_NAMES = {"jensen_shannon_divergence": "Jensen-Shannon divergence", "l_infinity": "L-infinity distance"}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _number(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return f"{value:.3e}"


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f} %"


def split_summary(summary: Optional[Mapping[str, Any]]) -> str:
    """``min / mean / max`` of a numeric feature, or the unique count and top values of a categorical one."""
    if not summary:
        return "absent"
    if summary.get("kind") == "numeric":
        low, mean, high = (_number(summary.get(key)) for key in ("min", "mean", "max"))
        return f"min {low} · mean {mean} · max {high}"
    top = ", ".join(f"{_cell(value)} ({_pct(pct)})" for value, pct in summary.get("top_values", [])[:3])
    unique = summary.get("unique")
    return f"{unique if unique is not None else '?'} unique · top: {top or '-'}"


def _missing(summary: Optional[Mapping[str, Any]]) -> str:
    return "absent" if not summary else _pct(summary.get("missing_pct"))


def render_markdown(result: Mapping[str, Any]) -> str:
    """Renders the validation result as Markdown: verdict, anomalies table, skew table, per-feature summary."""
    passed = bool(result.get("passed"))
    rows = result.get("num_examples", {})
    thresholds = result.get("thresholds", {})
    lines: List[str] = [
        f"# Data validation: {'PASSED' if passed else 'FAILED'}",
        "",
        f"- train: {rows.get('train', '?')} rows, eval: {rows.get('eval', '?')} rows "
        f"(eval validated in the {result.get('eval_environment', '?')} environment)",
        f"- schema: {_cell(result.get('schema_source', '?'))}; statistics: {result.get('statistics_mode', '?')}",
        f"- skew thresholds: numeric Jensen-Shannon {thresholds.get('default_numeric_js_threshold')}, "
        f"categorical L-infinity {thresholds.get('default_categorical_linf_threshold')}"
        + (
            "; per feature: " + ", ".join(f"{k} {v}" for k, v in sorted(thresholds["skew_thresholds"].items()))
            if thresholds.get("skew_thresholds")
            else ""
        ),
        "",
        f"## Anomalies ({result.get('anomaly_count', 0)} feature(s))",
        "",
    ]
    details = result.get("details", [])
    if details:
        lines += ["| feature | split | check | anomaly | description |", "|---|---|---|---|---|"]
        for item in details:
            lines.append(
                f"| `{_cell(item['feature'])}` | {_cell(item['split'])} | {_cell(item['check'])} | "
                f"{_cell(item['type'])} | {_cell(item['description'] or item['short_description'])} |"
            )
    else:
        lines.append("No anomalies.")
    lines += ["", "## Train/eval skew", ""]
    skew = result.get("skew", [])
    if skew:
        lines += ["| feature | metric | value | threshold | exceeded |", "|---|---|---|---|---|"]
        for item in skew:
            lines.append(
                f"| `{_cell(item['feature'])}` | {METRIC_NAMES.get(item['metric'], item['metric'])} | "
                f"{item['value']:.4f} | {item['threshold']:g} | {'**yes**' if item['exceeded'] else 'no'} |"
            )
    else:
        lines.append("No feature was compared.")
    lines += [
        "",
        "## Features",
        "",
        "| feature | type | missing % train / eval | train | eval |",
        "|---|---|---|---|---|",
    ]
    for feature in result.get("features", []):
        train: Optional[Dict[str, Any]] = feature.get("train")
        evaluation: Optional[Dict[str, Any]] = feature.get("eval")
        lines.append(
            f"| `{_cell(feature['name'])}` | {_cell(feature.get('type'))} | "
            f"{_missing(train)} / {_missing(evaluation)} | {split_summary(train)} | {split_summary(evaluation)} |"
        )
    return "\n".join(lines) + "\n"
