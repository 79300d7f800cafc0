"""NannyML peer of ``make bench-performance`` (runs in .venv-nannyml): CBPE estimates per daily chunk.

    .venv-nannyml/bin/python -m benchmarks.performance.peer_nannyml REFERENCE.parquet ANALYSIS.parquet OUT.json
        [LABELS.parquet AS_OF [calculator]]

``REFERENCE`` holds ``score`` and ``y`` of labelled reference rows (what CBPE fits its calibrator on);
``ANALYSIS`` holds ``timestamp`` and ``score`` of the scored traffic. Both get ``y_pred = score >= threshold``
(the threshold is read from the reference file's metadata key ``threshold``). CBPE estimates precision,
recall and F1 per calendar day (``chunk_period="D"``, the same cohorts as ``kfpkit performance --cohort
1d``).

With ``LABELS`` and ``AS_OF`` (the like-for-like peer of ``kfpkit performance`` with labels), the delayed
labels are joined first as a NannyML user would, in pandas: labels known by ``AS_OF``, the latest per
``(request_id, instance)`` (a stable sort by ``labelled_at``, the last row kept), merged onto the scored
rows; CBPE then also reports the **realized** precision, recall and F1 of the labelled rows of each chunk.
With ``calculator`` as well, NannyML's ``PerformanceCalculator`` then computes the realized ROC-AUC, average
precision (PR-AUC), precision, recall and F1 per day with their sampling errors (NannyML's uncertainty of a
realized metric): the like-for-like peer of ``kfpkit performance``'s realized metrics with intervals.
Writes ``{"cohorts": {day: {metric: value}}, "realized": {day: {metric: value}}, "calculated": {day: {metric:
[value, sampling_error]}}, "nannyml": version}``.
"""

import json
import sys

KEY = ["request_id", "instance"]


def _joined(analysis, labels_path: str, as_of: str):
    import pandas as pd

    labels = pd.read_parquet(labels_path, columns=[*KEY, "is_fraud", "labelled_at"])
    labels["labelled_at"] = pd.to_datetime(labels["labelled_at"], utc=True, format="ISO8601")
    labels = labels[labels["labelled_at"] <= pd.Timestamp(as_of)]
    latest = labels.sort_values("labelled_at", kind="stable").drop_duplicates(KEY, keep="last")
    merged = analysis.merge(latest[[*KEY, "is_fraud"]].rename(columns={"is_fraud": "y"}), on=KEY, how="left")
    return merged.drop(columns=KEY)


def main(argv=None) -> int:
    import nannyml
    import pandas as pd
    import pyarrow.parquet as pq

    args = argv or sys.argv[1:]
    reference_path, analysis_path, out_path = args[:3]
    labels_path, as_of = (args[3], args[4]) if len(args) >= 5 else (None, None)
    calculator = len(args) >= 6 and args[5] == "calculator"
    threshold = float(pq.read_schema(reference_path).metadata[b"threshold"])
    reference = pd.read_parquet(reference_path)
    analysis = pd.read_parquet(analysis_path, columns=["timestamp", "score", *(KEY if labels_path else [])])
    if labels_path:
        analysis = _joined(analysis, labels_path, as_of)
    for frame in (reference, analysis):
        frame["y_pred"] = (frame["score"] >= threshold).astype(int)
    reference["timestamp"] = analysis["timestamp"].iloc[0]
    metrics = ["precision", "recall", "f1"]
    estimator = nannyml.CBPE(
        y_pred_proba="score",
        y_pred="y_pred",
        y_true="y",
        timestamp_column_name="timestamp",
        metrics=metrics,
        chunk_period="D",
        problem_type="classification_binary",
    )
    estimator.fit(reference)
    results = estimator.estimate(analysis).filter(period="analysis").to_df()
    cohorts, realized = {}, {}
    for _, row in results.iterrows():
        day = str(pd.Timestamp(row[("chunk", "start_date")]).date())
        cohorts[day] = {m: float(row[(m, "value")]) for m in metrics}
        if labels_path:
            realized[day] = {m: float(row[(m, "realized")]) for m in metrics}
    calculated = _calculated(reference, analysis) if calculator else {}
    with open(out_path, "w", encoding="utf-8") as fh:
        document = {"cohorts": cohorts, "realized": realized, "calculated": calculated, "nannyml": nannyml.__version__}
        json.dump(document, fh, indent=2)
    return 0


CALCULATED = ["roc_auc", "average_precision", "precision", "recall", "f1"]


def _calculated(reference, analysis):
    """Realized metrics per day with NannyML's sampling errors (rows without a label left out by NannyML)."""
    import nannyml
    import pandas as pd

    calculator = nannyml.PerformanceCalculator(
        metrics=CALCULATED,
        y_true="y",
        y_pred="y_pred",
        y_pred_proba="score",
        timestamp_column_name="timestamp",
        chunk_period="D",
        problem_type="classification_binary",
    )
    calculator.fit(reference)
    results = calculator.calculate(analysis).filter(period="analysis").to_df()
    out = {}
    for _, row in results.iterrows():
        day = str(pd.Timestamp(row[("chunk", "start_date")]).date())
        out[day] = {m: [float(row[(m, "value")]), float(row[(m, "sampling_error")])] for m in CALCULATED}
    return out


if __name__ == "__main__":
    sys.exit(main())
