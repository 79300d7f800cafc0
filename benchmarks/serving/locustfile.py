"""Locust load test of a kfpkit predictor: v1 and v2 requests from a prepared bodies file, loopback only.

Run it through ``python -m benchmarks.serving.loadtest`` (``make loadtest``), which starts the server and
writes the bodies file; directly::

    PYTHONPATH=. locust -f benchmarks/serving/locustfile.py --headless --host http://127.0.0.1:8080 \\
        -u 16 -r 16 --run-time 20s --bodies-file bodies.json [--max-requests 100000]

``--bodies-file`` is JSON ``{"requests": [{"name": ..., "path": ..., "weight": int, "body": {...}}, ...]}``;
each simulated user picks a request at random (by weight), POSTs it as soon as the previous answer arrived
(closed loop, no think time), and counts a failure for any status other than 200 or an answer without
``outputs``/``predictions``. ``--max-requests`` stops the test after that many requests (0: only
``--run-time`` bounds it). ``--summary-file`` receives the final statistics as JSON when locust quits
(``{"entries": [{"name", "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms"}, ...]}``, the
last entry named ``Aggregated``). A ``--host`` outside 127.0.0.0/8 / ``localhost`` / ``[::1]`` is refused
before any user starts.

Besides locust it imports only :mod:`benchmarks.serving.loadgen` (for the loopback check).
"""

from __future__ import annotations

import json
import logging
import random
import sys
from typing import Any, Dict, List

import gevent
from locust import FastHttpUser, constant, events, task

from benchmarks.serving.loadgen import is_loopback_url

logger = logging.getLogger("kfpkit.loadtest")
_REQUESTS: List[Dict[str, Any]] = []
_WEIGHTS: List[int] = []
_STATE: Dict[str, Any] = {"requests": 0, "limit": 0, "stopping": False, "runner": None}


def load_requests(path: str) -> List[Dict[str, Any]]:
    """The request list of a bodies file, each with its body pre-serialized to bytes (``data``).

    Raises:
        ValueError: the file has no requests, or a request lacks ``path`` or ``body``.
    """
    with open(path, encoding="utf-8") as fh:
        spec = json.load(fh)
    requests = spec.get("requests") if isinstance(spec, dict) else None
    if not requests:
        raise ValueError(f"{path}: no 'requests' list")
    out = []
    for i, item in enumerate(requests):
        if not isinstance(item, dict) or "path" not in item or "body" not in item:
            raise ValueError(f"{path}: requests[{i}] needs 'path' and 'body'")
        out.append(
            {
                "name": str(item.get("name", item["path"])),
                "path": item["path"],
                "weight": int(item.get("weight", 1)),
                "data": json.dumps(item["body"], separators=(",", ":")).encode(),
            }
        )
    return out


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument("--bodies-file", type=str, default="", help="JSON file of the requests to send")
    parser.add_argument("--max-requests", type=int, default=0, help="stop after this many requests (0: no limit)")
    parser.add_argument("--summary-file", type=str, default="", help="write the final statistics here (JSON)")


@events.init.add_listener
def _on_init(environment: Any, runner: Any = None, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    host = environment.host or getattr(options, "host", "")
    if not is_loopback_url(host):
        logger.error("refusing to load-test %r: only http:// loopback hosts (127.0.0.0/8, localhost, [::1])", host)
        sys.exit(2)
    if not options.bodies_file:
        logger.error("--bodies-file is required")
        sys.exit(2)
    _REQUESTS[:] = load_requests(options.bodies_file)
    _WEIGHTS[:] = [r["weight"] for r in _REQUESTS]
    _STATE["limit"] = max(0, options.max_requests)
    _STATE["runner"] = runner


@events.request.add_listener
def _count_request(**_kwargs: Any) -> None:
    _STATE["requests"] += 1
    if _STATE["limit"] and _STATE["requests"] >= _STATE["limit"] and not _STATE["stopping"]:
        _STATE["stopping"] = True
        if _STATE["runner"] is not None:
            gevent.spawn(_STATE["runner"].quit)  # not from this greenlet: quit() kills the users


def _entry_summary(entry: Any, name: str) -> Dict[str, Any]:
    def percentile(p: float) -> float:
        return float(entry.get_response_time_percentile(p)) if entry.num_requests else float("nan")

    return {
        "name": name,
        "requests": int(entry.num_requests),
        "failures": int(entry.num_failures),
        "rps": float(entry.total_rps),
        "p50_ms": percentile(0.5),
        "p95_ms": percentile(0.95),
        "p99_ms": percentile(0.99),
        "max_ms": float(entry.max_response_time or 0.0),
    }


@events.quitting.add_listener
def _write_summary(environment: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None or not options.summary_file:
        return
    stats = environment.stats
    entries = [_entry_summary(e, e.name) for e in sorted(stats.entries.values(), key=lambda e: e.name)]
    entries.append(_entry_summary(stats.total, "Aggregated"))
    with open(options.summary_file, "w", encoding="utf-8") as fh:
        json.dump({"entries": entries}, fh, indent=2)


class PredictorUser(FastHttpUser):
    """A client that POSTs prepared v1/v2 requests back to back."""

    wait_time = constant(0)

    @task
    def infer(self) -> None:
        item = random.choices(_REQUESTS, weights=_WEIGHTS, k=1)[0]
        with self.client.post(
            item["path"],
            data=item["data"],
            headers={"Content-Type": "application/json"},
            name=item["name"],
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {(response.text or '')[:200]}")
            elif b'"outputs"' not in response.content and b'"predictions"' not in response.content:
                response.failure(f"no outputs/predictions in {response.content[:200]!r}")
