"""Evidently peer of ``make bench-drift`` (runs in .venv-evidently): ``DataDriftPreset`` on both sides.

    .venv-evidently/bin/python -m benchmarks.drift.peer_evidently REFERENCE.parquet LIVE.parquet OUT.json

Evidently's defaults choose the test per column (K-S / chi-square below 1,000 rows, Wasserstein / Jensen-
Shannon above). Writes ``{"flagged": [...], "evidently": version}``.
"""

import json
import sys


def main(argv=None) -> int:
    import evidently
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference_path, live_path, out_path = (argv or sys.argv[1:])[:3]
    reference = pd.read_parquet(reference_path)
    live = pd.read_parquet(live_path)
    snapshot = Report([DataDriftPreset()]).run(current_data=live, reference_data=reference)
    flagged = []
    for metric in snapshot.dict()["metrics"]:
        name = metric.get("metric_name", "")
        config = metric.get("config", {})
        column = config.get("column")
        if column and name.startswith("ValueDrift"):
            threshold = config.get("threshold")
            value = metric.get("value")
            method = str(config.get("method", "")).lower()
            # p-value tests drift below the threshold, distances above it
            is_test = "p_value" in method or "test" in method or name.endswith("test)")
            if value is not None and threshold is not None and (value < threshold if is_test else value >= threshold):
                flagged.append(column)
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump({"flagged": sorted(flagged), "evidently": evidently.__version__}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
