"""Writes bytecode for exactly the modules the validate component imports: a tiny TFDV run, in the tfdv image.

    /opt/venv/bin/python images/tfdv_bytecode.py

Run by images/tfdv.Dockerfile in its builder stage, after the lock is installed with ``pip install
--no-compile`` and with ``PYTHONDONTWRITEBYTECODE`` unset: Python then writes ``__pycache__/*.pyc`` next to
each module it imports, inside the virtual environment that the runtime stage copies. It makes the library
calls of kfpkit's validate (components/validate: ``tfdv_main``, ``tfdv_stats``, ``component``) on a
three-split table of 200 rows: the KFP executor's and ``kfp.dsl``'s imports; statistics in memory (TFDV's
combiner generators on canonicalized pyarrow batches, and ``generate_statistics_from_dataframe``) and with
Beam's DirectRunner (``ReadFromParquetBatched`` → ``GenerateStatistics`` → ``WriteStatisticsToBinaryFile``);
``pq.read_table`` of one column and ``pyarrow.compute`` (kfpkit's numeric skew); ``infer_schema``;
``validate_statistics`` with the skew and drift comparators (L-infinity and Jensen-Shannon);
text protos of the schema and anomalies; Beam's ``FileSystems``. It imports nothing of kfpkit, so that
the image's environment layer depends on the lock and this file only. Modules the run does not import get
no bytecode (images/README.md, "Bytecode for what validate imports"). Not shipped.
"""

from __future__ import annotations

import os
import sys
import tempfile


def _table(rows: int, shift: float):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "amount": rng.normal(100.0 + shift, 10.0, rows),
            "count": rng.integers(0, 5, rows),
            "merchant": rng.choice(["a", "b", "c"], rows),
            "is_fraud": rng.integers(0, 2, rows),
        }
    )


def _with_comparators(schema):
    import tensorflow_data_validation as tfdv

    tfdv.get_feature(schema, "merchant").skew_comparator.infinity_norm.threshold = 0.01
    tfdv.get_feature(schema, "merchant").drift_comparator.infinity_norm.threshold = 0.01
    tfdv.get_feature(schema, "amount").skew_comparator.jensen_shannon_divergence.threshold = 0.01
    tfdv.get_feature(schema, "amount").drift_comparator.jensen_shannon_divergence.threshold = 0.01
    schema.default_environment.extend(["TRAINING", "SERVING"])
    tfdv.get_feature(schema, "is_fraud").not_in_environment.append("SERVING")
    return schema


def main(work: str) -> None:
    """Runs the workload in ``work``; raises on any failure (the image build then fails)."""
    import kfp.dsl  # the component's decorator and artifact types
    import kfp.dsl.executor_main  # noqa: F401  (what KFP runs: python -m kfp.dsl.executor_main)
    import pyarrow as pa
    import pyarrow.compute  # kfpkit's numeric skew
    import pyarrow.parquet as pq
    import tensorflow_data_validation as tfdv
    from apache_beam.io.filesystems import FileSystems
    from google.protobuf import text_format
    from tensorflow_data_validation.statistics import stats_impl
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
    from tfx_bsl.arrow import table_util

    paths = {}
    for index, split in enumerate(("train", "eval", "test")):
        paths[split] = os.path.join(work, f"{split}.parquet")
        pq.write_table(pa.Table.from_pandas(_table(200, shift=index), preserve_index=False), paths[split])
    options = tfdv.StatsOptions()
    stats = {}
    for split, path in paths.items():  # in memory: tfdv_stats.in_memory_statistics
        generators = stats_impl.get_generators(options, in_memory=True)
        accumulators = [g.create_accumulator() for g in generators]
        for batch in pq.ParquetFile(path).iter_batches(batch_size=64):
            canonical = table_util.CanonicalizeRecordBatch(batch)
            accumulators = [g.add_input(a, canonical) for g, a in zip(generators, accumulators, strict=True)]
        stats[split] = stats_impl.extract_statistics_output(accumulators, generators)
    for path in paths.values():  # kfpkit's numeric skew: numeric_skew.py reads one column of each split
        amount = pq.read_table(path, columns=["amount"]).column("amount")
        assert pq.read_schema(path).names and pyarrow.compute.fill_null(pyarrow.compute.cast(amount, pa.float64()), 0.0)
    tfdv.generate_statistics_from_dataframe(_table(50, shift=0.0), n_jobs=1)
    _beam_statistics(paths["train"], os.path.join(work, "beam"), options)
    schema = _with_comparators(tfdv.infer_schema(stats["train"]))
    schema = text_format.Parse(text_format.MessageToString(schema), schema_pb2.Schema())
    anomalies = [
        tfdv.validate_statistics(stats["train"], schema, environment="TRAINING", serving_statistics=stats["eval"]),
        tfdv.validate_statistics(stats["eval"], schema, environment="SERVING", previous_statistics=stats["train"]),
        tfdv.validate_statistics(stats["test"], schema, environment="TRAINING"),
    ]
    for index, message in enumerate(anomalies):
        with FileSystems.create(os.path.join(work, f"anomalies-{index}.pbtxt")) as handle:
            handle.write(text_format.MessageToString(message).encode("utf-8"))
    with open(os.path.join(work, "train.stats"), "wb") as handle:
        handle.write(stats["train"].SerializeToString())
    assert FileSystems.exists(os.path.join(work, "anomalies-0.pbtxt"))
    assert isinstance(stats["train"], statistics_pb2.DatasetFeatureStatisticsList)


def _beam_statistics(path: str, output: str, options) -> None:
    """tfdv_stats.beam_statistics on one split, with the DirectRunner."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions
    from tfx_bsl.arrow import table_util

    pipeline_options = PipelineOptions(["--runner=DirectRunner"])
    pipeline_options.view_as(GoogleCloudOptions)

    def batches(table):
        for batch in table.to_batches():
            yield table_util.CanonicalizeRecordBatch(batch)

    with beam.Pipeline(options=pipeline_options) as pipeline:
        _ = (
            pipeline
            | "Read" >> beam.io.ReadFromParquetBatched(path)
            | "Canonical" >> beam.FlatMap(batches)
            | "Statistics" >> tfdv.GenerateStatistics(options)
            | "Write" >> tfdv.WriteStatisticsToBinaryFile(output)
        )
    tfdv.load_stats_binary(output)


if __name__ == "__main__":
    if sys.flags.dont_write_bytecode:
        raise SystemExit("PYTHONDONTWRITEBYTECODE is set: this run would write no bytecode")
    with tempfile.TemporaryDirectory() as tmp:
        main(tmp)
    print("tfdv bytecode: the validate workload ran")
