"""Monitor logic (kfp-free): a live window against the model version's stored baseline profile.

``run_monitor`` reads ``monitoring_baseline.json`` from the model version (never the training data), streams
the live window in Arrow record batches into mergeable histograms on the baseline's bins, scores every
feature with the metrics of :mod:`kfpkit.core.distances` (a numeric feature's JS distance through
:mod:`kfpkit.core.numeric_shift`, the comparator validate's skew check shares), and writes the drift report
(``drift.json``), the drift summary (``summary.json``; both records of :mod:`kfpkit.core.drift_summary`) and
the HTML report together (all or none).

The live window is either

* a **payload log** -- the Parquet records of ``kfpkit serve --payload-log`` or ``kfpkit payload-sink``,
  laid out as ``<root>/<model>/<version>/<YYYY-MM-DD>/<HH>/*.parquet`` (``SOURCE`` may be ``<root>`` or the
  version folder); ``since``/``until`` select records by their ``timestamp`` (and prune whole hour folders);
* or a **table of raw feature rows**: one CSV, Parquet or JSON Lines file (local, ``file://``, ``gs://``,
  ``s3://``, ``http(s)://``), chosen from the extension as ingest does. A ``score`` column, when present, is
  compared with the baseline's eval score distribution.

Memory is bounded by the batch size and the number of bins, whatever the window size: nothing but counts is
kept. TensorFlow and pandas are never imported.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import posixpath
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from kfpkit.core import distances as mm
from kfpkit.core import monitoring_baseline as mb
from kfpkit.core import numeric_shift, payload_record
from kfpkit.core.drift_summary import DriftReport, DriftSummary, FeatureDrift
from kfpkit.core.records import RecordError

logger = logging.getLogger("kfpkit.monitor")

BATCH_ROWS = 131_072
SCORE_COLUMN = payload_record.SCORE  # a table window's score column has the payload record's name
TIMESTAMP_COLUMN = payload_record.TIMESTAMP
MAX_UNSEEN_VALUES = 10_000
UNSEEN_OVERFLOW = "\x00other-unseen"
DRIFT_FILE = "drift.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
_TABLE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_TABLE_FORMATS[".json"] = "jsonl"


class MonitorError(ValueError):
    """Bad monitor input: a live table missing a feature, an empty window, a foreign baseline, a corrupt file."""


# --------------------------------------------------------------------------- counters
class NumericCounter:
    """Counts of live values per baseline bin, plus missing values."""

    def __init__(self, profile: mb.NumericProfile):
        self.name = profile.name
        self.edges = np.asarray(profile.edges, dtype=np.float64)
        self.counts = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.missing = 0

    def add(self, column: Any, where: str) -> None:
        """Counts an Arrow column of the feature (nulls and non-finite values as missing).

        Raises:
            MonitorError: the column does not hold numbers (``where`` names the file or partition).
        """
        import pyarrow as pa

        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_null(column.type)):
            raise MonitorError(
                f"{where}: numeric feature {self.name!r} holds {column.type} values (e.g. {_example(column)!r})"
            )
        self.add_values(float64_values(column))

    def add_values(self, values: np.ndarray) -> None:
        """Counts float values in the baseline's bins; NaN and infinities count as missing."""
        finite = np.isfinite(values)
        kept = values[finite] if not finite.all() else values
        self.missing += int(values.size - kept.size)
        self.counts += np.bincount(np.searchsorted(self.edges, kept, side="right"), minlength=self.counts.size)

    @property
    def rows(self) -> int:
        """Values counted so far, missing ones included."""
        return int(self.counts.sum()) + self.missing


