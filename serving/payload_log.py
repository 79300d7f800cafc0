"""The payload record and the predictor-side payload logger (``kfpkit serve --payload-log URI``).

**Payload record** (one row per scored instance; the same from the predictor and from ``kfpkit payload-sink``):

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

Files are Parquet under ``<URI>/<model_name>/<model_version>/<YYYY-MM-DD>/<HH>/part-*.parquet`` (UTC), written
through fsspec (local folders, ``gs://``, ``s3://``); on local file systems each file is written under a hidden
name and renamed, so readers never see half a file.

**Logger.** :meth:`PayloadLogger.log` runs on the request path and only samples and enqueues references
(no copy, no I/O). A background thread takes batches off the bounded queue and writes one file per hour
partition every ``flush_rows`` rows or ``flush_seconds``. When the queue is full or a write fails the request
is unaffected and the rows are counted in ``kfpkit_payload_dropped_total{model_name, reason}`` (reason
``queue_full`` or ``write_error``) and logged, never silently lost. :meth:`PayloadLogger.close` flushes what
is queued; it runs at interpreter exit and on SIGTERM (:meth:`PayloadLogger.install_sigterm_flush`).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger("kfpkit.serving.payload")

RESERVED_COLUMNS = (
    "request_id",
    "instance",
    "timestamp",
    "model_name",
    "model_version",
    "score",
    "label",
    "ground_truth",
)
UNVERSIONED = "unversioned"
DEFAULT_QUEUE_REQUESTS = 10_000
DEFAULT_FLUSH_ROWS = 20_000
DEFAULT_FLUSH_SECONDS = 10.0
POLL_SECONDS = 0.25

_metrics_lock = threading.Lock()
_metrics: Dict[str, Any] = {}


def counter(key: str, name: str, documentation: str, labels: Sequence[str]) -> Any:
    """A prometheus_client Counter of the default registry, created once per process under ``key``."""
    with _metrics_lock:
        if key not in _metrics:
            from prometheus_client import Counter

            _metrics[key] = Counter(name, documentation, list(labels))
        return _metrics[key]


def payload_metrics() -> Dict[str, Any]:
    """``kfpkit_payload_logged_total`` and ``kfpkit_payload_dropped_total``."""
    return {
        "logged": counter(
            "logged", "kfpkit_payload_logged", "Payload records written by the payload logger", ["model_name"]
        ),
        "dropped": counter(
            "dropped",
            "kfpkit_payload_dropped",
            "Payload records not written (queue full or write error); the requests themselves succeeded",
            ["model_name", "reason"],
        ),
    }


@dataclass
class PayloadEntry:
    """One scored request, as the request path hands it over (references, not copies)."""

    time: float
    request_id: str
    columns: Mapping[str, Sequence[Any]]
    score: np.ndarray
    label: np.ndarray


class PayloadSchema:
    """The payload record's Arrow schema for one model's preprocessing spec.

    Raises:
        ValueError: a feature is named like a reserved payload column.
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
                ("request_id", pa.string()),
                ("instance", pa.int32()),
                ("timestamp", pa.timestamp("us", tz="UTC")),
                ("model_name", pa.string()),
                ("model_version", pa.string()),
                *[(name, kinds[name]) for name in self.features],
                ("score", pa.float64()),
                ("label", pa.int64()),
                ("ground_truth", pa.int64()),
            ]
        )

    def table(self, model_name: str, model_version: str, entries: Sequence[PayloadEntry]) -> Any:
        """The records of ``entries`` as one Arrow table."""
        import pyarrow as pa

        from kfpkit.core.preprocessing import _category_key

        sizes = [len(e.score) for e in entries]
        rows = int(sum(sizes))
        ids: List[str] = []
        for entry, size in zip(entries, sizes, strict=True):
            ids.extend([entry.request_id] * size)
        stamps = np.repeat(np.asarray([round(e.time * 1e6) for e in entries], dtype=np.int64), sizes)
        columns: Dict[str, Any] = {
            "request_id": pa.array(ids, pa.string()),
            "instance": pa.array(np.concatenate([np.arange(s, dtype=np.int32) for s in sizes]), pa.int32()),
            "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "model_name": pa.array([model_name] * rows, pa.string()),
            "model_version": pa.array([model_version] * rows, pa.string()),
        }
        for name in self.numeric:
            values = np.concatenate([np.asarray(e.columns[name], dtype=np.float64) for e in entries])
            columns[name] = pa.array(values, pa.float64(), from_pandas=True)
        for name in self.categorical:
            keys = [_category_key(v) for e in entries for v in e.columns[name]]
            columns[name] = pa.array([k if k != "" else None for k in keys], pa.string())
        scores = np.concatenate([np.asarray(e.score, dtype=np.float64) for e in entries])
        columns["score"] = pa.array(scores, pa.float64(), from_pandas=True)
        labels = np.concatenate([np.asarray(e.label, dtype=np.float64) for e in entries])
        columns["label"] = pa.array(labels, pa.float64(), from_pandas=True).cast(pa.int64())
        columns["ground_truth"] = pa.nulls(rows, pa.int64())
        return pa.table(columns, schema=self.schema)


def partition_path(model_name: str, model_version: str, hour: datetime) -> str:
    """``<model>/<version>/<YYYY-MM-DD>/<HH>`` of an hour (UTC)."""
    return f"{model_name}/{model_version}/{hour:%Y-%m-%d}/{hour:%H}"


def split_by_hour(table: Any) -> List[Tuple[datetime, Any]]:
    """``(hour, rows of that hour)`` of a payload table, in time order."""
    import pyarrow as pa

    hours = table.column("timestamp").cast(pa.int64()).to_numpy() // 3_600_000_000
    out = []
    for hour in np.unique(hours):
        mask = hours == hour
        part = table if mask.all() else table.filter(pa.array(mask))
        out.append((datetime.fromtimestamp(int(hour) * 3600, tz=timezone.utc), part))
    return out


