"""The payload record: one row per scored instance, the same from the predictor and from the CloudEvents sink.

| column | type | content |
|---|---|---|
| ``request_id`` | string | the v2 ``id``, else the ``X-Request-Id``/``Ce-Id`` header, else a new UUID |
| ``instance`` | int32 | position of the instance in its request (the join key is ``request_id, instance``) |
| ``timestamp`` | timestamp[us, UTC] | when the request arrived |
| ``model_name``, ``model_version`` | string | the served model |
| one column per feature | float64 (numeric) / string (categorical) | the raw values as received (null: missing) |
| ``score`` | float64 | the calibrated positive-class probability |
| ``label`` | int64 | ``score >= decision_threshold`` |
| ``ground_truth`` | int64 | null when logged; joined later by ``request_id, instance`` |

**Layout.** Parquet files under ``<root>/<model_name>/<model_version>/<YYYY-MM-DD>/<HH>/part-*.parquet``
(the UTC hour of ``timestamp``): :func:`partition_path` builds the folder, :func:`partition_of` and
:func:`partition_hour` parse a file's path, :func:`write_partitioned` writes a table into its hour folders
(through fsspec; on local file systems under a hidden name first, so readers never see half a file).

**Version.** Every file's Arrow schema carries the key-value metadata ``kfpkit.record: payload record`` and
``kfpkit.record_version: 1``. Readers call :func:`check_schema`: it refuses another kind or version and, in a
tagged file, a missing or mistyped record column, naming the file and the column. A file without the tag
(written before the tag existed, or by another tool) is read as it is.

**Writers** (the predictor's logger and the sink) hand over :class:`PayloadEntry` objects, one per request,
and :meth:`PayloadSchema.table` builds the columns in bulk with numpy: no Python object per row.
**Readers** that want rows (tests, label joins, notebooks) get :class:`PayloadRecord` objects from
:func:`records_from_table`; :meth:`PayloadSchema.records_table` writes them back.

Import-light: numpy at module level, pyarrow and fsspec inside the functions.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from kfpkit.core.records import Record, RecordError

RECORD_KIND = "payload record"
RECORD_VERSION = 1
METADATA_KIND = b"kfpkit.record"
METADATA_VERSION = b"kfpkit.record_version"

REQUEST_ID = "request_id"
INSTANCE = "instance"
TIMESTAMP = "timestamp"
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
SCORE = "score"
LABEL = "label"
GROUND_TRUTH = "ground_truth"
LEADING_COLUMNS = (REQUEST_ID, INSTANCE, TIMESTAMP, MODEL_NAME, MODEL_VERSION)  # before the features
TRAILING_COLUMNS = (SCORE, LABEL, GROUND_TRUTH)  # after the features
RESERVED_COLUMNS = (*LEADING_COLUMNS, *TRAILING_COLUMNS)
# the Arrow type of each record column, as pyarrow's str() names it
COLUMN_TYPES = {
    REQUEST_ID: "string",
    INSTANCE: "int32",
    TIMESTAMP: "timestamp[us, tz=UTC]",
    MODEL_NAME: "string",
    MODEL_VERSION: "string",
    SCORE: "double",
    LABEL: "int64",
    GROUND_TRUTH: "int64",
}

UNVERSIONED = "unversioned"  # model_version when the served version is unknown
PARQUET_SUFFIX = ".parquet"
_HOUR_US = 3_600_000_000


# --------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Partition:
    """One hour folder of a payload log: ``<model_name>/<model_version>/<YYYY-MM-DD>/<HH>``."""

    model_name: str
    model_version: str
    hour: datetime

    @property
    def path(self) -> str:
        """The folder relative to the payload-log root (see :func:`partition_path`)."""
        return partition_path(self.model_name, self.model_version, self.hour)


def partition_path(model_name: str, model_version: str, hour: datetime) -> str:
    """``<model>/<version>/<YYYY-MM-DD>/<HH>`` of an hour (UTC), relative to the payload-log root."""
    hour = hour.astimezone(timezone.utc) if hour.tzinfo else hour
    return f"{model_name}/{model_version}/{hour:%Y-%m-%d}/{hour:%H}"


def model_prefix(model_name: str, model_version: Optional[str] = None) -> str:
    """``<model>`` or ``<model>/<version>``: the folder of one model's (or one version's) partitions."""
    return f"{model_name}/{model_version}" if model_version else model_name


def partition_hour(path: str) -> Optional[datetime]:
    """The UTC hour of a file at ``.../<YYYY-MM-DD>/<HH>/<file>``, or ``None`` when the path is not laid out so."""
    parts = path.replace(os.sep, "/").split("/")
    if len(parts) < 3:
        return None
    try:
        hour = datetime.strptime(f"{parts[-3]} {parts[-2]}", "%Y-%m-%d %H")
    except ValueError:
        return None
    return hour.replace(tzinfo=timezone.utc)


def partition_of(path: str) -> Optional[Partition]:
    """The partition of a file at ``.../<model>/<version>/<YYYY-MM-DD>/<HH>/<file>``, or ``None``."""
    hour = partition_hour(path)
    parts = path.replace(os.sep, "/").split("/")
    if hour is None or len(parts) < 5 or not parts[-5] or not parts[-4]:
        return None
    return Partition(parts[-5], parts[-4], hour)


def split_by_hour(table: Any) -> List[Tuple[datetime, Any]]:
    """``(hour, rows of that hour)`` of a payload table, in time order."""
    import pyarrow as pa

    hours = table.column(TIMESTAMP).cast(pa.int64()).to_numpy() // _HOUR_US
    out = []
    for hour in np.unique(hours):
        mask = hours == hour
        part = table if mask.all() else table.filter(pa.array(mask))
        out.append((datetime.fromtimestamp(int(hour) * 3600, tz=timezone.utc), part))
    return out


def write_partitioned(uri: str, table: Any, file_name: str) -> List[str]:
    """Writes a payload table as Parquet, one file ``file_name`` per hour partition.

    The same ``file_name`` for the same rows rewrites the same files (the sink's compaction relies on it).

    Args:
        uri: The payload-log root (local folder, ``gs://``, ``s3://``, any fsspec URL).
        table: A table of :meth:`PayloadSchema.table` (one model name and version per hour).
        file_name: Name of the file written into each hour folder.

    Returns:
        The paths written.
    """
    import fsspec.core
    import pyarrow.parquet as pq
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(uri)
    root = root.rstrip("/")
    written = []
    for hour, part in split_by_hour(table):
        model_name = part.column(MODEL_NAME)[0].as_py()
        model_version = part.column(MODEL_VERSION)[0].as_py()
        folder = f"{root}/{partition_path(model_name, model_version, hour)}"
        path = f"{folder}/{file_name}"
        if isinstance(fs, LocalFileSystem):
            os.makedirs(folder, exist_ok=True)
            tmp = f"{folder}/.{file_name}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                pq.write_table(part, tmp)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise
        else:
            with fs.open(path, "wb") as handle:
                pq.write_table(part, handle)
        written.append(path)
    return written


# --------------------------------------------------------------------------- schema
def check_schema(schema: Any, where: str) -> Optional[int]:
    """Checks that an Arrow schema read from a payload-log file is a payload record this kfpkit reads.

    Args:
        schema: The file's ``pyarrow.Schema``.
        where: What errors call the file (its path).

    Returns:
        The record version of a tagged file, ``None`` for a file without the tag (read as it is).

    Raises:
        RecordError: the file is tagged as another record kind or version, or lacks a record column or has
            one of another type; the message names the file and the column.
    """
    metadata = schema.metadata or {}
    kind, version = metadata.get(METADATA_KIND), metadata.get(METADATA_VERSION)
    if kind is None and version is None:
        return None
    if kind != RECORD_KIND.encode():
        raise RecordError(f"{where}: record must be {RECORD_KIND!r}, got {_text(kind)!r}")
    if version != str(RECORD_VERSION).encode():
        raise RecordError(
            f"{where}: payload record_version must be {RECORD_VERSION}, got {_text(version)!r} "
            "(written by another kfpkit version?)"
        )
    for name in RESERVED_COLUMNS:
        index = schema.get_field_index(name)
        if index < 0:
            raise RecordError(f"{where}: payload record column {name!r} is missing")
        if str(schema.field(index).type) != COLUMN_TYPES[name]:
            raise RecordError(
                f"{where}: payload record column {name!r} must be {COLUMN_TYPES[name]}, got {schema.field(index).type}"
            )
    return RECORD_VERSION


def _text(value: Optional[bytes]) -> Optional[str]:
    return None if value is None else value.decode("utf-8", "replace")


@dataclass
class PayloadEntry:
    """One scored request, as the request path hands it to a writer (references, not copies).

    Attributes:
        time: When the request arrived (seconds since the epoch).
        request_id: The request's id; instance ``i`` of the request is row ``(request_id, i)``.
        columns: ``{feature: values}``, one value per instance, as decoded from the request.
        score: The positive-class probability per instance (NaN: absent).
        label: The predicted label per instance (NaN: absent).
    """

    time: float
    request_id: str
    columns: Mapping[str, Sequence[Any]]
    score: np.ndarray
    label: np.ndarray


class PayloadSchema:
    """The payload record's Arrow schema for one model's preprocessing spec, and the table builders.

    Args:
        spec: The model's preprocessing spec (``feature_order``, ``numeric_names``, ``categorical_names``).

    Attributes:
        numeric: Numeric feature names (float64 columns).
        categorical: Categorical feature names (string columns).
        features: Every feature, in the spec's order (the columns between the leading and trailing ones).
        schema: The ``pyarrow.Schema``, tagged with the record kind and version.

    Raises:
        ValueError: a feature is named like a record column.
    """

    def __init__(self, spec: Any):
        import pyarrow as pa

        clash = sorted(set(spec.feature_order) & set(RESERVED_COLUMNS))
        if clash:
            raise ValueError(f"feature(s) {clash} collide with payload record columns {list(RESERVED_COLUMNS)}")
        self.numeric = list(spec.numeric_names)
        self.categorical = list(spec.categorical_names)
        self.features = list(spec.feature_order)
        kinds = {n: pa.float64() for n in self.numeric} | {n: pa.string() for n in self.categorical}
        self.schema = pa.schema(
            [
                (REQUEST_ID, pa.string()),
                (INSTANCE, pa.int32()),
                (TIMESTAMP, pa.timestamp("us", tz="UTC")),
                (MODEL_NAME, pa.string()),
                (MODEL_VERSION, pa.string()),
                *[(name, kinds[name]) for name in self.features],
                (SCORE, pa.float64()),
                (LABEL, pa.int64()),
                (GROUND_TRUTH, pa.int64()),
            ],
            metadata={METADATA_KIND: RECORD_KIND.encode(), METADATA_VERSION: str(RECORD_VERSION).encode()},
        )

    def table(self, model_name: str, model_version: str, entries: Sequence[PayloadEntry]) -> Any:
        """The records of ``entries`` (one row per instance) as one Arrow table, built column by column."""
        import pyarrow as pa

        from kfpkit.core.preprocessing import _category_key

        sizes = [len(e.score) for e in entries]
        rows = int(sum(sizes))
        ids: List[str] = []
        for entry, size in zip(entries, sizes, strict=True):
            ids.extend([entry.request_id] * size)
        stamps = np.repeat(np.asarray([round(e.time * 1e6) for e in entries], dtype=np.int64), sizes)
        columns: Dict[str, Any] = {
            REQUEST_ID: pa.array(ids, pa.string()),
            INSTANCE: pa.array(np.concatenate([np.arange(s, dtype=np.int32) for s in sizes]), pa.int32()),
            TIMESTAMP: pa.array(stamps, pa.timestamp("us", tz="UTC")),
            MODEL_NAME: pa.array([model_name] * rows, pa.string()),
            MODEL_VERSION: pa.array([model_version] * rows, pa.string()),
        }
        for name in self.numeric:
            values = np.concatenate([np.asarray(e.columns[name], dtype=np.float64) for e in entries])
            columns[name] = pa.array(values, pa.float64(), from_pandas=True)
        for name in self.categorical:
            keys = [_category_key(v) for e in entries for v in e.columns[name]]
            columns[name] = pa.array([k if k != "" else None for k in keys], pa.string())
        scores = np.concatenate([np.asarray(e.score, dtype=np.float64) for e in entries])
        columns[SCORE] = pa.array(scores, pa.float64(), from_pandas=True)
        labels = np.concatenate([np.asarray(e.label, dtype=np.float64) for e in entries])
        columns[LABEL] = pa.array(labels, pa.float64(), from_pandas=True).cast(pa.int64())
        columns[GROUND_TRUTH] = pa.nulls(rows, pa.int64())
        return pa.table(columns, schema=self.schema)

    def records_table(self, records: Sequence[PayloadRecord]) -> Any:
        """The rows of ``records`` as one Arrow table of this schema (for readers' round trips and tests).

        Raises:
            RecordError: a record lacks a feature of this schema or has one it does not know.
        """
        import pyarrow as pa

        for index, record in enumerate(records):
            missing = [f for f in self.features if f not in record.features]
            unknown = sorted(set(record.features) - set(self.features))
            if missing or unknown:
                what = f"lacks feature(s) {missing}" if missing else f"has unknown feature(s) {unknown}"
                raise RecordError(f"{RECORD_KIND} {index} ({record.request_id}): features {what}")
        columns: Dict[str, List[Any]] = {name: [] for name in self.schema.names}
        for record in records:
            row = {**record.features, **{n: getattr(record, n) for n in RESERVED_COLUMNS}}
            row[TIMESTAMP] = record.time
            for name, values in columns.items():
                values.append(row[name])
        return pa.table(columns, schema=self.schema)


# --------------------------------------------------------------------------- rows
FeatureValue = Optional[Union[float, str]]


@dataclass
class PayloadRecord(Record):
    """One payload row as a typed record (what :func:`records_from_table` reads; not the writers' hot path).

    Attributes:
        request_id: The request's id.
        instance: Position of the instance in its request.
        timestamp: When the request arrived: ISO-8601 with a UTC offset, normalized to UTC with microseconds
            (``2026-12-01T09:00:00.000000+00:00``).
        model_name: The served model.
        model_version: The served version (``unversioned`` when unknown).
        features: ``{feature: raw value}``: a number (numeric), a string (categorical) or ``None`` (missing).
        score: The calibrated positive-class probability (``None``: absent).
        label: The predicted label (``None``: absent).
        ground_truth: The true label once known (``None`` when logged).
    """

    KIND: ClassVar[str] = RECORD_KIND
    VERSION: ClassVar[int] = RECORD_VERSION

    request_id: str
    instance: int
    timestamp: str
    model_name: str
    model_version: str
    features: Dict[str, FeatureValue]
    score: Optional[float]
    label: Optional[int]
    ground_truth: Optional[int] = None

    def __post_init__(self) -> None:
        """Checks ``timestamp`` and normalizes it to UTC with microseconds (so equal times compare equal)."""
        try:
            parsed = datetime.fromisoformat(self.timestamp)
        except (TypeError, ValueError):
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise RecordError(
                f"timestamp must be an ISO-8601 time with a UTC offset (2026-12-01T09:00:00+00:00), "
                f"got {self.timestamp!r}"
            )
        self.timestamp = parsed.astimezone(timezone.utc).isoformat(timespec="microseconds")

    @property
    def time(self) -> datetime:
        """``timestamp`` as an aware UTC datetime."""
        return datetime.fromisoformat(self.timestamp)


def records_from_table(table: Any, where: str = "payload table") -> List[PayloadRecord]:
    """The rows of a payload table (e.g. ``pyarrow.parquet.read_table`` of a payload-log file) as records.

    Args:
        table: A ``pyarrow.Table`` with every record column.
        where: What errors call the table (its file).

    Raises:
        RecordError: the table is tagged as another kind or version, or lacks a record column; the message
            names ``where`` and the column.
    """
    check_schema(table.schema, where)
    missing = [name for name in RESERVED_COLUMNS if name not in table.schema.names]
    if missing:
        raise RecordError(f"{where}: payload record column {missing[0]!r} is missing")
    features = [name for name in table.schema.names if name not in RESERVED_COLUMNS]
    out = []
    for row in table.to_pylist():
        stamp = row[TIMESTAMP]
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        fields = {name: row[name] for name in RESERVED_COLUMNS if name != TIMESTAMP}
        out.append(PayloadRecord(timestamp=stamp.isoformat(), features={f: row[f] for f in features}, **fields))
    return out
