"""Delayed labels in (kfp-free): label tables read, the latest label per key kept, joined to the scored rows.

A **label table** is a CSV, Parquet or JSON Lines file (local, ``file://``, ``gs://``, ``s3://``,
``http(s)://``; read as ingest reads its sources, :func:`kfpkit.components.ingest.sources.load_source`) with

* the key: ``request_id, instance`` of the payload record (:mod:`kfpkit.core.payload_record`), or a business
  key column that was part of the request (e.g. ``transaction_id``), one or several columns;
* the label column: 0/1 (also ``true``/``false``, ``"0"``/``"1"``, as :mod:`kfpkit.core.labels` accepts);
* ``labelled_at``: when the label became known (ISO-8601, UTC when it has no offset, or a timestamp column).

Labels are appended, never rewritten into the payload files: the join happens in memory for one run.

**Rules.** Labels known after ``as_of`` are left out (so that a run is reproducible). Of the rest, the
latest ``labelled_at`` per key wins (on equal times, the row read last). Counted and reported, exactly
(:class:`kfpkit.core.performance_summary.LabelCounts`): rows read, rows after ``as_of``, distinct keys,
rows superseded by a later label of their key, of which duplicates (the same label again), keys with
conflicting labels (0 and 1), rows out of order (known earlier than a row read before them), keys that
match no scored row (unknown), and matched keys labelled before their row was scored.

**Bad input** raises :class:`LabelError` naming the file, the data row (1-based, header not counted) and the
column: a label outside 0/1 or missing, a key or ``labelled_at`` missing or unreadable, a column absent.

**Keys are compared as text**: integers and integral floats as their decimal digits, so that ``instance``
read as int32 from the payload log matches ``instance`` read as int64 (or ``1.0``) from a CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import numpy as np

from kfpkit.components.performance.errors import PerformanceError
from kfpkit.core.labels import ACCEPTED, label_value
from kfpkit.core.performance_summary import LabelCounts

KEY_SEPARATOR = "\x1f"  # between the columns of a composite key (unit separator: not in ids)
DEFAULT_KEY = ("request_id", "instance")
DEFAULT_LABELLED_AT = "labelled_at"


class LabelError(PerformanceError):
    """A label table that cannot be used: missing file or column, a bad label, key or time (file, row, column)."""


@dataclass
class LabelTable:
    """Label rows of one or more tables, in reading order (files in the order given).

    Attributes:
        keys: Key per row as text (composite keys joined by :data:`KEY_SEPARATOR`), object array ``[n]``.
        labels: 0/1 per row, int8 ``[n]``.
        labelled_at: When each label became known, UTC nanoseconds since the epoch, int64 ``[n]``.
        sources: The tables read (credentials removed).
    """

    keys: np.ndarray
    labels: np.ndarray
    labelled_at: np.ndarray
    sources: List[str]

    @property
    def rows(self) -> int:
        """Label rows read."""
        return int(self.labels.size)


@dataclass
class JoinedLabels:
    """The labels of the scored rows.

    Attributes:
        label: Per scored row, its winning label (0/1) or -1 when it has none, int8 ``[rows]``.
        labelled_at: Per scored row, when that label became known (ns; meaningless where ``label`` is -1).
        counts: The counts of :class:`LabelCounts`.
    """

    label: np.ndarray
    labelled_at: np.ndarray
    counts: LabelCounts


# --------------------------------------------------------------------------- keys
def key_text(columns: Sequence[Any], names: Sequence[str], where: str) -> np.ndarray:
    """The key of each row as text: one column, or several joined by :data:`KEY_SEPARATOR`.

    Args:
        columns: The key columns (pyarrow arrays or anything ``pyarrow.array`` takes), equal lengths.
        names: Their names (for errors).
        where: What errors call the data.

    Returns:
        An object array of str (``None`` where any key column is null).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = []
    for column, name in zip(columns, names, strict=True):
        array = column if isinstance(column, (pa.Array, pa.ChunkedArray)) else _arrow_array(column, name, where)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_floating(array.type):
            values = array.to_numpy(zero_copy_only=False)
            finite = values[np.isfinite(values)]
            if finite.size and np.all(finite == np.round(finite)):
                array = pc.cast(array, pa.int64(), safe=False)
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        texts.append(array if pa.types.is_string(array.type) else pc.cast(array, pa.string()))
    joined = texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, KEY_SEPARATOR)
    return np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)