def float64_values(column: Any) -> np.ndarray:
    """A numeric Arrow array as float64 numpy values, nulls as NaN (read from the buffer: no pandas import)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pc.cast(column, pa.float64())
    if array.null_count:
        array = pc.fill_null(array, float("nan"))
    data = array.buffers()[1]
    if data is None:
        return np.full(len(array), np.nan)
    return np.frombuffer(data, dtype=np.float64, count=len(array), offset=array.offset * 8)


class CategoricalCounter:
    """Counts of live values: the baseline's values, unseen values (each, up to a cap), missing ones."""

    def __init__(self, profile: mb.CategoricalProfile):
        self.name = profile.name
        self.index = {v: i for i, v in enumerate(profile.values)}
        self.counts = np.zeros(len(profile.values), dtype=np.int64)
        self.unseen: Dict[str, int] = {}
        self.missing = 0

    def add(self, column: Any, where: str) -> None:
        """Counts an Arrow column of the feature by canonical value (dictionary-encoded columns too).

        Raises:
            MonitorError: the column holds nested values (lists, structs, ...).
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_dictionary(column.type):
            self._add_dictionary(column)
            return
        if pa.types.is_nested(column.type):
            raise MonitorError(f"{where}: categorical feature {self.name!r} holds {column.type} values")
        counted = pc.value_counts(column)
        values = counted.field("values").to_pylist()
        counts = counted.field("counts").to_pylist()
        plain = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        for value, count in zip(values, counts, strict=True):
            key = value if plain and value is not None else mb.category_key(value)
            self.add_value(key, count)

    def _add_dictionary(self, column: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.missing += column.null_count
        valid = pc.cast(pc.drop_null(column.indices), pa.int64())
        data = valid.buffers()[1]
        indices = (
            np.frombuffer(data, dtype=np.int64, count=len(valid), offset=valid.offset * 8)
            if data is not None
            else np.empty(0, dtype=np.int64)
        )
        counts = np.bincount(indices, minlength=len(column.dictionary))
        for value, count in zip(column.dictionary.to_pylist(), counts.tolist(), strict=True):
            if count:
                self.add_value(value if isinstance(value, str) else mb.category_key(value), count)

    def add_value(self, key: str, count: int) -> None:
        """Counts ``count`` rows of the canonical value ``key`` (``""`` or ``None``: missing).

        Values outside the baseline's are counted each up to ``MAX_UNSEEN_VALUES`` distinct ones; the rest
        together under ``UNSEEN_OVERFLOW``.
        """
        if key == "" or key is None:
            self.missing += count
        elif key in self.index:
            self.counts[self.index[key]] += count
        elif key in self.unseen or len(self.unseen) < MAX_UNSEEN_VALUES:
            self.unseen[key] = self.unseen.get(key, 0) + count
        else:
            self.unseen[UNSEEN_OVERFLOW] = self.unseen.get(UNSEEN_OVERFLOW, 0) + count

    @property
    def rows(self) -> int:
        """Values counted so far: baseline values, unseen ones and missing ones."""
        return int(self.counts.sum()) + sum(self.unseen.values()) + self.missing


# --------------------------------------------------------------------------- results
@dataclass
class MonitorResult:
    """What ``run_monitor`` found; :meth:`report` and :meth:`summary` are the documents it writes.

    Attributes:
        drift_detected: A feature drifted (or the score did, when ``score_drift_triggers``).
        drifted_features: Drifted features, most drifted first (by score-to-threshold ratio).
        features: Per-feature drift, in the baseline's feature order.
        score: Score drift, or ``None`` when the window has no scores.
        rows: Live rows in the window.
        model_uri: The model version compared with.
        live: The live window's source.
        since: Start of the time range (ISO-8601) or ``None``.
        until: End of the time range or ``None``.
        seconds: Time spent reading and scoring the window.
        alpha: False-alarm probability per metric of the noise floors.
    """

    drift_detected: bool
    drifted_features: List[str]
    features: List[FeatureDrift]
    score: Optional[FeatureDrift]
    rows: int
    model_uri: str
    live: str
    since: Optional[str] = None
    until: Optional[str] = None
    seconds: float = 0.0
    alpha: float = mm.DEFAULT_ALPHA

    def report(self) -> DriftReport:
        """The drift report (``drift.json``): every metric of every feature, the histograms."""
        return DriftReport(
            drift_detected=self.drift_detected,
            drifted_features=list(self.drifted_features),
            features={f.name: f for f in self.features},
            score_drift=self.score,
            rows=self.rows,
            model_uri=self.model_uri,
            live=self.live,
            since=self.since,
            until=self.until,
            alpha=self.alpha,
            seconds=round(self.seconds, 3),
        )

    def summary(self) -> DriftSummary:
        """The drift summary (``summary.json``, ``kfpkit monitor --summary-json``): a stable, documented contract."""
        return self.report().summary()


# --------------------------------------------------------------------------- comparison
def compare_numeric(
    profile: mb.NumericProfile,
    counter: NumericCounter,
    n_base_rows: int,
    kind: str = "numeric",
    overrides: Optional[Mapping[str, Mapping[str, float]]] = None,
    alpha: float = mm.DEFAULT_ALPHA,
    metrics: Sequence[str] = mm.NUMERIC_METRICS,
) -> FeatureDrift:
    """The drift of a numeric feature (or of the score): the live counts against the baseline's bins.

    Args:
        profile: The feature's baseline profile.
        counter: The live window's counts on the profile's bins.
        n_base_rows: Baseline rows of the feature, missing ones included (the missing rate's denominator).
        kind: The kind reported (``"numeric"``, or ``"score"`` for the score).
        overrides: Per-feature thresholds, ``{feature: {metric: threshold}}``.
        alpha: False-alarm probability per metric of the noise floors.
        metrics: The metrics to compute, some of :data:`kfpkit.core.distances.NUMERIC_METRICS`.
    """
    base = np.asarray(profile.counts, dtype=np.int64)
    live = counter.counts
    n_base, n_live = int(base.sum()), int(live.sum())
    bins = int(np.count_nonzero(base)) or 1
    verdicts = []
    if "js" in metrics:  # the numeric comparator validate's skew check shares
        shift = numeric_shift.compare_counts(base, live, mm.threshold_for("js", profile.name, overrides), alpha)
        verdicts.append(shift.verdict())
    if "psi" in metrics:
        verdicts.append(
            mm.verdict(
                "psi",
                mm.psi(live, base),
                mm.threshold_for("psi", profile.name, overrides),
                mm.psi_floor(bins, n_live, n_base, alpha),
            )
        )
    base_missing = profile.missing / max(n_base_rows, 1)
    live_missing = counter.missing / max(counter.rows, 1)
    if "missing_rate" in metrics:
        verdicts.append(
            mm.verdict(
                "missing_rate",
                abs(live_missing - base_missing),
                mm.threshold_for("missing_rate", profile.name, overrides),
                mm.rate_floor(live_missing, counter.rows, base_missing, n_base_rows, alpha),
            )
        )
    labels = _bin_labels(profile.edges)
    return _feature(
        profile.name,
        kind,
        verdicts,
        labels,
        _shares(base),
        _shares(live),
        {"baseline": base_missing, "live": live_missing},
    )


def compare_categorical(
    profile: mb.CategoricalProfile,
    counter: CategoricalCounter,
    overrides: Optional[Mapping[str, Mapping[str, float]]] = None,
    alpha: float = mm.DEFAULT_ALPHA,
) -> FeatureDrift:
    """The drift of a categorical feature by every metric of :data:`kfpkit.core.distances.CATEGORICAL_METRICS`.

    The baseline's top-K values plus its "other" bucket are the bins; the live values outside the top-K
    fall into that bucket. The ten most frequent unseen values are reported.

    Args:
        profile: The feature's baseline profile.
        counter: The live window's counts.
        overrides: Per-feature thresholds, ``{feature: {metric: threshold}}``.
        alpha: False-alarm probability per metric of the noise floors.
    """
    unseen_total = int(sum(counter.unseen.values()))
    base = np.asarray([*profile.counts, profile.other], dtype=np.int64)
    live = np.asarray([*counter.counts.tolist(), unseen_total], dtype=np.int64)
    n_base, n_live = int(base.sum()), int(live.sum())
    bins = int(np.count_nonzero(base)) + (0 if profile.other else 1)
    base_map: Dict[str, float] = dict(zip(profile.values, profile.counts, strict=True))
    if profile.other:
        base_map[UNSEEN_OVERFLOW] = profile.other
    live_map: Dict[str, float] = {v: float(c) for v, c in zip(profile.values, counter.counts.tolist(), strict=True)}
    for value, count in counter.unseen.items():
        live_map[value] = live_map.get(value, 0.0) + count
    q = base / max(n_base, 1)
    base_missing = profile.missing / max(profile.total, 1)
    live_missing = counter.missing / max(counter.rows, 1)
    base_other = profile.other / max(n_base, 1)
    live_unseen = unseen_total / max(n_live, 1)
    name = profile.name
    verdicts = [
        mm.verdict(
            "js",
            mm.js_distance(live, base),
            mm.threshold_for("js", name, overrides),
            mm.js_floor(bins, n_live, n_base, alpha),
        ),
        mm.verdict(
            "psi",
            mm.psi(live, base),
            mm.threshold_for("psi", name, overrides),
            mm.psi_floor(bins, n_live, n_base, alpha),
        ),
        mm.verdict(
            "linf",
            mm.linf_distance(live_map, base_map),
            mm.threshold_for("linf", name, overrides),
            mm.frequency_floor(q[q > 0], n_live, n_base, alpha),
        ),
        mm.verdict(
            "missing_rate",
            abs(live_missing - base_missing),
            mm.threshold_for("missing_rate", name, overrides),
            mm.rate_floor(live_missing, counter.rows, base_missing, profile.total, alpha),
        ),
        mm.verdict(
            "unseen_rate",
            max(0.0, live_unseen - base_other),
            mm.threshold_for("unseen_rate", name, overrides),
            mm.rate_floor(live_unseen, n_live, base_other, n_base, alpha),
        ),
    ]
    top_unseen = dict(sorted(counter.unseen.items(), key=lambda kv: -kv[1])[:10])
    top_unseen.pop(UNSEEN_OVERFLOW, None)
    return _feature(
        name,
        "categorical",
        verdicts,
        [*profile.values, "(other / unseen)"],
        _shares(base),
        _shares(live),
        {"baseline": base_missing, "live": live_missing},
        top_unseen,
    )


def _feature(name, kind, verdicts, labels, base_share, live_share, missing, unseen=None) -> FeatureDrift:
    deciding = max(verdicts, key=lambda v: (v.drifted, v.ratio))
    return FeatureDrift(
        name=name,
        kind=kind,
        drifted=any(v.drifted for v in verdicts),
        deciding=deciding,
        metrics={v.metric: v for v in verdicts},
        bins=labels,
        baseline_share=base_share,
        live_share=live_share,
        missing_rate=missing,
        unseen_values=unseen or {},
    )


def _shares(counts: np.ndarray) -> List[float]:
    total = counts.sum()
    return [round(float(c) / total, 6) if total else 0.0 for c in counts]


def _bin_labels(edges: Sequence[float]) -> List[str]:
    if not edges:
        return ["all"]
    shown = [f"{e:.4g}" for e in edges]
    return [f"< {shown[0]}", *[f"{a} – {b}" for a, b in itertools.pairwise(shown)], f"≥ {shown[-1]}"]


def compare(
    baseline: mb.MonitoringBaseline,
    counters: Mapping[str, Any],
    score_counter: Optional[NumericCounter],
    overrides: Optional[Mapping[str, Mapping[str, float]]] = None,
    alpha: float = mm.DEFAULT_ALPHA,
    score_drift_triggers: bool = True,
) -> Tuple[List[FeatureDrift], Optional[FeatureDrift], bool, List[str]]:
    """Scores every feature; returns ``(features, score, drift_detected, drifted_features)``."""
    features: List[FeatureDrift] = []
    for name in baseline.feature_order:
        profile = baseline.feature(name)
        if isinstance(profile, mb.NumericProfile):
            features.append(compare_numeric(profile, counters[name], baseline.rows, overrides=overrides, alpha=alpha))
        else:
            features.append(compare_categorical(profile, counters[name], overrides=overrides, alpha=alpha))
    score = None
    if score_counter is not None and baseline.score is not None and score_counter.rows:
        score = compare_numeric(
            baseline.score,
            score_counter,
            baseline.score_rows,
            kind="score",
            overrides=overrides,
            alpha=alpha,
            metrics=mm.SCORE_METRICS,
        )
    drifted = sorted((f for f in features if f.drifted), key=lambda f: -f.deciding.ratio)
    detected = bool(drifted) or bool(score and score.drifted and score_drift_triggers)
    return features, score, detected, [f.name for f in drifted]


# --------------------------------------------------------------------------- reading the window
def parse_time(value: Optional[str], what: str) -> Optional[datetime]:
    """An ISO-8601 time (UTC when it has no offset), or ``None`` for an empty value."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MonitorError(f"{what} {value!r} is not an ISO-8601 time (e.g. 2026-12-01T09:00:00Z)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _filesystem(uri: str) -> Tuple[Any, str]:
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise MonitorError(f"live source {uri!r} cannot be opened: {exc}") from exc


def table_format(uri: str) -> Optional[str]:
    """``csv``/``parquet``/``jsonl`` from a file name, or ``None`` (a payload-log folder)."""
    path = uri.split("?", 1)[0].lower()
    for suffix in (".gz", ".bz2", ".xz", ".zst"):
        if path.endswith(suffix) and not path.endswith(".parquet" + suffix):
            path = path[: -len(suffix)]
    return _TABLE_FORMATS.get(posixpath.splitext(path)[1])


def payload_files(
    root: str,
    model_name: Optional[str],
    model_version: Optional[str],
    since: Optional[datetime],
    until: Optional[datetime],
) -> Tuple[Any, List[str]]:
    """The Parquet files of a payload log whose hour folder overlaps ``[since, until)``, sorted.

    The layout is :mod:`kfpkit.core.payload_record`'s; ``root`` may be the log's root (narrowed to
    ``model_name``/``model_version`` when those folders exist) or a model's or version's folder.
    """
    fs, path = _filesystem(root)
    path = path.rstrip("/")
    if model_name:
        narrowed = posixpath.join(path, payload_record.model_prefix(model_name, model_version))
        if fs.isdir(narrowed):
            path = narrowed
    if not fs.isdir(path):
        raise MonitorError(f"live source {root!r}: no such payload-log folder (and no .csv/.parquet/.jsonl suffix)")
    suffix = payload_record.PARQUET_SUFFIX
    files = sorted(p for p in fs.find(path) if p.endswith(suffix) and "/." not in p[len(path) :])
    kept = []
    for file in files:
        hour = payload_record.partition_hour(file)
        if hour is not None:
            if since and hour.timestamp() + 3600 <= since.timestamp():
                continue
            if until and hour >= until:
                continue
        kept.append(file)
    return fs, kept


def iter_window(
    source: str,
    features: Sequence[str],
    since: Optional[datetime] = None,
    until: Optional[datetime] = None,
    model_name: Optional[str] = None,
    model_version: Optional[str] = None,
    batch_rows: int = BATCH_ROWS,
    categorical: Sequence[str] = (),
) -> Iterator[Tuple[str, Any]]:
    """Yields ``(file, RecordBatch)`` of the window with the feature columns (and ``score`` when present).

    Parquet string columns named in ``categorical`` are read dictionary-encoded (no string per row).

    Raises:
        MonitorError: a file is missing a feature column, cannot be parsed, or the source does not exist.
    """
    fmt = table_format(source)
    if fmt is None:
        fs, files = payload_files(source, model_name, model_version, since, until)
        for file in files:
            yield from _parquet_batches(fs, file, features, batch_rows, since, until, True, categorical)
        return
    if since or until:
        logger.info("--since/--until apply to payload logs; the table %s is read whole", source)
    fs, path = _filesystem(source)
    if not fs.exists(path):
        raise MonitorError(f"live source {source!r}: no such file")
    if fmt == "parquet":
        yield from _parquet_batches(fs, path, features, batch_rows, None, None, False, categorical)
    elif fmt == "csv":
        yield from _csv_batches(fs, path, features, batch_rows)
    else:
        yield from _jsonl_batches(fs, path, features, batch_rows)


def _require(columns: Sequence[str], features: Sequence[str], where: str) -> List[str]:
    missing = [f for f in features if f not in columns]
    if missing:
        raise MonitorError(f"{where}: live data lacks feature column(s) {missing} (it has {list(columns)[:20]})")
    return [*features, *([SCORE_COLUMN] if SCORE_COLUMN in columns else [])]


def _parquet_batches(fs, path, features, batch_rows, since, until, time_filter, categorical=()):
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from fsspec.implementations.local import LocalFileSystem

    try:
        # local files through Arrow's own (GIL-free, memory-mapped) reader; others through fsspec
        handle = contextlib.nullcontext() if isinstance(fs, LocalFileSystem) else fs.open(path, "rb")
        source = path if isinstance(fs, LocalFileSystem) else handle
        names = set(pq.read_schema(source).names)
        reader = pq.ParquetFile(source, read_dictionary=[c for c in categorical if c in names] or None)
    except (OSError, pa.ArrowException) as exc:
        raise MonitorError(f"{path}: not a readable Parquet file ({exc})") from exc
    with handle:
        names = reader.schema_arrow.names
        if time_filter:  # a payload-log file: its record kind and version must be ones this kfpkit reads
            try:
                payload_record.check_schema(reader.schema_arrow, path)
            except RecordError as exc:
                raise MonitorError(str(exc)) from exc
        wanted = _require(names, features, path)
        if time_filter and (since or until):
            if TIMESTAMP_COLUMN not in names:
                raise MonitorError(f"{path}: payload record without a {TIMESTAMP_COLUMN!r} column")
            wanted = [*wanted, TIMESTAMP_COLUMN]
        try:
            for batch in reader.iter_batches(batch_size=batch_rows, columns=wanted):
                if time_filter and (since or until):
                    stamps = batch.column(TIMESTAMP_COLUMN)
                    mask = None
                    if since:
                        mask = pc.greater_equal(stamps, pa.scalar(since, type=stamps.type))
                    if until:
                        upper = pc.less(stamps, pa.scalar(until, type=stamps.type))
                        mask = upper if mask is None else pc.and_(mask, upper)
                    yield path, batch.filter(mask)
                else:
                    yield path, batch
        except (OSError, pa.ArrowException) as exc:
            raise MonitorError(f"{path}: corrupt Parquet data ({exc})") from exc


def _csv_batches(fs, path, features, batch_rows) -> Iterator[Tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    compression = _compression(path)
    try:
        handle = fs.open(path, "rb", compression=compression)
        reader = pcsv.open_csv(handle, read_options=pcsv.ReadOptions(block_size=1 << 22))
    except (OSError, pa.ArrowException) as exc:
        raise MonitorError(f"{path}: not a readable CSV file ({exc})") from exc
    with handle:
        _require(reader.schema.names, features, path)
        try:
            for batch in reader:
                yield path, batch
        except (OSError, pa.ArrowException) as exc:
            raise MonitorError(f"{path}: cannot parse the CSV ({exc})") from exc


def _jsonl_batches(fs, path, features, batch_rows) -> Iterator[Tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.json as pjson

    with fs.open(path, "rb", compression=_compression(path)) as handle:
        chunk: List[bytes] = []
        first = 1
        line_no = 0
        for line in handle:
            line_no += 1
            if line.strip():
                chunk.append(line if line.endswith(b"\n") else line + b"\n")
            if len(chunk) >= batch_rows:
                yield from _json_chunk(pjson, pa, chunk, path, first, features)
                chunk, first = [], line_no + 1
        if chunk:
            yield from _json_chunk(pjson, pa, chunk, path, first, features)


def _json_chunk(pjson, pa, chunk, path, first, features) -> Iterator[Tuple[str, Any]]:
    try:
        table = pjson.read_json(io.BytesIO(b"".join(chunk)))
    except pa.ArrowException as exc:
        raise MonitorError(f"{path}: bad JSON Lines from line {first} on ({exc})") from exc
    _require(table.column_names, features, path)
    for batch in table.to_batches():
        yield path, batch


def _compression(path: str) -> Optional[str]:
    return {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}.get(posixpath.splitext(path.lower())[1])


def _example(column: Any) -> Any:
    for value in column.to_pylist():
        if value is not None:
            return value
    return None


# --------------------------------------------------------------------------- model version
def resolve_model_dir(model_uri: str, scratch: str) -> str:
    """A local folder holding the model version (remote versions are materialized into ``scratch``)."""
    from kfpkit.core.registry import RegistryError, materialize

    try:
        return materialize(model_uri, os.path.join(scratch, "model"))
    except RegistryError as exc:
        raise MonitorError(str(exc)) from exc


def model_name_and_version(model_uri: str) -> Tuple[Optional[str], Optional[int]]:
    """``(model, version)`` of a registry version URI (:func:`kfpkit.core.registry.parse_version_uri`), else Nones."""
    from kfpkit.core.registry import RegistryError, parse_version_uri

    try:
        _root, name, version = parse_version_uri(model_uri)
    except RegistryError:
        return None, None
    return name, version


def load_baseline(model_dir: str) -> mb.MonitoringBaseline:
    """The monitoring baseline of a model directory, checked against the directory's model files.

    Raises:
        MonitorError: the baseline is missing, invalid or belongs to other model files.
    """
    try:
        baseline = mb.read_baseline(model_dir)
        mb.check_matches_model_dir(baseline, model_dir)
    except mb.BaselineError as exc:
        raise MonitorError(str(exc)) from exc
    return baseline


# --------------------------------------------------------------------------- entry point
@dataclass
class OutputPaths:
    """Where ``run_monitor`` writes: the drift JSON, the summary JSON and the HTML report (all optional)."""

    drift_json: Optional[str] = None
    summary_json: Optional[str] = None
    report_html: Optional[str] = None

    @classmethod
    def in_folder(cls, folder: str) -> OutputPaths:
        """The three documents under their standard names in ``folder``."""
        return cls(
            drift_json=os.path.join(folder, DRIFT_FILE),
            summary_json=os.path.join(folder, SUMMARY_FILE),
            report_html=os.path.join(folder, REPORT_FILE),
        )


def measure_window(
    baseline: mb.MonitoringBaseline,
    batches: Iterator[Tuple[str, Any]],
) -> Tuple[Dict[str, Any], Optional[NumericCounter], int]:
    """Streams the batches into counters; returns ``(counters, score counter or None, rows)``."""
    counters: Dict[str, Any] = {}
    for name in baseline.feature_order:
        profile = baseline.feature(name)
        counters[name] = (
            NumericCounter(profile) if isinstance(profile, mb.NumericProfile) else CategoricalCounter(profile)
        )
    score_counter = NumericCounter(baseline.score) if baseline.score is not None else None
    rows = 0
    scored = False
    numeric = [(n, c) for n, c in counters.items() if isinstance(c, NumericCounter)]
    categorical = [(n, c) for n, c in counters.items() if not isinstance(c, NumericCounter)]
    # numpy's searchsorted releases the GIL: numeric columns are binned in threads, categoricals meanwhile
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for where, batch in batches:
            if batch.num_rows == 0:
                continue
            rows += batch.num_rows
            jobs = [pool.submit(counter.add, batch.column(name), where) for name, counter in numeric]
            if score_counter is not None and SCORE_COLUMN in batch.schema.names:
                jobs.append(pool.submit(score_counter.add, batch.column(SCORE_COLUMN), where))
                scored = True
            for name, counter in categorical:
                counter.add(batch.column(name), where)
            for job in jobs:
                job.result()
    return counters, (score_counter if scored else None), rows


def run_monitor(
    model_uri: str,
    live: str,
    outputs: OutputPaths,
    since: Optional[str] = None,
    until: Optional[str] = None,
    thresholds: Optional[Mapping[str, Mapping[str, float]]] = None,
    alpha: float = mm.DEFAULT_ALPHA,
    score_drift_triggers: bool = True,
    batch_rows: int = BATCH_ROWS,
) -> MonitorResult:
    """Compares a live window with the model version's baseline and writes the outputs together.

    Args:
        model_uri: Model version folder or registry URI (``<root>/<model>/<version>``).
        live: Payload-log URI (root or version folder) or a CSV/Parquet/JSON Lines table of raw feature rows.
        outputs: Paths of the drift JSON, summary JSON and HTML report; ``None`` entries are skipped.
        since: Start (inclusive, ISO-8601) of the payload-log time range; empty: no bound.
        until: End (exclusive) of the time range; empty: no bound.
        thresholds: Per-feature fixed thresholds ``{feature: {metric: value}}``; ``"*"`` applies to every
            feature. Metrics: js, psi, linf, missing_rate, unseen_rate (see ``metrics.DEFAULT_THRESHOLDS``).
        alpha: False-alarm probability of one metric of one feature on an undrifted window (noise floors).
        score_drift_triggers: Whether score drift alone sets ``drift_detected``.
        batch_rows: Rows per Arrow batch.

    Raises:
        MonitorError: bad input (see the class); nothing is written then.
    """
    start = time.perf_counter()
    since_t, until_t = parse_time(since, "since"), parse_time(until, "until")
    if since_t and until_t and since_t >= until_t:
        raise MonitorError(f"since {since} is not before until {until}")
    _check_thresholds(thresholds)
    with tempfile.TemporaryDirectory(prefix="kfpkit-monitor-") as scratch:
        model_dir = resolve_model_dir(model_uri, scratch)
        baseline = load_baseline(model_dir)
    name, version = model_name_and_version(model_uri)
    label = None if version is None else str(version)  # the payload log's model_version partition label
    categorical = [p.name for p in baseline.categorical]
    batches = iter_window(live, baseline.feature_order, since_t, until_t, name, label, batch_rows, categorical)
    counters, score_counter, rows = measure_window(baseline, batches)
    if rows == 0:
        span = f" between {since or '-inf'} and {until or '+inf'}" if (since or until) else ""
        raise MonitorError(f"live window {live!r} has no rows{span}")
    features, score, detected, drifted = compare(
        baseline, counters, score_counter, thresholds, alpha, score_drift_triggers
    )
    result = MonitorResult(
        drift_detected=detected,
        drifted_features=drifted,
        features=features,
        score=score,
        rows=rows,
        model_uri=model_uri,
        live=live,
        since=since_t.isoformat() if since_t else None,
        until=until_t.isoformat() if until_t else None,
        seconds=time.perf_counter() - start,
        alpha=alpha,
    )
    write_outputs(result, outputs)
    logger.info(
        "monitor: %d live rows in %.2f s; drift %s%s",
        rows,
        result.seconds,
        "DETECTED in " if detected else "not detected",
        ", ".join(drifted) if drifted else ("the score" if detected else ""),
    )
    return result


def _check_thresholds(thresholds: Optional[Mapping[str, Mapping[str, float]]]) -> None:
    for feature, values in (thresholds or {}).items():
        if not isinstance(values, Mapping):
            raise MonitorError(f"thresholds[{feature!r}] must map metric names to numbers")
        for metric, value in values.items():
            if metric not in mm.DEFAULT_THRESHOLDS:
                raise MonitorError(
                    f"thresholds[{feature!r}]: unknown metric {metric!r}; "
                    f"expected one of {sorted(mm.DEFAULT_THRESHOLDS)}"
                )
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise MonitorError(f"thresholds[{feature!r}][{metric!r}] must be a number >= 0, got {value!r}")


def write_outputs(result: MonitorResult, outputs: OutputPaths) -> None:
    """Writes the requested outputs all together (a failure leaves none of them)."""
    from kfpkit.components.monitor.report import render_html
    from kfpkit.core.publish import publish_together

    files = []
    if outputs.drift_json:
        files.append((outputs.drift_json, result.report().to_json().encode()))
    if outputs.summary_json:
        files.append((outputs.summary_json, result.summary().to_json().encode()))
    if outputs.report_html:
        files.append((outputs.report_html, render_html(result).encode("utf-8")))
    if files:
        publish_together(files)
