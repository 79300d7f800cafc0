"""Payload-logging overhead: ``kfpkit serve`` with ``--payload-log`` against without, in the same run.

    .venv/bin/python -m benchmarks.drift.bench_payload_log [--seconds 10] [--rounds 3] [--connections 8]

One sklearn model (trained by kfpkit's train on synthetic fraud data), one-row v1 requests from ``wrk`` on
127.0.0.1, rounds alternating off/on so that machine load hits both alike. Reports requests per second per
round, the median ratio on/off (goal >= 0.85) and the records written (every request logged, none dropped).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

import httpx

from benchmarks import subprocess_env

GOAL_RATIO = 0.85


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(work: str) -> tuple:
    from kfpkit.components.ingest.synthetic import generate_fraud
    from kfpkit.components.train.logic import TrainParams, train_model
    from kfpkit.core.model_dir import write_manifest

    frame = generate_fraud(6000, seed=2, fraud_rate=0.05)
    frame.iloc[:5000].to_parquet(os.path.join(work, "train.parquet"), index=False)
    frame.iloc[5000:].to_parquet(os.path.join(work, "eval.parquet"), index=False)
    model_dir = os.path.join(work, "registry", "fraud", "1")
    train_model(
        os.path.join(work, "train.parquet"), os.path.join(work, "eval.parquet"), "is_fraud", model_dir,
        TrainParams("sklearn"),
    )  # fmt: skip
    write_manifest(model_dir)
    row = frame.iloc[5000].drop(labels=["is_fraud"]).to_dict()
    row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
    return model_dir, {"instances": [row]}


def serve(model_dir: str, port: int, payload_log: Optional[str]) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "kfpkit.cli.serve", "--model-dir", model_dir, "--model-name", "fraud",
        "--host", "127.0.0.1", "--http-port", str(port), "--grpc-port", str(_free_port()),
    ]  # fmt: skip
    if payload_log:
        cmd += ["--payload-log", payload_log, "--payload-log-flush-seconds", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env())
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("kfpkit serve did not get ready")


def wrk(port: int, body: dict, seconds: int, connections: int, script_dir: str) -> float:
    script = os.path.join(script_dir, "post.lua")
    with open(script, "w", encoding="utf-8") as fh:
        fh.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
        )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script, f"http://127.0.0.1:{port}/v1/models/fraud:predict"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_payload_log", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per round and mode")
    parser.add_argument("--rounds", type=int, default=3, help="off/on rounds (medians reported)")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk not found (apt-get install -y wrk)", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="kfpkit-bench-payload-")
    model_dir, body = train(work)
    rates = {"off": [], "on": []}
    log_root = os.path.join(work, "payload")
    for i in range(args.rounds):
        for mode in ("off", "on"):
            port = _free_port()
            proc = serve(model_dir, port, log_root if mode == "on" else None)
            try:
                rates[mode].append(wrk(port, body, args.seconds, args.connections, work))
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
            print(f"round {i + 1} logging {mode:3s}: {rates[mode][-1]:,.0f} requests/s", flush=True)
    import pyarrow.parquet as pq

    files = glob.glob(os.path.join(log_root, "**", "*.parquet"), recursive=True)
    written = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    ratios = [on / off for on, off in zip(rates["on"], rates["off"], strict=True)]
    ratio = statistics.median(ratios)
    print(
        f"median rps off {statistics.median(rates['off']):,.0f}, on {statistics.median(rates['on']):,.0f}; "
        f"ratio on/off {ratio:.3f} (goal >= {GOAL_RATIO}: {'met' if ratio >= GOAL_RATIO else 'MISSED'}); "
        f"{written:,} payload records written in {len(files)} files"
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