def write_partitioned(uri: str, table: Any, file_name: str) -> List[str]:
    """Writes a payload table as Parquet, one file ``file_name`` per hour partition; returns the paths.

    The same ``file_name`` for the same rows rewrites the same files (the sink's compaction relies on it).
    """
    import fsspec.core
    import pyarrow.parquet as pq
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(uri)
    root = root.rstrip("/")
    written = []
    for hour, part in split_by_hour(table):
        model_name = part.column("model_name")[0].as_py()
        model_version = part.column("model_version")[0].as_py()
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


class PayloadLogger:
    """Logs scored requests of one model to ``uri`` off the request path.

    Args:
        uri: Payload-log root (local folder, ``gs://``, ``s3://``, any fsspec URL).
        model_name: Served model name (first partition level).
        model_version: Served version (second level; ``unversioned`` when unknown).
        spec: The model's preprocessing spec (feature names and kinds).
        sample_rate: Fraction of requests logged, in (0, 1]; a request is logged whole or not at all.
        max_queue: Requests the queue holds; more are dropped (counted, reason ``queue_full``).
        flush_rows: Rows per written file at most.
        flush_seconds: Longest time a record waits in memory before it is written.
        seed: Seed of the sampling (``None``: random).
    """

    def __init__(
        self,
        uri: str,
        model_name: str,
        model_version: Optional[str],
        spec: Any,
        sample_rate: float = 1.0,
        max_queue: int = DEFAULT_QUEUE_REQUESTS,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        seed: Optional[int] = None,
    ):
        if not 0 < sample_rate <= 1:
            raise ValueError(f"payload-log sample rate must be in (0, 1], got {sample_rate!r}")
        self.uri = uri
        self.model_name = model_name
        self.model_version = model_version or UNVERSIONED
        self.schema = PayloadSchema(spec)
        self.sample_rate = float(sample_rate)
        self.flush_rows = int(flush_rows)
        self.flush_seconds = float(flush_seconds)
        self._random = random.Random(seed)
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        metrics = payload_metrics()
        self._logged = metrics["logged"].labels(model_name=model_name)
        self._dropped_full = metrics["dropped"].labels(model_name=model_name, reason="queue_full")
        self._dropped_error = metrics["dropped"].labels(model_name=model_name, reason="write_error")
        self._stop = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._last_warning = 0.0
        self.files_written = 0
        self._thread = threading.Thread(target=self._run, name=f"payload-log-{model_name}", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # ------------------------------------------------------------------ request path
    def log(
        self,
        columns: Mapping[str, Sequence[Any]],
        score: np.ndarray,
        label: np.ndarray,
        request_id: Optional[str] = None,
    ) -> None:
        """Hands one scored request to the writer thread; never raises, never blocks."""
        if self._closed or (self.sample_rate < 1.0 and self._random.random() >= self.sample_rate):
            return
        entry = PayloadEntry(time.time(), request_id or uuid.uuid4().hex, columns, score, label)
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._dropped_full.inc(len(score))
            self._warn("payload log queue full: dropped %d record(s) of model %s", len(score))

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        # Polls (a few times a second) instead of blocking on the queue: a wake-up per request would make the
        # request thread hand over the GIL for every record.
        poll = min(POLL_SECONDS, self.flush_seconds)
        pending: List[PayloadEntry] = []
        rows = 0
        first = 0.0
        while True:
            stopping = self._stop.wait(poll)
            drained = self._drain()
            if drained and not pending:
                first = time.monotonic()
            pending.extend(drained)
            rows += sum(len(e.score) for e in drained)
            if pending and (rows >= self.flush_rows or time.monotonic() - first >= self.flush_seconds or stopping):
                self._write(pending)
                pending, rows = [], 0
            if stopping and self._queue.empty():
                return

    def _drain(self) -> List[PayloadEntry]:
        out = []
        while True:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                return out
            out.append(entry)

    def _write(self, entries: List[PayloadEntry]) -> None:
        rows = sum(len(e.score) for e in entries)
        try:
            table = self.schema.table(self.model_name, self.model_version, entries)
            name = f"part-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.parquet"
            self.files_written += len(write_partitioned(self.uri, table, name))
            self._logged.inc(rows)
        except Exception as exc:
            self._dropped_error.inc(rows)
            self._warn(
                f"payload log write to {self.uri} failed ({type(exc).__name__}: {str(exc).replace('%', '%%')}): "
                "dropped %d record(s) of model %s",
                rows,
            )

    def _warn(self, message: str, rows: int) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 10.0:  # at most one line per 10 s; the counter has every drop
            self._last_warning = now
            logger.warning(message, rows, self.model_name)

    # ------------------------------------------------------------------ shutdown
    def flush(self, timeout: float = 30.0) -> None:
        """Writes everything queued so far and stops the writer (same as :meth:`close`)."""
        self.close(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stops accepting records, writes what is queued, and joins the writer thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._thread.join(timeout)

    def install_sigterm_flush(self) -> None:
        """On SIGTERM: flush, then run the previous handler (or exit 143 when there was none).

        KServe's ModelServer later installs its own graceful-shutdown handlers; then :meth:`close` runs at
        interpreter exit instead (``atexit``), after the server has stopped taking requests.
        """
        previous = signal.getsignal(signal.SIGTERM)

        def _handler(signum: int, frame: Any) -> None:
            self.close()
            if callable(previous):
                previous(signum, frame)
            else:
                raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, _handler)