def _arrow_array(values: Any, name: str, where: str) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        # a column of mixed types (JSON Lines): every present value as its text
        return pa.array([None if _missing(v) else _plain_text(v) for v in values], pa.string())


def _plain_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


# --------------------------------------------------------------------------- reading
def read_labels(
    uris: Sequence[str],
    label_column: str,
    key_columns: Sequence[str] = DEFAULT_KEY,
    labelled_at_column: str = DEFAULT_LABELLED_AT,
) -> LabelTable:
    """Reads label tables, checking every value.

    Args:
        uris: Label tables, read in this order (it decides ties and what is out of order).
        label_column: The 0/1 label column.
        key_columns: The key column(s): ``request_id, instance`` or a business key of the request.
        labelled_at_column: When each label became known.

    Raises:
        LabelError: a file is missing or unreadable, lacks a column, or has a bad label, key or time; the
            message names the file, the data row (1-based) and the column.
    """
    keys, labels, stamps, sources = [], [], [], []
    for uri in uris:
        table = _read_one(uri, label_column, key_columns, labelled_at_column)
        keys.append(table.keys)
        labels.append(table.labels)
        stamps.append(table.labelled_at)
        sources.extend(table.sources)
    return LabelTable(
        keys=np.concatenate(keys) if keys else np.empty(0, dtype=object),
        labels=np.concatenate(labels) if labels else np.empty(0, dtype=np.int8),
        labelled_at=np.concatenate(stamps) if stamps else np.empty(0, dtype=np.int64),
        sources=sources,
    )


def _read_one(uri: str, label_column: str, key_columns: Sequence[str], labelled_at_column: str) -> LabelTable:
    from kfpkit.components.ingest.errors import IngestError
    from kfpkit.components.ingest.sources import load_source, redact_uri

    display = redact_uri(uri)
    try:
        frame = load_source(uri, label_column).frame
    except IngestError as exc:
        raise LabelError(f"label table: {exc}") from None
    wanted = [*key_columns, label_column, labelled_at_column]
    missing = [name for name in dict.fromkeys(wanted) if name not in frame.columns]
    if missing:
        raise LabelError(
            f"{display}: label table lacks column(s) {missing} (it has {list(frame.columns)[:20]}); "
            "set the key, label and labelled-at columns"
        )
    for name in key_columns:
        nulls = np.flatnonzero(frame[name].isna().to_numpy())
        if nulls.size:
            raise LabelError(f"{display}: row {nulls[0] + 1}, column {name!r}: the key is missing")
    labels = _label_values(frame[label_column], display, label_column)
    stamps = _times(frame[labelled_at_column], display, labelled_at_column)
    keys = key_text([frame[name] for name in key_columns], key_columns, display)
    return LabelTable(keys=keys, labels=labels, labelled_at=stamps, sources=[display])


def _label_values(series: Any, display: str, column: str) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype):
        values = series.to_numpy(dtype=np.int64)
        bad = np.flatnonzero((values != 0) & (values != 1))
        if not bad.size:
            return values.astype(np.int8)
    out = np.empty(len(series), dtype=np.int8)
    cache: dict = {}
    for row, value in enumerate(series.tolist()):
        if _missing(value):
            raise LabelError(f"{display}: row {row + 1}, column {column!r}: the label is missing; {ACCEPTED}")
        mapped = cache.get(value) if isinstance(value, (str, int, float, bool)) else None
        if mapped is None:
            mapped = label_value(value)
            if mapped is None:
                raise LabelError(f"{display}: row {row + 1}, column {column!r}: bad label {value!r}; {ACCEPTED}")
            if isinstance(value, (str, int, float, bool)):
                cache[value] = mapped
        out[row] = mapped
    return out


