"""Soak test of ``kfpkit serve``: a steady load at a fraction of the measured maximum, loopback only.

    python -m benchmarks.serving.soak [--minutes 10] [--fraction 0.8] [--connections 16] [--json-out FILE]

1. serves the benchmark LogisticRegression (:mod:`benchmarks.serving.models`) with ``kfpkit serve`` on a
   free 127.0.0.1 port, pinned to CPU 0;
2. measures the maximum rate: ``wrk`` (or the Python client) closed loop, 16 connections, 10 s, after a
   warm-up, the same one-row v2 request as ``make bench-serving``;
3. sends ``--fraction`` of that rate for ``--minutes`` from an open-loop, paced asyncio client (its own
   process would add nothing: it runs here, pinned to CPU 1). Latency is measured from each request's
   *scheduled* time, so a stall shows up as latency instead of silently lowering the rate;
4. reports, per minute: requests, errors (socket errors, timeouts, non-200), p50/p99; and overall: the
   server's RSS after the warm-up and at the end (growth in %), errors, the p99 drift (last minute /
   first minute) and the achieved rate. Goals (issue 8): RSS growth < 5 %, 0 errors; reported, not failed.

Bounded in time; the server is stopped at the end whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from benchmarks.serving import bench_serving, loadgen, models, servers

GOAL_RSS_GROWTH_PCT = 5.0


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` and its children, MiB."""
    import psutil

    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


async def paced_load(
    url: str, body: bytes, rate: float, connections: int, duration_s: float, window_s: float, on_window: Any
) -> List[Dict[str, Any]]:
    """Open-loop load at ``rate`` requests/s over ``connections`` keep-alive connections, per-window stats."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    request = loadgen._request_bytes(url, body)
    interval = connections / rate
    start = time.perf_counter() + 0.5
    end = start + duration_s
    windows: List[Dict[str, Any]] = []
    current: Dict[str, Any] = {"latencies": [], "errors": 0, "non_200": 0}

    async def connection(offset: float) -> None:
        scheduled = start + offset
        reader = writer = None
        while scheduled < end:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(parts.hostname, parts.port), timeout=5.0
                    )
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5.0)
                length = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
                await asyncio.wait_for(reader.readexactly(int(length.group(1)) if length else 0), timeout=5.0)
                current["latencies"].append(time.perf_counter() - scheduled)
                if head[9:12] != b"200":
                    current["non_200"] += 1
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, AttributeError):
                current["errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
            scheduled += interval
        if writer is not None:
            writer.close()

    async def windower() -> None:
        nonlocal current
        boundary = start + window_s
        while boundary <= end + 1e-6:
            await asyncio.sleep(max(0.0, boundary - time.perf_counter()))
            done, current = current, {"latencies": [], "errors": 0, "non_200": 0}
            ms = np.asarray(done["latencies"]) * 1000.0 if done["latencies"] else np.asarray([np.nan])
            window = {
                "minute": len(windows) + 1,
                "requests": len(done["latencies"]),
                "rps": len(done["latencies"]) / window_s,
                "errors": done["errors"] + done["non_200"],
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
            }
            windows.append(window)
            on_window(window)
            boundary += window_s

    await asyncio.gather(windower(), *(connection(i * interval / connections) for i in range(connections)))
    return windows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fraction", type=float, default=0.8, help="of the measured maximum rate")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per reported window")
    parser.add_argument("--max-duration", type=float, default=10.0, help="seconds of the max-rate measurement")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--json-out", default=None)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    generator = loadgen.resolve_generator(args.load_generator)
    server_cpu, client_cpu = (0, 1) if loadgen.can_pin(args.no_pin) else (None, None)
    with tempfile.TemporaryDirectory(prefix="kfpkit-soak-") as work:
        model = models.build_bench_model(os.path.join(work, "model"))
        body = bench_serving.server_bodies(models.request_rows(1), ["kfpkit"])["kfpkit"]
        body_file = os.path.join(work, "body.json")
        with open(body_file, "wb") as fh:
            fh.write(body)
        port = servers.free_port()
        command = servers.kfpkit_command(model.kfpkit_dir, bench_serving.MODEL_NAME, port)
        server = servers.ServerProcess(
            "kfpkit", command, port, bench_serving.READY_PATH, os.path.join(work, "server.log"), cpu=server_cpu
        )
        url = server.base_url + bench_serving.INFER_PATH
        with servers.ServerGroup([server]):
            loadgen.run_load(generator, url, body_file, args.connections, 3.0, cpu=client_cpu)
            peak = loadgen.run_load(generator, url, body_file, args.connections, args.max_duration, cpu=client_cpu)
            rate = args.fraction * peak.rps
            print(
                f"max: {peak.rps:.0f} rps (p99 {peak.p99_ms:.2f} ms, {generator}, {args.connections} connections); "
                f"soak at {rate:.0f} rps for {args.minutes:g} min (loadavg {os.getloadavg()[0]:.2f})",
                flush=True,
            )
            if client_cpu is not None:
                os.sched_setaffinity(0, {client_cpu})
            rss_start = rss_mb(server.process.pid)
            rss_samples = [rss_start]

            def on_window(window: Dict[str, Any]) -> None:
                rss_samples.append(rss_mb(server.process.pid))
                print(
                    f"  window {window['minute']:>2}: {window['requests']:>7} req  {window['rps']:>6.0f} rps  "
                    f"errors {window['errors']}  p50 {window['p50_ms']:6.2f} ms  p99 {window['p99_ms']:7.2f} ms  "
                    f"RSS {rss_samples[-1]:.1f} MiB  (loadavg {os.getloadavg()[0]:.2f})",
                    flush=True,
                )

            try:
                import uvloop

                runner = uvloop.run
            except ImportError:
                runner = asyncio.run
            windows = runner(paced_load(url, body, rate, args.connections, args.minutes * 60.0, args.window, on_window))
            if server.process.poll() is not None:
                print(f"the server died:\n{server.log_tail()}", file=sys.stderr)
                return 1
            rss_end = rss_mb(server.process.pid)
    errors = sum(w["errors"] for w in windows)
    growth = (rss_end - rss_start) / rss_start * 100.0
    drift = windows[-1]["p99_ms"] / windows[0]["p99_ms"] if windows and windows[0]["p99_ms"] > 0 else float("nan")
    achieved = sum(w["requests"] for w in windows) / (len(windows) * args.window) if windows else 0.0
    summary = {
        "max_rps": peak.rps,
        "target_rps": rate,
        "achieved_rps": achieved,
        "minutes": args.minutes,
        "requests": sum(w["requests"] for w in windows),
        "errors": errors,
        "rss_start_mib": rss_start,
        "rss_end_mib": rss_end,
        "rss_growth_pct": growth,
        "p99_first_ms": windows[0]["p99_ms"] if windows else None,
        "p99_last_ms": windows[-1]["p99_ms"] if windows else None,
        "p99_drift": drift,
        "windows": windows,
        "generator": generator,
    }
    print(
        f"soak: {summary['requests']} requests at {achieved:.0f} rps (target {rate:.0f}), errors {errors}; "
        f"RSS {rss_start:.1f} -> {rss_end:.1f} MiB ({growth:+.2f} %, goal < {GOAL_RSS_GROWTH_PCT:g} %); "
        f"p99 first/last minute {summary['p99_first_ms']:.2f} / {summary['p99_last_ms']:.2f} ms (x{drift:.2f})"
    )
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
