"""Delayed labels in (kfp-free): label tables read, the latest label per key kept, joined to the scored rows.

A **label table** is a CSV, Parquet or JSON Lines file (local, ``file://``, ``gs://``, ``s3://``,
``http(s)://``; read by :func:`kfpkit.components.performance.tables.read_table`) with

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
read as int32 from the payload log matches ``instance`` read as int64 (or ``1.0``) from a CSV. The text is
only formed where it is needed: each key column is normalized once per table, in bulk (an integral numeric
column to int64, anything else to text), a column that is int64 on both sides is compared as integers (the
same as comparing the digits), and the join itself runs on integer codes (one Arrow hash encoding of each key
column over both sides, then numpy): no per-row Python, no composite key strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

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
        keys: Key per row, normalized (:func:`key_columns`).
        labels: 0/1 per row, int8 ``[n]``.
        labelled_at: When each label became known, UTC nanoseconds since the epoch, int64 ``[n]``.
        sources: The tables read (credentials removed).
    """

    keys: KeyColumns
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
        counts: The join's counts.
    """

    label: np.ndarray
    labelled_at: np.ndarray
    counts: LabelCounts


# --------------------------------------------------------------------------- keys
def as_numpy(array: Any) -> np.ndarray:
    """A numeric Arrow array (or chunked array) as numpy; nulls become NaN.

    Without nulls the buffer is read as it is (read-only): Arrow's own ``to_numpy`` imports pandas (a
    second), so it is left to arrays that hold nulls.
    """
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count == 0 and (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
        return buffer_values(array, np.dtype(_FLOATS.get(str(array.type), str(array.type))))
    return array.to_numpy(zero_copy_only=False)


def buffer_values(array: Any, dtype: np.dtype) -> np.ndarray:
    """The values of a fixed-width Arrow array (not chunked) read from its data buffer as ``dtype`` (read-only).

    Null slots hold whatever the buffer holds: the caller masks them.
    """
    return np.frombuffer(array.buffers()[1], dtype=dtype)[array.offset : array.offset + len(array)]


_FLOATS = {"halffloat": "float16", "float": "float32", "double": "float64"}  # Arrow's names -> numpy's


def arrow_int64(values: np.ndarray, null: Optional[np.ndarray] = None) -> Any:
    """A numpy integer array as an Arrow int64 array over the same memory (``null``: where it is null).

    ``pyarrow.array`` of a numpy array imports pandas (~0.3 s of CPU); this builds the array from buffers.
    """
    import pyarrow as pa

    data = np.ascontiguousarray(values, dtype=np.int64)
    validity = None
    if null is not None and null.any():
        validity = pa.py_buffer(np.packbits(~np.asarray(null, dtype=bool), bitorder="little"))
    return pa.Array.from_buffers(pa.int64(), data.size, [validity, pa.py_buffer(data)])


@dataclass
class KeyColumns:
    """The key of each row, one normalized column per key column.

    Attributes:
        columns: Per key column a ``pyarrow`` array, int64 (an integral numeric column) or string (anything
            else, as text); null where the key is missing. Equal lengths.
    """

    columns: List[Any]

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def take(self, indices: Any) -> KeyColumns:
        """The rows at ``indices`` (a ``pyarrow`` integer array)."""
        return KeyColumns([column.take(indices) for column in self.columns])

    def filter(self, mask: np.ndarray) -> KeyColumns:
        """The rows where ``mask`` holds."""
        return self.take(arrow_int64(np.flatnonzero(mask)))

    @staticmethod
    def concat(parts: Sequence[KeyColumns]) -> KeyColumns:
        """The rows of ``parts`` one after the other (a column that is text in any part becomes text)."""
        import pyarrow as pa

        if not parts:
            return KeyColumns([])
        if len(parts) == 1:  # one table (the usual case): no copy
            return parts[0]
        columns = []
        for arrays in zip(*(part.columns for part in parts), strict=True):
            mixed = len({array.type for array in arrays}) > 1
            columns.append(pa.concat_arrays([_as_string(a) if mixed else a for a in arrays]))
        return KeyColumns(columns)


def _as_string(array: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    return array if pa.types.is_string(array.type) else pc.cast(array, pa.string())


def key_columns(columns: Sequence[Any], names: Sequence[str], where: str) -> KeyColumns:
    """Normalizes key columns for the join: integers and integral floats to int64, anything else to text.

    Args:
        columns: The key columns (``pyarrow`` arrays or chunked arrays), equal lengths.
        names: Their names (for errors).
        where: What errors call the data.

    Raises:
        PerformanceError: a key column holds values that have no text form (lists, structs).
    """
    import pyarrow as pa

    out = []
    for column, name in zip(columns, names, strict=True):
        import pyarrow.compute as pc  # (only with a key: its import costs ~40 ms)

        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if pa.types.is_nested(array.type):
            raise PerformanceError(f"{where}: key column {name!r} holds {array.type} values")
        if pa.types.is_floating(array.type):
            values = as_numpy(array)
            finite = values[np.isfinite(values)]
            if finite.size == 0 or np.all(finite == np.round(finite)):
                array = pc.cast(array, pa.int64(), safe=False)
        if pa.types.is_integer(array.type):
            out.append(pc.cast(array, pa.int64()))
        else:
            out.append(_as_string(array))
    return KeyColumns(out)


def key_text(columns: Sequence[Any], names: Sequence[str], where: str) -> Any:
    """The key of each row as text: one column, or several joined by :data:`KEY_SEPARATOR`.

    Raises:
        PerformanceError: a key column holds values that have no text form (lists, structs).
    """
    import pyarrow.compute as pc

    texts = [_as_string(column) for column in key_columns(columns, names, where).columns]
    return texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, KEY_SEPARATOR)


def key_codes(row_keys: KeyColumns, label_keys: KeyColumns) -> Tuple[np.ndarray, np.ndarray, int]:
    """One integer code per distinct key over both sides: equal keys, equal codes.

    Each key column is hash-encoded once over the scored rows and the label rows together (as int64 where
    both sides are int64, else as text), and the codes of several columns are combined into one.

    Returns:
        ``(row_codes, label_codes, distinct)``: int64 codes in ``[0, distinct)``, -1 where a key is null.
    """
    import pyarrow as pa

    rows = len(row_keys)
    combined: Optional[np.ndarray] = None
    span = 0
    for row_column, label_column in zip(row_keys.columns, label_keys.columns, strict=True):
        pair = [row_column, label_column]
        if row_column.type != label_column.type:
            pair = [_as_string(row_column), _as_string(label_column)]
        codes, distinct = _dense_codes(pa.chunked_array(pair, type=pair[0].type))
        if combined is None:
            combined, span = codes, distinct
            continue
        if combined.min(initial=0) >= 0 and codes.min(initial=0) >= 0:  # no null key (the usual case): in place
            combined *= distinct
            combined += codes
        else:
            combined = np.where((combined >= 0) & (codes >= 0), combined * distinct + codes, -1)
        span *= distinct
        if span > 4 * max(combined.size, 1):  # sparse codes: back to [0, distinct), also against overflow
            combined, span = _dense_codes(arrow_int64(combined, null=combined < 0))
    if combined is None:
        raise PerformanceError("no key column given")
    return combined[:rows], combined[rows:], span


def _dense_codes(values: Any) -> Tuple[np.ndarray, int]:
    """Codes of ``values`` (int64, -1 where null) in ``[0, span)``, equal values equal codes; and ``span``.

    Integers of a narrow range (such as ``instance``) are their offset from the smallest; anything else is
    hash-encoded by Arrow (``span`` is then the number of distinct values).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(values.type) and values.null_count == 0 and len(values):
        numbers = np.concatenate([as_numpy(chunk) for chunk in getattr(values, "chunks", [values])])
        low, high = int(numbers.min()), int(numbers.max())
        if high - low < 4 * numbers.size:
            return numbers.astype(np.int64) - low, high - low + 1
    encoded = pc.dictionary_encode(values)
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks:
        return np.empty(0, dtype=np.int64), 0
    codes = np.concatenate([_indices(chunk.indices) for chunk in chunks])
    return codes, len(chunks[0].dictionary)  # the chunks share one dictionary


