"""Closed-loop HTTP load generators for the serving benchmark: Debian's ``wrk``, or a Python asyncio client.

Both keep ``connections`` keep-alive connections busy for ``duration_s`` seconds, each sending the next
request as soon as the previous response has arrived, and report requests per second and latency
percentiles. Only loopback URLs are accepted.

* ``wrk`` (C, epoll; ``apt-get install wrk``) with :file:`wrk_post.lua`: the peer-neutral choice, it costs
  the server under test almost nothing and is what the benchmark uses when it is installed;
* :func:`run_python_load`: raw-socket HTTP/1.1 on asyncio (uvloop when present), for machines without
  ``wrk``. One Python process tops out at a few thousand requests per second, so it understates a fast
  server; the benchmark prints which generator it used.

``python -m benchmarks.serving.loadgen --url URL --body-file F --connections 16 --duration 10`` runs the
Python client and prints its :class:`LoadResult` as JSON (so the benchmark can pin it to a CPU with
``taskset``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence
from urllib.parse import urlsplit

import numpy as np

from benchmarks import subprocess_env

WRK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk_post.lua")
LOOPBACK_HOSTS = ("localhost", "::1")


@dataclass
class LoadResult:
    """One closed-loop run. Latencies in milliseconds; ``errors`` are socket errors and timeouts,
    ``non_2xx`` responses with a status of 400 or more (wrk) / other than 200 (Python client)."""

    generator: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int

    def to_dict(self) -> dict:
        return asdict(self)


def is_loopback_url(url: str) -> bool:
    """True for ``http://`` URLs whose host is 127.0.0.0/8, ``localhost`` or ``[::1]``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "http":
        return False
    return host in LOOPBACK_HOSTS or re.fullmatch(r"127(\.\d{1,3}){3}", host) is not None


def _check_url(url: str) -> None:
    if not is_loopback_url(url):
        raise ValueError(f"refusing to load-test {url!r}: only http:// loopback addresses (127.0.0.0/8, ::1)")


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def resolve_generator(requested: str) -> str:
    """``"wrk"`` or ``"python"``: ``"auto"`` picks wrk when it is installed."""
    if requested == "auto":
        return "wrk" if wrk_available() else "python"
    return requested


def can_pin(no_pin: bool) -> bool:
    """Whether server and load generator go on separate CPUs (asked for, and at least two CPUs)."""
    return not no_pin and (os.cpu_count() or 1) >= 2


def pin_prefix(cpu: Optional[int]) -> List[str]:
    """``["taskset", "-c", str(cpu)]`` when ``cpu`` is given and taskset exists, else ``[]``."""
    if cpu is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(cpu)]


def run_wrk(
    url: str,
    body_file: str,
    connections: int,
    duration_s: float,
    cpu: Optional[int] = None,
    timeout_s: float = 5.0,
) -> LoadResult:
    """Runs ``wrk -t1 -c<connections> -d<duration_s>`` with :file:`wrk_post.lua` (optionally pinned to ``cpu``).

    Raises:
        RuntimeError: wrk failed or printed no summary.
    """
    _check_url(url)
    seconds = max(1, round(duration_s))
    command = [
        *pin_prefix(cpu),
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={max(1, round(timeout_s))}s",
        "-s", WRK_SCRIPT, url, "--", body_file,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"^WRK_JSON (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-1000:]}")
    out = json.loads(match.group(1))
    duration = out["duration_us"] / 1e6
    return LoadResult(
        generator="wrk",
        connections=connections,
        duration_s=duration,
        requests=out["requests"],
        rps=out["requests"] / duration if duration > 0 else 0.0,
        p50_ms=out["p50_us"] / 1000.0,
        p99_ms=out["p99_us"] / 1000.0,
        errors=out["connect_errors"] + out["read_errors"] + out["write_errors"] + out["timeouts"],
        non_2xx=out["status_errors"],
    )


def _request_bytes(url: str, body: bytes) -> bytes:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def _connection_loop(
    host: str, port: int, request: bytes, deadline: float, latencies: List[float], counts: List[int], timeout_s: float
) -> None:
    """One keep-alive connection: request, read the response (Content-Length framing), repeat until deadline."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, asyncio.TimeoutError):
        counts[0] += 1
        return
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
            status = int(head[9:12])
            match = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
            if match is None:
                raise ValueError("response without Content-Length (chunked responses are not supported)")
            await asyncio.wait_for(reader.readexactly(int(match.group(1))), timeout_s)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                counts[1] += 1
    except (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        counts[0] += 1
    finally:
        writer.close()


async def _python_load(url: str, body: bytes, connections: int, duration_s: float, timeout_s: float) -> LoadResult:
    parts = urlsplit(url)
    request = _request_bytes(url, body)
    latencies: List[float] = []
    counts = [0, 0]  # errors, non-200
    start = time.perf_counter()
    deadline = start + duration_s
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    await asyncio.gather(
        *(_connection_loop(host, port, request, deadline, latencies, counts, timeout_s) for _ in range(connections))
    )
    elapsed = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000.0 if latencies else np.asarray([np.nan])
    return LoadResult(
        generator="python-asyncio",
        connections=connections,
        duration_s=elapsed,
        requests=len(latencies),
        rps=len(latencies) / elapsed if elapsed > 0 else 0.0,
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
        errors=counts[0],
        non_2xx=counts[1],
    )


def run_python_load(url: str, body: bytes, connections: int, duration_s: float, timeout_s: float = 5.0) -> LoadResult:
    """The asyncio client in this process (uvloop when installed)."""
    _check_url(url)
    try:
        import uvloop

        return uvloop.run(_python_load(url, body, connections, duration_s, timeout_s))
    except ImportError:
        return asyncio.run(_python_load(url, body, connections, duration_s, timeout_s))


def run_python_load_process(
    url: str, body_file: str, connections: int, duration_s: float, cpu: Optional[int] = None
) -> LoadResult:
    """The asyncio client in its own process (pinned to ``cpu`` when given)."""
    _check_url(url)
    command = [
        *pin_prefix(cpu), sys.executable, "-m", "benchmarks.serving.loadgen",
        "--url", url, "--body-file", body_file, "--connections", str(connections), "--duration", str(duration_s),
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 120, check=False, env=subprocess_env()
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    return LoadResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def run_load(
    generator: str, url: str, body_file: str, connections: int, duration_s: float, cpu: Optional[int] = None
) -> LoadResult:
    """Dispatches to ``wrk`` or the Python client (``generator`` is ``"wrk"`` or ``"python"``)."""
    if generator == "wrk":
        return run_wrk(url, body_file, connections, duration_s, cpu=cpu)
    if generator == "python":
        return run_python_load_process(url, body_file, connections, duration_s, cpu=cpu)
    raise ValueError(f"unknown load generator {generator!r} (wrk or python)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Closed-loop POST load on a loopback URL; prints JSON.")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    args = parser.parse_args(argv)
    with open(args.body_file, "rb") as fh:
        body = fh.read()
    result = run_python_load(args.url, body, args.connections, args.duration)
    print(json.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
