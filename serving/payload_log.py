"""The predictor-side payload logger (``kfpkit serve --payload-log URI``).

It writes the **payload record** of :mod:`kfpkit.core.payload_record` (its columns, Arrow schema, version tag
and ``<URI>/<model_name>/<model_version>/<YYYY-MM-DD>/<HH>/part-*.parquet`` layout live there), the same
record that ``kfpkit payload-sink`` writes.

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
import queue
import random
import signal
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from kfpkit.core.payload_record import UNVERSIONED, PayloadEntry, PayloadSchema, write_partitioned

logger = logging.getLogger("kfpkit.serving.payload")

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
        out: List[PayloadEntry] = []
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