def _indices(indices: Any) -> np.ndarray:
    """Dictionary indices as int64, -1 where null (in numpy: Arrow's fill_null(-1) imports pandas)."""
    codes = buffer_values(indices, np.dtype(str(indices.type))).astype(np.int64)
    if indices.null_count:
        bits = np.unpackbits(np.frombuffer(indices.buffers()[0], dtype=np.uint8), bitorder="little")
        codes[~bits[indices.offset : indices.offset + len(indices)].astype(bool)] = -1
    return codes


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
        keys=KeyColumns.concat(keys),
        labels=np.concatenate(labels) if labels else np.empty(0, dtype=np.int8),
        labelled_at=np.concatenate(stamps) if stamps else np.empty(0, dtype=np.int64),
        sources=sources,
    )


def _read_one(uri: str, label_column: str, key_names: Sequence[str], labelled_at_column: str) -> LabelTable:
    import pyarrow as pa
    import pyarrow.compute as pc

    from kfpkit.components.performance.tables import read_table

    try:
        table, display = read_table(uri, [*key_names, label_column, labelled_at_column], "label table")
    except PerformanceError as exc:
        raise LabelError(str(exc)) from None
    for name in key_names:
        column = table.column(name)
        missing = np.zeros(len(column), dtype=bool)
        if column.null_count:  # (Arrow's to_numpy imports pandas: only where there is a null)
            missing = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            # CSV reads an empty field of a text column as "": lengths compared in numpy (a Python "" operand
            # of an Arrow kernel imports pandas, ~0.3 s of CPU); a null's length is NaN, already missing
            missing |= as_numpy(pc.binary_length(column)) == 0
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise LabelError(f"{display}: row {row + 1}, column {name!r}: the key is missing")
    labels = _label_values(table.column(label_column), display, label_column)
    stamps = _times(table.column(labelled_at_column), display, labelled_at_column)
    keys = key_columns([table.column(name) for name in key_names], key_names, display)
    return LabelTable(keys=keys, labels=labels, labelled_at=stamps, sources=[display])


