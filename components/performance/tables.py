"""One CSV, Parquet or JSON Lines table read into Arrow (kfp-free): the label tables and table windows.

Local paths, ``file://``, ``gs://``, ``s3://`` and ``http(s)://`` through fsspec, the format from the file
name as the monitor tells it (:func:`kfpkit.components.monitor.logic.table_format`; ``.gz``/``.bz2``/``.xz``/
``.zst`` on CSV and JSON Lines decompressed). Arrow's own readers parse the columns in bulk; a JSON Lines
column whose values change type (``1`` on one line, ``"yes"`` on the next) is read again through ingest's
reader (:func:`kfpkit.components.ingest.sources.load_source`), so that the caller can name the bad row.
Errors name the file with credentials removed.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Tuple

from kfpkit.components.performance.errors import PerformanceError

_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


def read_table(uri: str, columns: Sequence[str], what: str) -> Tuple[Any, str]:
    """The ``columns`` of the table at ``uri`` as a ``pyarrow.Table``, and the URI without credentials.

    Args:
        uri: The table (local, ``file://``, ``gs://``, ``s3://``, ``http(s)://``).
        columns: The columns wanted (every one must be there).
        what: What errors call the table (``label table``, ``live source``).

    Raises:
        PerformanceError: unknown format, missing file or column, unreadable data.
    """
    import pyarrow as pa

    display = _display(uri)
    fmt = table_format(uri)
    if fmt is None:
        raise PerformanceError(f"{what} {display!r}: give a .csv, .parquet or .jsonl file")
    try:
        fs, path = _filesystem(uri)
        if not fs.exists(path):
            raise PerformanceError(f"{what} {display!r}: not found")
        table = _read(fs, path, fmt, columns)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        if fmt != "jsonl":
            raise PerformanceError(f"{display}: cannot read the {fmt} {what} ({exc})") from None
        table = _read_mixed_json(uri, display, what)
    except ImportError as exc:
        raise PerformanceError(f"{what} {display!r} needs an optional package ({exc})") from None
    except (OSError, ValueError, pa.ArrowException) as exc:
        if isinstance(exc, PerformanceError):
            raise
        raise PerformanceError(f"{display}: cannot read the {fmt} {what} ({exc})") from None
    missing = [c for c in dict.fromkeys(columns) if c not in table.column_names]
    if missing:
        raise PerformanceError(f"{display}: {what} lacks column(s) {missing} (it has {table.column_names[:20]})")
    return table.select(list(dict.fromkeys(columns))), display


def table_format(uri: str) -> Any:
    """The monitor's :func:`kfpkit.components.monitor.logic.table_format` (``csv``/``parquet``/``jsonl``/``None``).

    A plain ``*.parquet`` name is answered here, without importing the monitor's logic (~30 ms).
    """
    name = uri.split("?", 1)[0].rsplit("/", 1)[-1].lower()
    if name.endswith(".parquet") and name[: -len(".parquet")].lstrip("."):
        return "parquet"
    from kfpkit.components.monitor.logic import table_format as monitor_table_format

    return monitor_table_format(uri)


class _LocalFiles:
    """The two calls of an fsspec filesystem used here, for a plain local path (fsspec's import: ~50 ms)."""

    @staticmethod
    def exists(path: str) -> bool:
        return os.path.exists(path)

    @staticmethod
    def open(path: str, mode: str = "rb", compression: Optional[str] = None) -> Any:
        if compression:
            raise ValueError(compression)  # (never: compressed files go through fsspec)
        return open(path, mode)  # the caller closes it


def _filesystem(uri: str) -> Tuple[Any, str]:
    """``(filesystem, path)`` of ``uri``: a plain uncompressed local path without fsspec, anything else with it."""
    if "://" not in uri and not uri.lower().endswith(tuple(_COMPRESSIONS)):
        return _LocalFiles(), uri
    import fsspec.core

    return fsspec.core.url_to_fs(uri)


def _display(uri: str) -> str:
    """``uri`` without credentials (ingest's redaction; pandas, which ingest imports, only for URLs)."""
    if "://" not in uri or uri.startswith("file://"):
        return uri
    from kfpkit.components.ingest.sources import redact_uri

    return redact_uri(uri)


def _read(fs: Any, path: str, fmt: str, columns: Sequence[str]) -> Any:
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    if fmt == "parquet":
        with fs.open(path, "rb") as handle:
            # ParquetFile reads the columns without pyarrow.dataset (whose import alone costs a second); one
            # thread: decoding a few columns is quick, and a thread pool only spins on a busy machine
            parquet = pq.ParquetFile(handle)
            present = set(parquet.schema_arrow.names)
            return parquet.read(columns=[c for c in dict.fromkeys(columns) if c in present], use_threads=False)
    compression = next((c for s, c in _COMPRESSIONS.items() if path.lower().endswith(s)), None)
    with fs.open(path, "rb", compression=compression) as handle:
        return pcsv.read_csv(handle) if fmt == "csv" else pjson.read_json(handle)


def _read_mixed_json(uri: str, display: str, what: str) -> Any:
    import pyarrow as pa

    from kfpkit.components.ingest.errors import IngestError
    from kfpkit.components.ingest.sources import load_source

    try:
        frame = load_source(uri, "").frame
    except IngestError as exc:
        raise PerformanceError(f"{what}: {exc}") from None
    arrays = {}
    for name in frame.columns:
        try:
            arrays[name] = pa.array(frame[name], from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            arrays[name] = _as_text(frame[name])
    return pa.table(arrays)


def _as_text(series: Any) -> Any:
    """A column of mixed JSON values: strings stay, numbers and booleans become their JSON text, nulls stay."""
    import json
    import math

    import pyarrow as pa

    def text(value: Any) -> Any:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value if isinstance(value, str) else json.dumps(value)

    return pa.array([text(v) for v in series.tolist()], pa.string())
