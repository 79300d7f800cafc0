"""Reading an ingest source into a pandas DataFrame.

Sources:

* ``synthetic://fraud?rows=N&seed=S&fraud_rate=R&drift=D`` -- :func:`~kfpkit.components.ingest.synthetic.generate_fraud`
  (defaults: ``rows=10000``, ``seed=0``, ``fraud_rate=0.02``, ``drift=0``);
* a local path or ``file://`` URI, ``gs://`` (needs ``gcsfs``: ``pip install 'kfpkit[gcs]'``), ``s3://``
  (needs ``s3fs``: ``pip install 'kfpkit[s3]'``), ``http://`` / ``https://`` -- all through fsspec.

File formats: CSV, Parquet and JSON Lines, chosen from the extension (``.csv``, ``.parquet``/``.pq``,
``.jsonl``/``.ndjson``/``.json``; a trailing ``.gz``/``.bz2``/``.xz``/``.zst``/``.zip`` on CSV and JSON Lines
is decompressed) or forced with ``file_format`` (``csv``, ``parquet``, ``jsonl``).
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pandas as pd

from kfpkit.components.ingest import synthetic
from kfpkit.components.ingest.errors import IngestError

SYNTHETIC_SCHEME = "synthetic"
SYNTHETIC_GENERATORS = ("fraud",)
SYNTHETIC_DEFAULT_ROWS = 10_000
FORMATS = ("csv", "parquet", "jsonl")
_FORMAT_ALIASES = {
    "csv": "csv",
    "parquet": "parquet",
    "pq": "parquet",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "jsonl",
}
_COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}
_LOCAL_SCHEMES = ("", "file", "local")
# scheme -> (pip package, kfpkit extra)
_OPTIONAL_FILESYSTEMS = {
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "http": ("aiohttp", None),
    "https": ("aiohttp", None),
}
_SECRET_QUERY_KEY = re.compile(r"sig|token|key|credential|secret|password|auth", re.IGNORECASE)


@dataclass(frozen=True)
class LoadedSource:
    """A source read into memory.

    Attributes:
        frame: The rows, in source order (row numbers 0..n-1 are the positions here).
        display_uri: The source URI with credentials removed: safe for metadata and error messages.
        file_format: ``csv``, ``parquet``, ``jsonl`` or ``synthetic``.
        label_column: The label column (fixed to ``is_fraud`` for synthetic sources).
    """

    frame: pd.DataFrame
    display_uri: str
    file_format: str
    label_column: str


def redact_uri(uri: str) -> str:
    """Removes ``user:password@`` and the values of secret-looking query parameters (signatures, tokens)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if not parts.scheme or parts.scheme in _LOCAL_SCHEMES:
        return uri
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{k}=<redacted>" if _SECRET_QUERY_KEY.search(k) else f"{k}={v}" for k, v in pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def load_source(source: str, label_column: str, file_format: Optional[str] = None) -> LoadedSource:
    """Reads ``source`` into a DataFrame.

    Args:
        source: A ``synthetic://`` URI, a local path, or a ``file://``/``gs://``/``s3://``/``http(s)://`` URI.
        label_column: Name of the label column (for synthetic sources it must be ``is_fraud`` or empty).
        file_format: ``csv``, ``parquet`` or ``jsonl`` to override the format inferred from the extension.

    Raises:
        IngestError: unknown scheme, missing filesystem package, missing/empty/unparsable file, unknown
            synthetic generator or bad synthetic parameter.
    """
    if not isinstance(source, str) or not source.strip():
        raise IngestError("source is empty: give a path, a file://, gs://, s3://, http(s):// or synthetic:// URI")
    source = source.strip()
    scheme = urlsplit(source).scheme.lower() if "://" in source else ""
    if scheme == SYNTHETIC_SCHEME:
        return _load_synthetic(source, label_column, file_format)
    return _load_file(source, scheme, label_column, file_format)


