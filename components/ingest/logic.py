"""Ingest logic (kfp-free): read a source, normalize the label, split train/eval/test by hash, write Parquet.

Split: every row gets a key -- the value of ``split_key_column`` or, without one, the row's 0-based
position in the source -- and ONE uniform 64-bit value ``h = blake2b(key, salt=seed)`` (first 8 bytes,
big-endian). With ``E = int(eval_fraction * 2**64)`` and ``T = int(test_fraction * 2**64)`` the row goes to

* eval when ``h < E``,
* test when ``E <= h < E + T``,
* train otherwise (the remaining ``1 - eval_fraction - test_fraction``).

The key is hashed as text (integers and integral floats alike, so ``7``, ``7.0`` and ``"7"`` agree), so the
split is the same across runs, machines and pandas versions, rows that share a key (e.g. a customer id)
always land in the same split, and for the same ``eval_fraction`` the eval split does not depend on
``test_fraction``.

Outputs: one Parquet file per split, written deterministically (snappy, fixed row-group size, Parquet
format 2.6, no index column and no pandas schema metadata), so the same input gives byte-identical files
and the same ``sha256``. The three files are published together
(:func:`kfpkit.core.publish.publish_together`) only after every split is ready; on any error
nothing is left behind.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from kfpkit.components.ingest.errors import IngestError
from kfpkit.components.ingest.sources import load_source
from kfpkit.core.labels import binary_labels
from kfpkit.core.publish import publish_together

__all__ = ["SPLITS", "IngestError", "IngestResult", "run_ingest", "split_masks"]

SPLITS = ("train", "eval", "test")
DEFAULT_EVAL_FRACTION = 0.15
DEFAULT_TEST_FRACTION = 0.15
PARQUET_COMPRESSION = "snappy"
PARQUET_ROW_GROUP_ROWS = 131_072
PARQUET_FORMAT_VERSION = "2.6"
ROW_NUMBER_KEY = "row_number"
# the splits that train fits on (train) and chooses early stopping, calibration and threshold on (eval)
_BOTH_CLASSES_REQUIRED = ("train", "eval")
_FRACTION_OF = {"eval": "eval_fraction", "test": "test_fraction"}


@dataclass(frozen=True)
class IngestResult:
    """What :func:`run_ingest` wrote.

    Attributes:
        train_metadata: Metadata of the train Parquet file (keys ``rows``, ``columns``, ``sha256``,
            ``source_uri``, ``label_column``, ``label_rate``, ``split``, ``format``, ``split_key``,
            ``eval_fraction``, ``test_fraction``, ``split_seed``).
        eval_metadata: The same for the eval file.
        test_metadata: The same for the test file.
    """

    train_metadata: Dict[str, Any]
    eval_metadata: Dict[str, Any]
    test_metadata: Dict[str, Any]


def run_ingest(
    source: str,
    label_column: str,
    train_path: str,
    eval_path: str,
    test_path: str,
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    split_key_column: Optional[str] = None,
    file_format: Optional[str] = None,
    seed: int = 0,
) -> IngestResult:
    """Reads ``source``, normalizes the label to int64 0/1, splits by hash and writes three Parquet files.

    Args:
        source: ``synthetic://fraud?rows=N&seed=S&fraud_rate=R&drift=D``, a local path, or a ``file://``,
            ``gs://``, ``s3://`` or ``http(s)://`` URI of a CSV, Parquet or JSON Lines file.
        label_column: The binary label column (0/1 ints, bools, or the strings "0"/"1"/"true"/"false").
            Synthetic sources have the label ``is_fraud``.
        train_path: Where to write the train Parquet file.
        eval_path: Where to write the eval Parquet file.
        test_path: Where to write the test Parquet file.
        eval_fraction: Expected share of rows in the eval split, in (0, 1).
        test_fraction: Expected share of rows in the test split, in (0, 1); ``eval_fraction + test_fraction``
            must be below 1 (train gets the rest).
        split_key_column: Column whose values are hashed to assign splits; default: the row number.
        file_format: ``csv``, ``parquet`` or ``jsonl``, overriding the format inferred from the extension.
        seed: Salt of the split hash (a different seed gives a different, equally stable split).

    Returns:
        The metadata of the three files.

    Raises:
        IngestError: bad source, label, split key or parameters, an empty split, or a train or eval split
            without both classes (nothing is written).
    """
    from kfpkit.components.process_exit import skip_final_garbage_collection

    skip_final_garbage_collection()  # this task's process exits without collecting pandas' and pyarrow's objects
    paths = {"train": train_path, "eval": eval_path, "test": test_path}
    _check_arguments(paths, eval_fraction, test_fraction, seed)
    loaded = load_source(source, label_column, file_format)
    frame = loaded.frame
    label = loaded.label_column
    if not label:
        raise IngestError(f"label_column is required for source {loaded.display_uri!r}")
    if label not in frame.columns:
        shown = list(frame.columns)[:20]
        raise IngestError(f"label column {label!r} not found in {loaded.display_uri!r}; its columns are {shown}")
    frame[label] = binary_labels(frame[label], label, f"source {loaded.display_uri!r}", error=IngestError)

    masks = split_masks(frame, split_key_column, eval_fraction, test_fraction, seed, loaded.display_uri)
    labels = frame[label].to_numpy()
    _check_splits(masks, labels, label, len(frame), loaded.display_uri, split_key_column, eval_fraction, test_fraction)
    # one Arrow conversion for every split: identical schemas even when a split sees only part of a column
    table = _arrow_table(frame, loaded.display_uri)
    tables = {name: table.filter(mask) for name, mask in masks.items()}
    data = {name: _parquet_bytes(split_table) for name, split_table in tables.items()}
    publish_together([(paths[name], data[name]) for name in SPLITS])

    metadata = {
        name: {
            "rows": tables[name].num_rows,
            "columns": _pandas_dtypes(tables[name]),
            "sha256": hashlib.sha256(memoryview(data[name])).hexdigest(),
            "source_uri": loaded.display_uri,
            "label_column": label,
            "label_rate": float(labels[mask].mean()),
            "split": name,
            "format": loaded.file_format,
            "split_key": split_key_column or ROW_NUMBER_KEY,
            "eval_fraction": float(eval_fraction),
            "test_fraction": float(test_fraction),
            "split_seed": int(seed),
        }
        for name, mask in masks.items()
    }
    return IngestResult(
        train_metadata=metadata["train"], eval_metadata=metadata["eval"], test_metadata=metadata["test"]
    )


def _check_fraction(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 < value < 1.0
    ):
        raise IngestError(f"{name} must be a number strictly between 0 and 1, got {value!r}")


def _check_arguments(paths: Mapping[str, str], eval_fraction: float, test_fraction: float, seed: int) -> None:
    missing = [f"{name}_path" for name, path in paths.items() if not path]
    if missing:
        raise IngestError(f"train_path, eval_path and test_path are all required; missing: {', '.join(missing)}")
    seen: Dict[str, str] = {}
    for name, path in paths.items():
        other = seen.setdefault(os.path.abspath(path), name)
        if other != name:
            raise IngestError(f"{other}_path and {name}_path are the same file: {path!r}")
    _check_fraction("eval_fraction", eval_fraction)
    _check_fraction("test_fraction", test_fraction)
    if eval_fraction + test_fraction >= 1.0:
        raise IngestError(
            f"eval_fraction + test_fraction must be below 1 (train gets the rest), got "
            f"{eval_fraction!r} + {test_fraction!r} = {eval_fraction + test_fraction!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise IngestError(f"seed must be an integer, got {seed!r}")


def _check_splits(
    masks: Mapping[str, np.ndarray],
    labels: np.ndarray,
    label: str,
    rows: int,
    display_uri: str,
    split_key_column: Optional[str],
    eval_fraction: float,
    test_fraction: float,
) -> None:
    """Every split non-empty; train and eval hold both classes (train fits on one, calibrates on the other)."""
    how = (
        f"(eval_fraction={eval_fraction}, test_fraction={test_fraction}, "
        f"split key {split_key_column or ROW_NUMBER_KEY!r})"
    )
    for name in SPLITS:
        count = int(masks[name].sum())
        if count == 0:
            fix = f"raise {_FRACTION_OF[name]}" if name in _FRACTION_OF else "lower eval_fraction or test_fraction"
            raise IngestError(
                f"{name} split is empty: none of the {rows} rows of {display_uri!r} hashed into {name} {how}; "
                f"ingest more rows (or more distinct keys) or {fix}"
            )
    for name in _BOTH_CLASSES_REQUIRED:
        split_labels = labels[masks[name]]
        positives = int(split_labels.sum())
        if positives in (0, len(split_labels)):
            present = "1" if positives else "0"
            fix = f"raise {_FRACTION_OF[name]}" if name in _FRACTION_OF else "lower eval_fraction or test_fraction"
            raise IngestError(
                f"{name} split holds only label {present} in column {label!r}: all {len(split_labels)} of its rows "
                f"from {display_uri!r} {how}; train needs both classes in train and eval: ingest more rows "
                f"(or more of the rarer class) or {fix}"
            )


# ---------------------------------------------------------------------------------------------- label
# ---------------------------------------------------------------------------------------------- split
def canonical_key(value: Any) -> Optional[str]:  # noqa: PLR0911 (one return per value kind)
    """The text a split-key value is hashed as; ``None`` for a missing value.

    Integers and integral floats agree (``7``, ``7.0`` and ``"7"`` hash alike), so a key survives a CSV
    round trip or a float cast; bools are ``"true"``/``"false"``.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def split_hashes(
    frame: pd.DataFrame,
    split_key_column: Optional[str],
    seed: int,
    display_uri: str = "<frame>",
) -> np.ndarray:
    """The uniform 64-bit split hash of every row (uint64; see the module docstring).

    Raises:
        IngestError: the key column is missing or has missing values.
    """
    if split_key_column is None or split_key_column == "":
        keys: Sequence[str] = [str(i) for i in range(len(frame))]
    else:
        if split_key_column not in frame.columns:
            shown = list(frame.columns)[:20]
            raise IngestError(
                f"split key column {split_key_column!r} not found in {display_uri!r}; its columns are {shown}"
            )
        series = frame[split_key_column]
        missing = int(series.isna().sum())
        if missing:
            raise IngestError(
                f"split key column {split_key_column!r} in {display_uri!r} has {missing} missing value(s); "
                "every row needs a key"
            )
        if pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            keys = [str(v) for v in series.tolist()]
        else:
            keys = [canonical_key(v) for v in series.tolist()]  # type: ignore[misc]
    return _key_hashes(keys, seed)


