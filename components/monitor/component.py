"""KFP component: compare a live window with a model version's training baseline and flag drift."""

from typing import Dict, Optional

from kfp import dsl
from kfp.dsl import HTML, Artifact, Metrics, Output

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def monitor(
    model_uri: str,
    live_source: str,
    metrics: Output[Metrics],
    report: Output[HTML],
    drift: Output[Artifact],
    since: Optional[str] = None,
    until: Optional[str] = None,
    thresholds: Optional[Dict[str, Dict[str, float]]] = None,
    alpha: float = 1e-06,
    score_drift_triggers: bool = True,
) -> bool:
    """Compares a live window with the monitoring baseline stored in the model version.

    Reads ``monitoring_baseline.json`` of the model version (written by train: quantile bins of every numeric
    feature, top-K frequencies of every categorical one, the calibrated eval score distribution), streams the
    live window in Arrow batches into histograms on the same bins, and scores every feature: Jensen-Shannon
    distance (base 2; not the JS divergence of validate's TFDV skew check), PSI (counts smoothed by 0.5),
    L-infinity distance (categorical, TFDV/Vertex compatible), missing-rate change, unseen-category rate, and
    score drift. A metric flags drift above max(threshold, noise floor of the window size), so small
    windows raise no alarm from sampling noise. Bad input (a live table missing a feature, an empty window, a
    baseline of another model version, a corrupt Parquet file) fails the task with a message naming the
    column or file, and no output is written.

    Args:
        model_uri: Model version in the registry (<registry_root>/<model_name>/<version>, local, gs:// or s3://).
        live_source: Live window: a payload-log URI (the root or <root>/<model>/<version>) or one CSV, Parquet
            or JSON Lines table of raw feature rows (a score column, when present, is compared too).
        metrics: Output metrics: rows, drift_detected (0/1), drifted_count and, per feature, the score of its
            deciding metric.
        report: Output HTML report: baseline and live histograms overlaid per feature, drifted features first.
        drift: Output drift report (drift.json, a kfpkit.core.drift_summary.DriftReport): per feature every
            metric's score, threshold and verdict, and the histograms; metadata drift_detected and
            drifted_features (most drifted first).
        since: Start (inclusive, ISO-8601, UTC when no offset) of the payload-log time range; unset: no bound.
        until: End (exclusive) of the payload-log time range; unset: no bound.
        thresholds: Per-feature fixed thresholds {feature: {metric: value}} over the defaults (js 0.1,
            psi 0.25, linf 0.1, missing_rate 0.05, unseen_rate 0.01); the key "*" applies to every feature.
        alpha: False-alarm probability of one metric of one feature on an undrifted window (noise floors).
        score_drift_triggers: Whether score drift alone sets drift_detected.

    Returns:
        True when drift was detected (any feature drifted, or the score did with score_drift_triggers); the
        drifted features, most drifted first, are the drift artifact's drifted_features metadata.
    """
    import logging
    import os

    from kfpkit.components.monitor.logic import OutputPaths, run_monitor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.makedirs(os.path.dirname(report.path) or ".", exist_ok=True)
    os.makedirs(os.path.dirname(drift.path) or ".", exist_ok=True)
    result = run_monitor(
        model_uri=model_uri,
        live=live_source,
        outputs=OutputPaths(drift_json=drift.path, report_html=report.path),
        since=since or None,
        until=until or None,
        thresholds=thresholds or None,
        alpha=alpha,
        score_drift_triggers=score_drift_triggers,
    )
    metrics.log_metric("rows", result.rows)
    metrics.log_metric("drift_detected", int(result.drift_detected))
    metrics.log_metric("drifted_count", len(result.drifted_features))
    for feature in result.features:
        metrics.log_metric(f"{feature.name}.{feature.deciding.metric}", round(feature.deciding.score, 6))
    if result.score is not None:
        metrics.log_metric(f"score.{result.score.deciding.metric}", round(result.score.deciding.score, 6))
    drift.metadata.update({"drift_detected": result.drift_detected, "drifted_features": result.drifted_features})
    report.metadata["drift_detected"] = result.drift_detected
    return result.drift_detected
