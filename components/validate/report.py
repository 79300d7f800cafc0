"""The Markdown report of the validate component (what the Kubeflow and Vertex UIs render for ``Output[Markdown]``).

Pure Python on the result JSON (``ValidationResult.to_json()``), so it renders the same in both
interpreters and is testable without TFDV.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

METRIC_NAMES = {
    "jensen_shannon_distance": "Jensen-Shannon distance",
    # TFDV's approximate JS divergence: numeric skew in results written before kfpkit compared numeric features
    "jensen_shannon_divergence": "Jensen-Shannon divergence",
    "l_infinity": "L-infinity distance",
}


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


def _noise_floor_note(thresholds: Mapping[str, Any]) -> List[str]:
    """The line that says how a numeric feature's skew is judged (none for results without the noise floor)."""
    alpha = thresholds.get("numeric_skew_alpha")
    if alpha is None:
        return []
    return [
        "- a numeric feature is skewed when its distance exceeds max(threshold, noise floor); the noise floor is "
        f"the distance that sampling noise alone exceeds with probability {alpha:g} for the two split sizes"
    ]


def render_markdown(result: Mapping[str, Any]) -> str:
    """Renders the validation result as Markdown: verdict, anomalies by split, skew table, per-feature summary."""
    passed = bool(result.get("passed"))
    rows = result.get("num_examples", {})
    splits = list(rows) or ["train", "eval", "test"]  # num_examples lists the splits in order
    thresholds = result.get("thresholds", {})
    lines: List[str] = [
        f"# Data validation: {'PASSED' if passed else 'FAILED'}",
        "",
        "- "
        + ", ".join(f"{split}: {rows.get(split, '?')} rows" for split in splits)
        + f" (eval validated in the {result.get('eval_environment', '?')} environment, train and test in TRAINING)",
        f"- schema: {_cell(result.get('schema_source', '?'))}; statistics: {result.get('statistics_mode', '?')}",
        f"- skew thresholds: numeric {thresholds.get('numeric_metric', 'Jensen-Shannon')} "
        f"{thresholds.get('default_numeric_js_threshold')}, "
        f"categorical L-infinity distance (TFDV) {thresholds.get('default_categorical_linf_threshold')}"
        + (
            "; per feature: " + ", ".join(f"{k} {v}" for k, v in sorted(thresholds["skew_thresholds"].items()))
            if thresholds.get("skew_thresholds")
            else ""
        ),
        *_noise_floor_note(thresholds),
        "",
        f"## Anomalies ({result.get('anomaly_count', 0)} feature(s))",
        "",
    ]
    by_split = result.get("anomalies_by_split") or {}
    affected = [(split, features) for split, features in by_split.items() if features]
    if affected:
        shown = (f"{split} {', '.join(f'`{_cell(f)}`' for f in features)}" for split, features in affected)
        lines += ["By split: " + "; ".join(shown), ""]
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
    lines += ["", "## Skew: train/eval and train/test", ""]
    skew = result.get("skew", [])
    if skew:
        lines += [
            "| feature | splits | metric | value | threshold | noise floor | exceeded |",
            "|---|---|---|---|---|---|---|",
        ]
        for item in skew:
            floor = item.get("noise_floor")
            lines.append(
                f"| `{_cell(item['feature'])}` | {_cell(item.get('splits', 'train/eval'))} | "
                f"{METRIC_NAMES.get(item['metric'], item['metric'])} | "
                f"{item['value']:.4f} | {item['threshold']:g} | {'-' if floor is None else f'{floor:.4f}'} | "
                f"{'**yes**' if item['exceeded'] else 'no'} |"
            )
    else:
        lines.append("No feature was compared.")
    lines += [
        "",
        "## Features",
        "",
        f"| feature | type | missing % {' / '.join(splits)} | {' | '.join(splits)} |",
        "|---|---|---|" + "---|" * len(splits),
    ]
    for feature in result.get("features", []):
        summaries: List[Optional[Dict[str, Any]]] = [feature.get(split) for split in splits]
        lines.append(
            f"| `{_cell(feature['name'])}` | {_cell(feature.get('type'))} | "
            f"{' / '.join(_missing(s) for s in summaries)} | {' | '.join(split_summary(s) for s in summaries)} |"
        )
    return "\n".join(lines) + "\n"