def _times(series: Any, display: str, column: str) -> np.ndarray:
    import pandas as pd

    missing = np.flatnonzero(series.isna().to_numpy())
    if missing.size:
        raise LabelError(
            f"{display}: row {missing[0] + 1}, column {column!r}: the time the label became known is missing"
        )
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = pd.to_datetime(series, utc=True)
    else:
        if pd.api.types.is_numeric_dtype(series.dtype):
            raise LabelError(
                f"{display}: row 1, column {column!r}: {series.iloc[0]!r} is a number; give an ISO-8601 time "
                "(e.g. 2026-12-01T09:00:00Z)"
            )
        parsed = pd.to_datetime(series.astype(str), utc=True, errors="coerce", format="ISO8601")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if bad.size:
            raise LabelError(
                f"{display}: row {bad[0] + 1}, column {column!r}: {series.iloc[bad[0]]!r} is not an ISO-8601 time "
                "(e.g. 2026-12-01T09:00:00Z)"
            )
    return parsed.dt.as_unit("ns").astype("int64").to_numpy()


# --------------------------------------------------------------------------- the join
def latest_labels(table: LabelTable, as_of_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, LabelCounts]:
    """The winning label per key among the rows known by ``as_of_ns``.

    Returns:
        ``(keys, labels, labelled_at, counts)``: one entry per distinct key (counts without the join's figures).
    """
    counts = LabelCounts(rows=table.rows)
    kept = table.labelled_at <= as_of_ns
    counts.after_as_of = int(table.rows - kept.sum())
    keys, labels, stamps = table.keys[kept], table.labels[kept], table.labelled_at[kept]
    if stamps.size:
        running = np.maximum.accumulate(stamps)
        counts.out_of_order = int(np.sum(stamps[1:] < running[:-1]))
    key_codes, key_index = _codes(keys)
    # latest labelled_at per key; on equal times the row read last (stable sort by time within key)
    order = np.lexsort((np.arange(stamps.size), stamps, key_codes))
    sorted_codes = key_codes[order]
    last = np.ones(order.size, dtype=bool)
    last[:-1] = sorted_codes[1:] != sorted_codes[:-1]
    winners = order[last]
    counts.keys = int(winners.size)
    counts.superseded = int(stamps.size - winners.size)
    winner_label = np.empty(key_index.size, dtype=np.int8)
    winner_label[key_codes[winners]] = labels[winners]
    counts.duplicates = int(np.sum(~last & (labels[order] == winner_label[sorted_codes])))
    has_one = np.zeros(key_index.size, dtype=bool)
    has_zero = np.zeros(key_index.size, dtype=bool)
    has_one[key_codes[labels == 1]] = True
    has_zero[key_codes[labels == 0]] = True
    counts.conflicting_keys = int(np.sum(has_one & has_zero))
    return keys[winners], labels[winners], stamps[winners], counts


def _codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    codes, uniques = pd.factorize(keys)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def join_labels(
    row_keys: np.ndarray,
    row_times_ns: np.ndarray,
    table: LabelTable,
    as_of_ns: int,
) -> JoinedLabels:
    """Gives each scored row the winning label of its key, as known at ``as_of_ns``.

    Args:
        row_keys: Key text per scored row (:func:`key_text`); ``None`` where the row has no key.
        row_times_ns: Scoring time per row (UTC ns).
        table: The label rows (:func:`read_labels`).
        as_of_ns: Labels known later are left out.

    Returns:
        Per row its label (-1: none) and when it became known, with the counts.
    """
    import pandas as pd

    keys, labels, stamps, counts = latest_labels(table, as_of_ns)
    label = np.full(row_keys.size, -1, dtype=np.int8)
    known_at = np.zeros(row_keys.size, dtype=np.int64)
    if keys.size:
        position = pd.Index(keys).get_indexer(row_keys)
        matched_rows = position >= 0
        label[matched_rows] = labels[position[matched_rows]]
        known_at[matched_rows] = stamps[position[matched_rows]]
        used = np.zeros(keys.size, dtype=bool)
        used[position[matched_rows]] = True
        counts.matched = int(used.sum())
        counts.unknown_keys = int(keys.size - counts.matched)
        counts.labelled_before_scored = int(np.sum(known_at[matched_rows] < row_times_ns[matched_rows]))
    return JoinedLabels(label=label, labelled_at=known_at, counts=counts)


def optional_columns(value: Optional[Sequence[str]], default: Sequence[str]) -> List[str]:
    """Column names from a list or a comma-separated string; ``default`` when empty."""
    if value is None:
        return list(default)
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [name.strip() for name in names if name and name.strip()]
    return names or list(default)
