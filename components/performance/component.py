"""KFP component: is the live model still accurate? Delayed labels, matured cohorts, label-free estimates."""

from typing import List, Optional

from kfp import dsl
from kfp.dsl import HTML, Artifact, Metrics, Output

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def performance(
    model_uri: str,
    live_source: str,
    label_column: str,
    metrics: Output[Metrics],
    report: Output[HTML],
    summary: Output[Artifact],
    labels: Optional[List[str]] = None,
    key_columns: Optional[List[str]] = None,
    labelled_at_column: str = "labelled_at",
    timestamp_column: str = "timestamp",
    score_column: str = "score",
    cohort: str = "1d",
    maturity: str = "30d",
    min_labelled_share: float = 0.0,
    as_of: Optional[str] = None,
    since: Optional[str] = None,
    resamples: int = 500,
    level: float = 0.95,
    alpha: float = 0.0001,
    seed: int = 0,
) -> bool:
    """Judges the live model's accuracy per cohort of scoring time, from delayed labels and calibrated scores.

    Joins the delayed labels (the latest per key, as known at as_of) to the scored rows of the live window by
    key, cuts the rows into cohorts by scoring time, and per cohort: realized metrics with bootstrap intervals
    once its labels have matured (PR-AUC, ROC-AUC, precision, recall and F1 at the served threshold, Brier,
    ECE, positive rate), the calibration check (estimated against realized), and label-free estimates on every
    cohort from the calibrated scores (precision, recall, F1, positive rate, with intervals). A cohort is
    degraded when a realized metric is below the reference band of the model card's metrics beyond noise,
    or, before its labels have matured, when the estimate is; partial labels are never judged.
    Bad input (a bad label value, a missing column or file, an unreadable card) fails the task with a message
    naming the file, row and column, and nothing is written.

    Args:
        model_uri: Model version in the registry (<registry_root>/<model_name>/<version>): its card gives the
            served threshold and the reference metrics.
        live_source: Live window: a payload-log URI (root or <root>/<model>/<version>) or one CSV, Parquet or
            JSON Lines table of scored rows with the key, timestamp and score columns.
        label_column: The 0/1 label column of the label tables.
        metrics: Output metrics: rows, cohorts, mature_cohorts, degraded_cohorts, degraded (0/1),
            calibration_failed (0/1), the label counts, and the latest matured cohort's realized and the latest
            cohort's estimated metrics.
        report: Output HTML report: one time-series plot per metric (realized, estimated, reference band,
            matured or not) and the cohort table.
        summary: Output summary (summary.json, a kfpkit.core.performance_summary.PerformanceSummary);
            metadata degraded and degraded_cohorts (their starts).
        labels: Label tables (CSV, Parquet or JSON Lines; local, gs://, s3://, http(s)://) with the key, the
            label column and labelled_at; read in this order (unset or empty: no labels, estimates only).
        key_columns: Key column(s) in both the live window and the label tables (unset: request_id, instance
            of the payload record; or a business key such as transaction_id).
        labelled_at_column: When each label became known (ISO-8601 or a timestamp column).
        timestamp_column: When each live row was scored.
        score_column: The calibrated score of each live row.
        cohort: Cohort length (s, m, h, d or w: 1d, 12h), aligned to the UTC epoch.
        maturity: Label delay after a cohort's end that matures it (e.g. 30d; empty: no delay rule).
        min_labelled_share: Labelled share that matures a cohort (0: no share rule); with a delay, both must hold.
        as_of: The moment the run looks from (ISO-8601; unset: now); later rows and labels are left out.
        since: Rows scored before it are left out (ISO-8601; unset: no bound).
        resamples: Bootstrap resamples behind every interval.
        level: Confidence level of the intervals.
        alpha: False-alarm probability of one metric of one cohort whose model is as good as the reference:
            degraded means below the reference by more than z(1 - alpha) times the combined standard error.
        seed: Seed of the resampling.

    Returns:
        True when any cohort is degraded (the summary artifact's degraded_cohorts metadata lists them).
    """
    import logging
    import os

    from kfpkit.components.performance.logic import (
        OutputPaths,
        PerformanceInputs,
        PerformanceSettings,
        metrics_to_log,
        run_performance,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.makedirs(os.path.dirname(report.path) or ".", exist_ok=True)
    os.makedirs(os.path.dirname(summary.path) or ".", exist_ok=True)
    result = run_performance(
        PerformanceInputs(
            model_uri=model_uri,
            live=live_source,
            labels=list(labels or []),
            label_column=label_column,
            key=list(key_columns or ["request_id", "instance"]),
            labelled_at_column=labelled_at_column,
            timestamp_column=timestamp_column,
            score_column=score_column,
            as_of=as_of or None,
            since=since or None,
        ),
        PerformanceSettings(
            cohort=cohort,
            maturity=maturity or None,
            min_labelled_share=min_labelled_share,
            resamples=resamples,
            level=level,
            alpha=alpha,
            seed=seed,
        ),
        OutputPaths(summary_json=summary.path, report_html=report.path),
    )
    for name, value in metrics_to_log(result).items():
        metrics.log_metric(name, value)
    starts = [c.start for c in result.degraded_cohorts]
    summary.metadata.update({"degraded": result.degraded, "degraded_cohorts": starts})
    report.metadata["degraded"] = result.degraded
    return result.degraded