def split_masks(
    frame: pd.DataFrame,
    split_key_column: Optional[str],
    eval_fraction: float,
    test_fraction: float,
    seed: int,
    display_uri: str = "<frame>",
) -> Dict[str, np.ndarray]:
    """``{"train": mask, "eval": mask, "test": mask}``: disjoint boolean masks covering every row.

    eval: ``h < int(eval_fraction * 2**64)``; test: the next ``int(test_fraction * 2**64)`` hash values;
    train: the rest (see the module docstring). The fractions are not checked here (:func:`run_ingest`
    does).

    Raises:
        IngestError: the key column is missing or has missing values.
    """
    hashes = split_hashes(frame, split_key_column, seed, display_uri)
    eval_end = int(eval_fraction * 2.0**64)
    test_end = min(eval_end + int(test_fraction * 2.0**64), 2**64 - 1)
    eval_mask = hashes < np.uint64(min(eval_end, 2**64 - 1))
    below_test_end = hashes < np.uint64(test_end)
    test_mask = below_test_end & ~eval_mask
    return {"train": ~below_test_end, "eval": eval_mask, "test": test_mask}


def _key_hashes(keys: Sequence[str], seed: int) -> np.ndarray:
    salt = hashlib.sha256(f"kfpkit-ingest-split/{seed}".encode()).digest()
    base = hashlib.blake2b(digest_size=8, key=salt)
    digests: List[bytes] = []
    append = digests.append
    for key in keys:
        hasher = base.copy()
        hasher.update(key.encode("utf-8"))
        append(hasher.digest())
    return np.frombuffer(b"".join(digests), dtype=">u8").astype(np.uint64)


