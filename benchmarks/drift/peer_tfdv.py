"""TFDV peer of ``make bench-drift`` (runs in the TFDV interpreter): statistics of both sides + drift comparators.

    .venv-tfdv/bin/python -m benchmarks.drift.peer_tfdv REFERENCE.parquet LIVE.parquet OUT.json

Vertex AI Model Monitoring's defaults: Jensen-Shannon divergence 0.1 for numeric features (TFDV's JS on its
10-bucket equal-width histograms), L-infinity 0.1 for categorical ones. Writes
``{"flagged": [...], "measurements": {feature: {"type", "value", "threshold"}}}``.
"""

import json
import sys


def main(argv=None) -> int:
    import pandas as pd
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    reference_path, live_path, out_path = (argv or sys.argv[1:])[:3]
    reference = tfdv.generate_statistics_from_dataframe(pd.read_parquet(reference_path))
    live = tfdv.generate_statistics_from_dataframe(pd.read_parquet(live_path))
    schema = tfdv.infer_schema(reference)
    for feature in schema.feature:
        if feature.type == schema_pb2.BYTES:
            feature.drift_comparator.infinity_norm.threshold = 0.1
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = 0.1
    anomalies = tfdv.validate_statistics(live, schema, previous_statistics=reference)
    measurements = {}
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        for m in info.drift_measurements:
            measurements[name] = {"type": int(m.type), "value": float(m.value), "threshold": float(m.threshold)}
    flagged = sorted(n for n, m in measurements.items() if m["value"] > m["threshold"])
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump({"flagged": flagged, "measurements": measurements}, fh, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
