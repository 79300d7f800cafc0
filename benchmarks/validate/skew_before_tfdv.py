"""The BEFORE side of ``skew_sweep`` (runs in the TFDV interpreter): validate's skew check as it was.

    .venv-tfdv/bin/python -m benchmarks.validate.skew_before_tfdv     (from the repository root)

Reads one JSON request per line on stdin, ``{"dir": D, "shift": {feature: amount}, "label": L}`` with ``D`` holding
``train.parquet``, ``eval.parquet`` and ``test.parquet``, and answers one line ``SKEW_JSON {...}`` on stdout.
For each request it does what validate did before kfpkit judged numeric skew itself: statistics of the three
splits with validate's own in-memory path (:func:`kfpkit.components.validate.tfdv_stats.in_memory_statistics`),
``tfdv.infer_schema`` on train, a skew comparator on every feature but the label (TFDV's approximate Jensen-Shannon
divergence for numeric features, L-infinity for categorical ones, both at the old default 0.3), then
``tfdv.validate_statistics`` of train against eval and of train against test. The answer lists every
exceeded measurement (``alarms``: ``[feature, "train/eval" | "train/test", value]``) and, for the designed
shift, whether TFDV flags feature ``f`` when ``shift[f]`` is added to every value of f in eval (then test):
``detected: {f: {"eval": bool, "test": bool}}``.
"""

from __future__ import annotations

import json
import os
import sys

OLD_THRESHOLD = 0.3  # validate's old default for both comparators (Vertex AI Model Monitoring's)


def _schema(train_stats, label):
    import tensorflow_data_validation as tfdv

    schema = tfdv.infer_schema(train_stats)
    numeric = {".".join(f.path.step) for f in train_stats.datasets[0].features if f.WhichOneof("stats") == "num_stats"}
    for feature in schema.feature:
        if feature.name == label:
            continue
        if feature.name in numeric:
            feature.skew_comparator.jensen_shannon_divergence.threshold = OLD_THRESHOLD
        else:
            feature.skew_comparator.infinity_norm.threshold = OLD_THRESHOLD
    return schema


def _skew(train_stats, other_stats, schema):
    """``{feature: value}`` of TFDV's skew measurements of train against ``other_stats``."""
    import tensorflow_data_validation as tfdv

    anomalies = tfdv.validate_statistics(train_stats, schema, serving_statistics=other_stats)
    values = {}
    for info in anomalies.drift_skew_info:
        for measurement in info.skew_measurements:
            values[".".join(info.path.step)] = float(measurement.value)
    return values


def _table_statistics(table, options):
    from tensorflow_data_validation.statistics import stats_impl

    from kfpkit.components.validate import tfdv_stats

    generators = stats_impl.get_generators(options, in_memory=True)
    accumulators = [generator.create_accumulator() for generator in generators]
    for batch in tfdv_stats.canonical_batches(table):
        accumulators = [g.add_input(acc, batch) for g, acc in zip(generators, accumulators, strict=True)]
    return stats_impl.extract_statistics_output(accumulators, generators)


def _shifted(path, feature, amount):
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    index = table.schema.get_field_index(feature)
    column = pc.add(pc.cast(table.column(feature), pa.float64()), amount)
    return table.set_column(index, feature, column)


def answer(request):
    """The answer to one request (see the module docstring)."""
    import tensorflow_data_validation as tfdv

    from kfpkit.components.validate import tfdv_stats

    options = tfdv.StatsOptions()
    paths = {split: os.path.join(request["dir"], f"{split}.parquet") for split in ("train", "eval", "test")}
    stats = {split: tfdv_stats.in_memory_statistics(path, options) for split, path in paths.items()}
    schema = _schema(stats["train"], request.get("label"))
    alarms = []
    for split in ("eval", "test"):
        for feature, value in sorted(_skew(stats["train"], stats[split], schema).items()):
            if value > OLD_THRESHOLD:
                alarms.append([feature, f"train/{split}", value])
    detected = {}
    for feature, amount in sorted(request.get("shift", {}).items()):
        detected[feature] = {}
        for split in ("eval", "test"):
            shifted = _table_statistics(_shifted(paths[split], feature, amount), options)
            value = _skew(stats["train"], shifted, schema).get(feature, 0.0)
            detected[feature][split] = value > OLD_THRESHOLD
    return {"alarms": alarms, "detected": detected}


def main() -> int:
    """Answers every request line on stdin until it closes."""
    for line in sys.stdin:
        if line.strip():
            print("SKEW_JSON " + json.dumps(answer(json.loads(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