# ---------------------------------------------------------------------------------------------- output
def _arrow_table(frame: pd.DataFrame, display_uri: str) -> Any:
    """The frame as an Arrow table without index or pandas schema metadata."""
    import pyarrow as pa

    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        raise IngestError(_conversion_error(frame, display_uri, error)) from None
    return table.replace_schema_metadata(None)


def _parquet_bytes(table: Any) -> Any:
    """Deterministic Parquet bytes of ``table`` (a pyarrow Buffer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression=PARQUET_COMPRESSION,
        row_group_size=PARQUET_ROW_GROUP_ROWS,
        version=PARQUET_FORMAT_VERSION,
        use_dictionary=True,
        write_statistics=True,
    )
    return sink.getvalue()


def _conversion_error(frame: pd.DataFrame, display_uri: str, error: Exception) -> str:
    import pyarrow as pa

    for name in frame.columns:
        try:
            pa.array(frame[name], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as column_error:
            return (
                f"column {name!r} in {display_uri!r} cannot be stored in Parquet (mixed value types?): {column_error}"
            )
    return f"the rows of {display_uri!r} cannot be stored in Parquet: {error}"


def _pandas_dtypes(table: Any) -> Dict[str, str]:
    """``{column: dtype}`` as ``pandas.read_parquet`` returns the table (integers with nulls become float64)."""
    import pyarrow as pa

    dtypes = {str(name): str(dtype) for name, dtype in table.slice(0, 0).to_pandas().dtypes.items()}
    for field, column in zip(table.schema, table.columns, strict=True):
        if column.null_count:
            if pa.types.is_integer(field.type):
                dtypes[field.name] = "float64"
            elif pa.types.is_boolean(field.type):
                dtypes[field.name] = "object"
    return dtypes