def _label_values(column: Any, display: str, name: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):  # ChunkedArray.to_numpy goes through pandas
        column = column.combine_chunks()
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise LabelError(f"{display}: row {row + 1}, column {name!r}: the label is missing; {ACCEPTED}")
    if pa.types.is_integer(column.type) or pa.types.is_boolean(column.type) or pa.types.is_floating(column.type):
        values = as_numpy(pc.cast(column, pa.int8()) if pa.types.is_boolean(column.type) else column)
        bad = np.flatnonzero((values != 0) & (values != 1))
        if bad.size:
            value = column[int(bad[0])].as_py()
            raise LabelError(f"{display}: row {bad[0] + 1}, column {name!r}: bad label {value!r}; {ACCEPTED}")
        return values.astype(np.int8)
    out = np.empty(len(column), dtype=np.int8)
    cache: dict = {}
    for row, value in enumerate(column.to_pylist()):
        mapped = cache.get(value)
        if mapped is None:
            mapped = label_value(value)
            if mapped is None:
                raise LabelError(f"{display}: row {row + 1}, column {name!r}: bad label {value!r}; {ACCEPTED}")
            cache[value] = mapped
        out[row] = mapped
    return out


def _times(column: Any, display: str, name: str) -> np.ndarray:
    """UTC nanoseconds of a time column (Arrow timestamps, or ISO-8601 text; naive times are UTC)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise LabelError(f"{display}: row {row + 1}, column {name!r}: the time the label became known is missing")
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = parse_times(column, display, name)
    elif pa.types.is_date(column.type):
        column = pc.cast(column, pa.timestamp("s"))
    if not pa.types.is_timestamp(column.type):
        raise LabelError(
            f"{display}: row 1, column {name!r}: {column[0].as_py()!r} is not a time; give an ISO-8601 time "
            "(e.g. 2026-12-01T09:00:00Z)"
        )
    # tz-aware Arrow times are stored in UTC; naive ones are read as UTC
    return as_numpy(pc.cast(pc.cast(column, pa.timestamp("ns", tz=column.type.tz)), pa.int64()))


def parse_times(column: Any, display: str, name: str, error: Any = None) -> Any:
    """ISO-8601 text as Arrow UTC timestamps (no offset: UTC); names the first row that is not such a time.

    Raises:
        LabelError (or ``error``): a value is not an ISO-8601 time.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for target in (
        pa.timestamp("ns", tz="UTC"),
        pa.timestamp("ns"),
    ):  # Arrow's parser first: with, then without offsets
        try:
            return pc.cast(column, target)
        except pa.ArrowInvalid:
            pass
    import pandas as pd  # only for what Arrow cannot parse (its import costs ~0.3 s of CPU)

    values = pd.Series(column.to_numpy(zero_copy_only=False))
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        raise (error or LabelError)(
            f"{display}: row {bad[0] + 1}, column {name!r}: {values.iloc[bad[0]]!r} is not an ISO-8601 time "
            "(e.g. 2026-12-01T09:00:00Z)"
        )
    return pa.array(parsed.dt.as_unit("ns"), pa.timestamp("ns", tz="UTC"))


