"""The scored rows of a live window (kfp-free): key, scoring time and calibrated score of every row.

The window is a payload log (``<root>/<model>/<version>/<YYYY-MM-DD>/<HH>/*.parquet``, found and pruned by
hour as the monitor does, :func:`kfpkit.components.monitor.logic.payload_files`) or one CSV, Parquet or JSON
Lines table of scored rows with a key, a timestamp and a score column (local, ``file://``, ``gs://``,
``s3://``, ``http(s)://``; :func:`kfpkit.components.performance.tables.read_table`). Only those columns are
read (no key column when no labels are given): 1M rows take a few tens of MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from kfpkit.components.performance.errors import PerformanceError
from kfpkit.components.performance.labels import (
    KeyColumns,
    arrow_int64,
    as_numpy,
    buffer_values,
    key_columns,
    parse_times,
)


class LiveError(PerformanceError):
    """A live window that cannot be read: missing file or column, a bad score or time (naming the file)."""


@dataclass
class LiveRows:
    """Scored rows of the window, sorted by scoring time.

    Attributes:
        keys: Key per row (:func:`kfpkit.components.performance.labels.key_columns`); no column when no key
            was read.
        times: Scoring time per row, UTC nanoseconds since the epoch, int64.
        scores: Calibrated positive-class probability per row, float64.
        after_as_of: Rows scored at or after ``as_of`` (left out).
    """

    keys: KeyColumns
    times: np.ndarray
    scores: np.ndarray
    after_as_of: int = 0

    @property
    def rows(self) -> int:
        """Rows in the window."""
        return int(self.scores.size)


def read_live(
    source: str,
    key_columns: Sequence[str],
    timestamp_column: str,
    score_column: str,
    as_of: datetime,
    since: Optional[datetime] = None,
    model_name: Optional[str] = None,
    model_version: Optional[str] = None,
) -> LiveRows:
    """Reads the window's rows scored in ``[since, as_of)``.

    Args:
        source: Payload-log URI (root or version folder) or a CSV/Parquet/JSON Lines table of scored rows.
        key_columns: The key column(s) the labels are joined by (none: no key is read).
        timestamp_column: When each row was scored.
        score_column: The calibrated score.
        as_of: Rows scored at or after it are left out.
        since: Rows scored before it are left out (``None``: no bound).
        model_name: Narrows a payload-log root to this model's folder.
        model_version: And to this version's.

    Raises:
        LiveError: the source is missing or unreadable, lacks a column, or holds a score outside [0, 1].
    """
    from kfpkit.components.performance.tables import table_format

    columns = list(dict.fromkeys([*key_columns, timestamp_column, score_column]))
    parts: List[Tuple[str, Any]] = []
    if table_format(source) is None:
        from kfpkit.components.monitor.logic import MonitorError, payload_files

        try:
            fs, files = payload_files(source, model_name, model_version, since, as_of)
            parts = [(file, _read_parquet(fs, file, columns)) for file in files]
        except MonitorError as exc:
            raise LiveError(str(exc)) from None
    else:
        parts = [(source, _read_table(source, columns))]
    keys, times, scores = [], [], []
    for where, table in parts:
        key, time, score = _columns(table, key_columns, timestamp_column, score_column, where)
        keys.append(key)
        times.append(time)
        scores.append(score)
    if not scores:
        raise LiveError(f"live source {source!r} has no payload-log files")

    key_all, time_all, score_all = KeyColumns.concat(keys), np.concatenate(times), np.concatenate(scores)
    as_of_ns = _ns(as_of)
    keep = time_all < as_of_ns
    if since is not None:
        keep &= time_all >= _ns(since)
    after = int(np.sum(time_all >= as_of_ns))
    if keep.all() and np.all(time_all[1:] >= time_all[:-1]):  # the usual case: written in time order
        return LiveRows(key_all, time_all, score_all, after)
    kept = np.flatnonzero(keep)
    order = kept[np.argsort(time_all[kept], kind="stable")]
    return LiveRows(key_all.take(arrow_int64(order)), time_all[order], score_all[order], after)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000


def _read_parquet(fs: Any, path: str, columns: Sequence[str]) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from fsspec.implementations.local import LocalFileSystem

    from kfpkit.core import payload_record
    from kfpkit.core.records import RecordError

    try:
        # ParquetFile reads the columns without pyarrow.dataset (whose import alone costs a second); one
        # thread: decoding a few columns is quick, and a thread pool only spins on a busy machine
        with open(path, "rb") if isinstance(fs, LocalFileSystem) else fs.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            _check(parquet.schema_arrow, path, columns, payload_record, RecordError)
            return parquet.read(columns=list(columns), use_threads=False)
    except (OSError, pa.ArrowException) as exc:
        raise LiveError(f"{path}: not a readable Parquet file ({exc})") from None


def _check(schema: Any, path: str, columns: Sequence[str], payload_record: Any, record_error: Any) -> None:
    try:
        payload_record.check_schema(schema, path)
    except record_error as exc:
        raise LiveError(str(exc)) from None
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise LiveError(f"{path}: live data lacks column(s) {missing} (it has {schema.names[:20]})")


def _read_table(source: str, columns: Sequence[str]) -> Any:
    from kfpkit.components.performance.tables import read_table

    try:
        return read_table(source, columns, "live source")[0]
    except PerformanceError as exc:
        raise LiveError(str(exc)) from None


def _require(names: Sequence[str], columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in names]
    if missing:
        raise LiveError(f"{where}: live data lacks column(s) {missing} (it has {list(names)[:20]})")


def _columns(
    table: Any, key_names: Sequence[str], timestamp_column: str, score_column: str, where: str
) -> Tuple[KeyColumns, np.ndarray, np.ndarray]:
    import pyarrow as pa

    keys = key_columns([table.column(c) for c in key_names], key_names, where)
    # whole arrays, not chunked ones: ChunkedArray.to_numpy goes through pandas (a second of import)
    stamps = table.column(timestamp_column).combine_chunks()
    if pa.types.is_string(stamps.type) or pa.types.is_large_string(stamps.type):
        stamps = parse_times(stamps, where, timestamp_column, LiveError)
    if not pa.types.is_timestamp(stamps.type):
        raise LiveError(f"{where}: column {timestamp_column!r} holds {stamps.type}, not times")
    if stamps.null_count:
        raise LiveError(f"{where}: column {timestamp_column!r} has {stamps.null_count} missing time(s)")
    # tz-aware Arrow times are stored in UTC; naive ones are read as UTC. Nanoseconds (the payload record's
    # unit) and float64 scores are read from their buffers: no cast, and no pyarrow.compute import (~40 ms)
    if stamps.type.unit == "ns":
        times = buffer_values(stamps, np.dtype(np.int64))
    else:
        import pyarrow.compute as pc

        times = as_numpy(pc.cast(pc.cast(stamps, pa.timestamp("ns", tz=stamps.type.tz)), pa.int64()))
    scores = table.column(score_column).combine_chunks()
    if not (pa.types.is_floating(scores.type) or pa.types.is_integer(scores.type)):
        raise LiveError(f"{where}: score column {score_column!r} holds {scores.type}, not numbers")
    if scores.type == pa.float64() and scores.null_count == 0:
        values = as_numpy(scores)
    else:
        import pyarrow.compute as pc

        values = as_numpy(pc.cast(scores, pa.float64()))
    bad = np.flatnonzero(~((values >= 0.0) & (values <= 1.0)))
    if bad.size:
        raise LiveError(
            f"{where}: row {bad[0] + 1}, column {score_column!r}: score {values[bad[0]]!r} is not a probability in "
            "[0, 1] (missing or out of range)"
        )
    return keys, np.asarray(times, dtype=np.int64), values
