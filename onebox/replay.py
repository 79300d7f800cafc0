"""A bounded loopback load generator: replays a table of feature rows as v1 predict requests.

``replay(url, model_name, rows, rps=..., duration_s=..., max_requests=...)`` sends batches of rows in
order (cycling) at a fixed rate from a few threads until the duration or the request count is reached,
or :meth:`Replay.stop` is called, and counts the answers by HTTP status.
"""

from __future__ import annotations

import collections
import http.client
import json
import math
import threading
import time
import urllib.parse
from typing import Any, Dict, List, Optional, Sequence


def read_rows(source: str, label_column: str = "") -> List[Dict[str, Any]]:
    """Feature rows of a CSV/Parquet/JSON Lines table (``label_column`` dropped), JSON-ready (NaN → null)."""
    import pandas as pd

    lowered = source.lower()
    if lowered.endswith((".parquet", ".pq")):
        frame = pd.read_parquet(source)
    elif lowered.endswith((".jsonl", ".json")):
        frame = pd.read_json(source, lines=True)
    else:
        frame = pd.read_csv(source)
    if label_column and label_column in frame.columns:
        frame = frame.drop(columns=[label_column])
    records = frame.to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in records]


class Replay:
    """Sends ``batches`` (lists of feature dicts) as ``POST {url}/v1/models/{model}:predict`` at ``rps``."""

    def __init__(
        self,
        url: str,
        model_name: str,
        batches: Sequence[Sequence[Dict[str, Any]]],
        rps: float,
        duration_s: float,
        max_requests: int = 1_000_000,
        threads: int = 4,
    ):
        if rps <= 0 or duration_s <= 0:
            raise ValueError("rps and duration must be positive")
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.path = f"/v1/models/{model_name}:predict"
        self.bodies = [json.dumps({"instances": list(b)}).encode() for b in batches]
        self.rps, self.duration_s, self.max_requests, self.threads = rps, duration_s, max_requests, threads
        self.status: Dict[int, int] = collections.Counter()
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: List[threading.Thread] = []

    def _next(self, start: float) -> Optional[bytes]:
        with self._lock:
            if self._stop.is_set() or self.sent >= self.max_requests or time.monotonic() - start >= self.duration_s:
                return None
            n = self.sent
            self.sent += 1
        due = start + n / self.rps
        delay = due - time.monotonic()
        if delay > 0 and self._stop.wait(delay):
            return None
        return self.bodies[n % len(self.bodies)]

    def _worker(self, start: float) -> None:
        conn: Optional[http.client.HTTPConnection] = None
        while True:
            body = self._next(start)
            if body is None:
                break
            code = 0  # connection-level failure
            for attempt in (0, 1):  # a kept-alive connection the server closed (nginx reload) is retried once
                reused = conn is not None
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                    conn.request("POST", self.path, body, {"Content-Type": "application/json"})
                    response = conn.getresponse()
                    response.read()
                    code = response.status
                    if response.getheader("connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException):
                    if conn is not None:
                        conn.close()
                    conn = None
                    if not reused or attempt:
                        break
            with self._lock:
                self.status[code] += 1
        if conn is not None:
            conn.close()

    def start(self) -> Replay:
        """Starts the sending threads and returns at once; the rate and the bounds count from now."""
        start = time.monotonic()
        self._workers = [threading.Thread(target=self._worker, args=(start,), daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> Dict[int, int]:
        """Stops sending (requests in flight finish) and returns the answers counted by HTTP status."""
        self._stop.set()
        return self.join()

    def join(self) -> Dict[int, int]:
        """Waits until the duration or the request count is reached; returns the answers by HTTP status.

        Status 0 counts the requests that failed at the connection level.
        """
        for worker in self._workers:
            worker.join()
        return dict(self.status)


def batches_of(rows: Sequence[Dict[str, Any]], size: int) -> List[List[Dict[str, Any]]]:
    """``rows`` cut into batches of ``size`` (the last one shorter)."""
    return [list(rows[i : i + size]) for i in range(0, len(rows), size)]