# ---------------------------------------------------------------------------------------------- synthetic
def parse_synthetic_uri(uri: str) -> Tuple[str, Dict[str, Any]]:
    """Parses ``synthetic://<generator>?k=v&...`` into the generator name and checked keyword arguments.

    Raises:
        IngestError: unknown generator, unknown/duplicated/unparsable parameter, or a value out of range.
    """
    parts = urlsplit(uri)
    generator = parts.netloc
    if generator not in SYNTHETIC_GENERATORS:
        raise IngestError(
            f"unknown synthetic generator {generator!r} in source {uri!r}; "
            f"known generators: {list(SYNTHETIC_GENERATORS)}"
        )
    if parts.path not in ("", "/") or parts.fragment:
        raise IngestError(f"synthetic source {uri!r} takes no path or fragment, only ?key=value parameters")
    kinds = {"rows": int, "seed": int, "fraud_rate": float, "drift": float}
    params: Dict[str, Any] = {"rows": SYNTHETIC_DEFAULT_ROWS}
    seen = set()
    for key, raw in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in kinds:
            raise IngestError(
                f"unknown synthetic parameter {key!r} in source {uri!r}; known parameters: {sorted(kinds)}"
            )
        if key in seen:
            raise IngestError(f"synthetic parameter {key!r} given more than once in source {uri!r}")
        seen.add(key)
        try:
            value = kinds[key](raw.strip())
        except ValueError:
            kind = "an integer" if kinds[key] is int else "a number"
            raise IngestError(f"synthetic parameter {key!r}={raw!r} in source {uri!r} is not {kind}") from None
        params[key] = value
    # range checks live in the generator; re-raise them naming the source
    try:
        synthetic._check_parameters(
            params["rows"], params.get("seed", 0), params.get("fraud_rate", 0.02), params.get("drift", 0.0)
        )
    except IngestError as error:
        raise IngestError(f"{error} (source {uri!r})") from None
    return generator, params


def _load_synthetic(uri: str, label_column: str, file_format: Optional[str]) -> LoadedSource:
    _, params = parse_synthetic_uri(uri)
    if label_column not in ("", synthetic.LABEL_COLUMN):
        raise IngestError(
            f"synthetic source {uri!r} has the label column {synthetic.LABEL_COLUMN!r}, "
            f"got label_column={label_column!r}"
        )
    if file_format:
        raise IngestError(f"file_format={file_format!r} does not apply to the synthetic source {uri!r}")
    frame = synthetic.generate_fraud(**params)
    return LoadedSource(frame=frame, display_uri=uri, file_format="synthetic", label_column=synthetic.LABEL_COLUMN)


# ---------------------------------------------------------------------------------------------- files
def _resolve_format(uri: str, file_format: Optional[str]) -> Tuple[str, Optional[str]]:
    """Returns (format, pandas compression) from the override or the extension of the URI's path."""
    path = urlsplit(uri).path if "://" in uri else uri
    name = os.path.basename(path.rstrip("/")).lower()
    stem, suffix = os.path.splitext(name)
    compression = _COMPRESSION_SUFFIXES.get(suffix)
    if compression:
        name = stem
    if file_format:
        fmt = _FORMAT_ALIASES.get(file_format.strip().lower())
        if fmt is None:
            raise IngestError(f"unknown file_format {file_format!r}; use one of {list(FORMATS)}")
    else:
        extension = os.path.splitext(name)[1].lstrip(".")
        fmt = _FORMAT_ALIASES.get(extension)
        if fmt is None:
            shown = f".{extension}" if extension else "(none)"
            raise IngestError(
                f"cannot tell the format of {redact_uri(uri)!r} from its extension {shown}; "
                f"use .csv, .parquet or .jsonl, or set file_format to one of {list(FORMATS)}"
            )
    if fmt == "parquet" and compression:
        raise IngestError(f"{redact_uri(uri)!r}: Parquet files are compressed internally; remove the {suffix} wrapper")
    return fmt, compression


def _filesystem(uri: str, scheme: str) -> Tuple[Any, str]:
    import fsspec

    display = redact_uri(uri)
    protocol = "file" if scheme in _LOCAL_SCHEMES else scheme
    try:
        fs, path = fsspec.core.url_to_fs(uri if scheme not in ("", "local") else os.path.abspath(uri))
    except ImportError as error:
        package, extra = _OPTIONAL_FILESYSTEMS.get(protocol, (None, None))
        hint = f"pip install 'kfpkit[{extra}]' (or {package})" if extra else f"pip install {package or protocol}"
        raise IngestError(
            f"reading {protocol}:// sources such as {display!r} needs an optional package: {hint} ({error})"
        ) from None
    except ValueError as error:
        raise IngestError(
            f"unsupported source scheme {scheme + '://'!r} in {display!r}: use a local path, file://, gs://, s3://, "
            f"http(s):// or synthetic:// ({error})"
        ) from None
    return fs, path


def _load_file(uri: str, scheme: str, label_column: str, file_format: Optional[str]) -> LoadedSource:
    display = redact_uri(uri)
    fmt, compression = _resolve_format(uri, file_format)
    fs, path = _filesystem(uri, scheme)
    handle = _open_source(fs, path, scheme in _LOCAL_SCHEMES, display)
    with handle:
        frame = _parse(handle, fmt, compression, display)
    _check_table(frame, display)
    return LoadedSource(frame=frame, display_uri=display, file_format=fmt, label_column=label_column)


