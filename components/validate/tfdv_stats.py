"""TFDV statistics of Parquet files: in-process or with a Beam pipeline. TFDV interpreter only.

Imported by :mod:`kfpkit.components.validate.tfdv_main` alone; never import it from the main environment.

* In-process (``beam_pipeline_args`` is None): the Parquet file is read in record batches with pyarrow,
  each batch canonicalized (``tfx_bsl.arrow.table_util.CanonicalizeRecordBatch``) and fed to TFDV's
  in-memory combiner generators (the code path of ``tfdv.generate_statistics_from_dataframe(n_jobs=1)``,
  without the pandas round trip: Parquet types reach TFDV unchanged, e.g. an int64 column with nulls stays
  INT).
* Beam: ``beam.io.ReadFromParquetBatched`` → canonicalized record batches → ``tfdv.GenerateStatistics``
  → ``tfdv.WriteStatisticsToBinaryFile``, one pipeline for both splits, with the given pipeline options
  (DirectRunner, Dataflow, Flink, Spark).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from typing import Dict, Iterator, List, Mapping, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx_bsl.arrow import table_util

IN_MEMORY_BATCH_ROWS = 1 << 16
BEAM_REMOTE_SCHEMES = ("gs", "s3", "hdfs", "azfs")


def canonicalize(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A record batch in TFDV's canonical form: every column a ``large_list`` of int64/float64/large_binary."""
    arrays = []
    for column in batch.columns:
        arrays.append(column.dictionary_decode() if pa.types.is_dictionary(column.type) else column)
    return table_util.CanonicalizeRecordBatch(pa.RecordBatch.from_arrays(arrays, batch.schema.names))


def canonical_batches(table: pa.Table) -> Iterator[pa.RecordBatch]:
    """The record batches of a pyarrow Table, canonicalized (the Beam path's ``FlatMap``)."""
    for batch in table.to_batches():
        if batch.num_rows:
            yield canonicalize(batch)


def in_memory_statistics(
    path: str, options: tfdv.StatsOptions, batch_rows: int = IN_MEMORY_BATCH_ROWS
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of one Parquet file, computed in this process batch by batch."""
    generators = stats_impl.get_generators(options, in_memory=True)
    accumulators = [generator.create_accumulator() for generator in generators]
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        if not batch.num_rows:
            continue
        canonical = canonicalize(batch)
        accumulators = [g.add_input(acc, canonical) for g, acc in zip(generators, accumulators, strict=True)]
    return stats_impl.extract_statistics_output(accumulators, generators)


def beam_statistics(
    locations: Mapping[str, str], options: tfdv.StatsOptions, pipeline_args: Sequence[str]
) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """Statistics of each ``{split: Parquet file pattern}`` from ONE Beam pipeline run with ``pipeline_args``.

    The statistics are written under ``--temp_location`` when given (remote runners need a location the
    workers can write to, e.g. ``gs://``), else under a local temporary directory, then read back.
    """
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

    pipeline_options = PipelineOptions(list(pipeline_args))
    temp_location: Optional[str] = pipeline_options.view_as(GoogleCloudOptions).temp_location
    local_root = None
    if temp_location:
        root = FileSystems.join(temp_location, f"kfpkit-validate-{uuid.uuid4().hex[:12]}")
    else:
        local_root = root = tempfile.mkdtemp(prefix="kfpkit-validate-beam-")
    outputs = {split: FileSystems.join(root, f"{split}_stats.pb") for split in locations}
    try:
        with beam.Pipeline(options=pipeline_options) as pipeline:
            for split, location in locations.items():
                _ = (
                    pipeline
                    | f"ReadParquet[{split}]" >> beam.io.ReadFromParquetBatched(location)
                    | f"ToRecordBatches[{split}]" >> beam.FlatMap(canonical_batches)
                    | f"GenerateStatistics[{split}]" >> tfdv.GenerateStatistics(options)
                    | f"WriteStatistics[{split}]" >> tfdv.WriteStatisticsToBinaryFile(outputs[split])
                )
        results = {}
        for split, output in outputs.items():
            stats = statistics_pb2.DatasetFeatureStatisticsList()
            with FileSystems.open(output) as fh:
                stats.ParseFromString(fh.read())
            results[split] = stats
        return results
    finally:
        if local_root is not None:
            import shutil

            shutil.rmtree(local_root, ignore_errors=True)
        else:
            existing: List[str] = [p for p in outputs.values() if FileSystems.exists(p)]
            if existing:
                FileSystems.delete(existing)


def data_location(path: str, uri: Optional[str]) -> str:
    """What the Beam path reads: the artifact URI when Beam can read it remotely, else the local path.

    ``gs://`` (Vertex), ``s3://``, ``hdfs://`` and ``azfs://`` URIs are readable by remote workers; other
    schemes (Kubeflow's ``minio://``) and local URIs fall back to the local path the launcher sees.
    """
    if uri and uri.split("://", 1)[0] in BEAM_REMOTE_SCHEMES and "://" in uri:
        return uri
    return os.path.abspath(path)
