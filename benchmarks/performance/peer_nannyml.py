"""NannyML peer of ``make bench-performance`` (runs in .venv-nannyml): CBPE estimates per daily chunk.

    .venv-nannyml/bin/python -m benchmarks.performance.peer_nannyml REFERENCE.parquet ANALYSIS.parquet OUT.json

``REFERENCE`` holds ``score`` and ``y`` of labelled reference rows (what CBPE fits its calibrator on);
``ANALYSIS`` holds ``timestamp`` and ``score`` of the scored traffic. Both get ``y_pred = score >= threshold``
(the threshold is read from the reference file's metadata key ``threshold``). CBPE estimates precision,
recall and F1 per calendar day (``chunk_period="D"``, the same cohorts as ``kfpkit performance --cohort
1d``). Writes ``{"cohorts": {day: {metric: value}}, "nannyml": version}``.
"""

import json
import sys


def main(argv=None) -> int:
    import nannyml
    import pandas as pd
    import pyarrow.parquet as pq

    reference_path, analysis_path, out_path = (argv or sys.argv[1:])[:3]
    threshold = float(pq.read_schema(reference_path).metadata[b"threshold"])
    reference = pd.read_parquet(reference_path)
    analysis = pd.read_parquet(analysis_path, columns=["timestamp", "score"])
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
    cohorts = {}
    for _, row in results.iterrows():
        day = str(pd.Timestamp(row[("chunk", "start_date")]).date())
        cohorts[day] = {m: float(row[(m, "value")]) for m in metrics}
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump({"cohorts": cohorts, "nannyml": nannyml.__version__}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