# --------------------------------------------------------------------------- the join
def latest_labels(codes: np.ndarray, distinct: int, table: LabelTable, as_of_ns: int) -> Tuple[np.ndarray, LabelCounts]:
    """The winning label row per key among the rows known by ``as_of_ns``.

    Args:
        codes: The key code of each label row (:func:`key_codes`).
        distinct: Codes lie in ``[0, distinct)``.
        table: The label rows.
        as_of_ns: Labels known later are left out.

    Returns:
        ``(winner, counts)``: per code the index of its winning label row (-1: no label), and the counts
        without the join's figures.
    """
    counts = LabelCounts(rows=table.rows)
    kept = table.labelled_at <= as_of_ns
    counts.after_as_of = int(table.rows - kept.sum())
    index = np.flatnonzero(kept)
    labels, stamps = table.labels, table.labelled_at
    if counts.after_as_of:  # (none after as_of: the rows as they are, no copies)
        codes, labels, stamps = codes[index], labels[index], stamps[index]
    if stamps.size:
        running = np.maximum.accumulate(stamps)
        counts.out_of_order = int(np.sum(stamps[1:] < running[:-1]))
    # latest labelled_at per key; on equal times the row read last: the highest rank in a stable time order
    if counts.out_of_order:
        by_time = np.argsort(stamps, kind="stable")
        rank = np.empty(stamps.size, dtype=np.int64)
        rank[by_time] = np.arange(stamps.size)
    else:  # read in time order (an appended feed): the rank is the position
        by_time = rank = np.arange(stamps.size)
    best = np.full(distinct, -1, dtype=np.int64)
    np.maximum.at(best, codes, rank)
    has = best >= 0
    winner = np.full(distinct, -1, dtype=np.int64)
    winner[has] = by_time[best[has]]  # position among the kept rows
    counts.keys = int(has.sum())
    counts.superseded = int(stamps.size - counts.keys)
    winner_label = np.full(distinct, -1, dtype=np.int8)
    winner_label[has] = labels[winner[has]]
    is_winner = np.zeros(stamps.size, dtype=bool)
    is_winner[winner[has]] = True
    counts.duplicates = int(np.sum(~is_winner & (labels == winner_label[codes])))
    ones = np.bincount(codes, weights=labels, minlength=distinct)
    rows = np.bincount(codes, minlength=distinct)
    counts.conflicting_keys = int(np.sum((ones > 0) & (ones < rows)))
    winner[has] = index[winner[has]]  # position in the table
    return winner, counts


def join_labels(row_keys: KeyColumns, row_times_ns: np.ndarray, table: LabelTable, as_of_ns: int) -> JoinedLabels:
    """Gives each scored row the winning label of its key, as known at ``as_of_ns``.

    Args:
        row_keys: Key per scored row (:func:`key_columns`); null where the row has no key.
        row_times_ns: Scoring time per row (UTC ns).
        table: The label rows (:func:`read_labels`).
        as_of_ns: Labels known later are left out.

    Returns:
        Per row its label (-1: none) and when it became known, with the counts.
    """
    rows = int(row_times_ns.size)
    label = np.full(rows, -1, dtype=np.int8)
    known_at = np.zeros(rows, dtype=np.int64)
    if table.rows == 0:
        return JoinedLabels(label=label, labelled_at=known_at, counts=LabelCounts())
    row_codes, label_codes, distinct = key_codes(row_keys, table.keys)
    winner, counts = latest_labels(label_codes, distinct, table, as_of_ns)
    if counts.keys:
        keyed = row_codes if row_codes.min(initial=0) >= 0 else row_codes[row_codes >= 0]
        position = winner[row_codes] if keyed is row_codes else np.where(row_codes >= 0, winner[row_codes], -1)
        matched_rows = np.flatnonzero(position >= 0)
        position = position[matched_rows]
        label[matched_rows] = table.labels[position]
        known_at[matched_rows] = table.labelled_at[position]
        scored = np.zeros(distinct, dtype=bool)
        scored[keyed] = True
        counts.matched = int(np.sum(scored & (winner >= 0)))
        counts.unknown_keys = int(counts.keys - counts.matched)
        counts.labelled_before_scored = int(np.sum(known_at[matched_rows] < row_times_ns[matched_rows]))
    return JoinedLabels(label=label, labelled_at=known_at, counts=counts)


def optional_columns(value: Optional[Sequence[str]], default: Sequence[str]) -> List[str]:
    """Column names from a list or a comma-separated string; ``default`` when empty."""
    if value is None:
        return list(default)
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [name.strip() for name in names if name and name.strip()]
    return names or list(default)