def _open_source(fs: Any, path: str, local: bool, display: str) -> Any:
    """A binary handle on the source file: opened in place when local, else its bytes fetched into memory.

    Raises:
        IngestError: the file is missing, a directory, empty, not readable with these permissions, or the
            store cannot be reached.
    """
    try:
        if local:
            if not os.path.exists(path):
                raise FileNotFoundError(path)
            if os.path.isdir(path):
                raise IngestError(f"source {display!r} is a directory; give one CSV, Parquet or JSON Lines file")
            if os.path.getsize(path) == 0:
                raise IngestError(f"source file {display!r} is empty (0 bytes)")
            return fs.open(path, "rb")
        data = fs.cat_file(path)
        if not data:
            raise IngestError(f"source file {display!r} is empty (0 bytes)")
        return io.BytesIO(data)
    except FileNotFoundError:
        raise IngestError(f"source file not found: {display!r}") from None
    except IsADirectoryError:
        raise IngestError(f"source {display!r} is a directory; give one CSV, Parquet or JSON Lines file") from None
    except PermissionError as error:
        raise IngestError(f"no permission to read source {display!r}: {error}") from None
    except OSError as error:  # network and object-store errors (aiohttp's connection errors are OSErrors)
        raise IngestError(f"cannot read source {display!r}: {error}") from None


def _check_table(frame: pd.DataFrame, display: str) -> None:
    """Refuses a parsed table without columns or rows, or with a column name that is not a string."""
    if frame.shape[1] == 0:
        raise IngestError(f"source file {display!r} has no columns")
    if len(frame) == 0:
        raise IngestError(f"source file {display!r} has no data rows (only a header or an empty table)")
    bad_names = [c for c in frame.columns if not isinstance(c, str)]
    if bad_names:
        raise IngestError(f"source file {display!r} has non-string column names: {bad_names[:5]}")


def _parse(handle: Any, fmt: str, compression: Optional[str], display: str) -> pd.DataFrame:
    if fmt == "csv":
        try:
            return pd.read_csv(handle, compression=compression)
        except pd.errors.EmptyDataError:
            raise IngestError(f"source file {display!r} is empty (no header and no rows)") from None
        except pd.errors.ParserError as error:
            raise IngestError(f"unparsable CSV rows in {display!r}: {error}".rstrip()) from None
        except UnicodeDecodeError as error:
            raise IngestError(f"source file {display!r} is not UTF-8 text: {error}") from None
        except (OSError, EOFError) as error:  # e.g. a corrupt .gz
            raise IngestError(f"cannot read CSV file {display!r}: {error}") from None
    if fmt == "jsonl":
        return _parse_jsonl(handle, compression, display)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(handle)
    except (pa.ArrowInvalid, OSError) as error:
        raise IngestError(f"source file {display!r} is not a readable Parquet file: {error}") from None
    frame = table.to_pandas()
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()  # a pandas index stored in the file becomes ordinary columns
    return frame.reset_index(drop=True)


def _parse_jsonl(handle: Any, compression: Optional[str], display: str) -> pd.DataFrame:
    raw = handle.read()
    try:
        frame = pd.read_json(
            io.BytesIO(raw),
            lines=True,
            compression=compression,
            dtype=False,
            convert_dates=False,
            keep_default_dates=False,
            precise_float=True,
        )
    except ValueError as error:
        raise IngestError(
            f"unparsable JSON Lines in {display!r}: {_first_bad_json_line(raw, compression) or error}"
        ) from None
    except (OSError, EOFError) as error:
        raise IngestError(f"cannot read JSON Lines file {display!r}: {error}") from None
    return frame


def _first_bad_json_line(raw: bytes, compression: Optional[str]) -> Optional[str]:
    """Names the first line that is not a JSON object (only called on the error path)."""
    try:
        if compression:
            import pandas.io.common as pdcommon

            with pdcommon.get_handle(io.BytesIO(raw), "rb", compression=compression, is_text=False) as handles:
                raw = handles.handle.read()
        text = raw.decode("utf-8")
    except (UnicodeDecodeError, OSError, EOFError, ValueError) as error:
        return f"not UTF-8 JSON text ({error})"
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            return f"line {number} is not valid JSON ({error.msg}): {line[:80]!r}"
        if not isinstance(value, dict):
            return f"line {number} is not a JSON object: {line[:80]!r}"
    return None
