"""Crash test of ``kfpkit payload-sink``: kill -9 mid-stream, restart, no acknowledged record lost, no duplicates."""

import glob
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import orjson
import pyarrow.parquet as pq

PAIRS = 240


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model_dir, spool, out, port):
    cmd = [
        sys.executable, "-m", "kfpkit.cli", "payload-sink", "--model", f"fraud={model_dir}",
        "--spool", spool, "--out", out, "--host", "127.0.0.1", "--port", str(port),
        "--segment-events", "37", "--compact-seconds", "3600",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"payload sink did not start: {proc.stdout.read().decode()[-2000:]}")


def _deliver(port, ph, start, stop, acked, stop_flag=None):
    """Sends request+response pairs; records the ids whose two events were both acknowledged."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        for i in range(start, stop):
            if stop_flag is not None and stop_flag.is_set():
                return
            event_id = f"pair-{i:04d}"
            try:
                ok = all(
                    client.post("/", headers=ph.ce_headers(event_id, kind), content=orjson.dumps(body)).status_code
                    == 200
                    for kind, body in (("request", ph.v1_request(2, i)), ("response", ph.v1_response(2, i)))
                )
            except httpx.TransportError:
                return
            if ok:
                acked.add(event_id)


def test_kill_9_mid_stream_loses_no_acknowledged_record_and_writes_none_twice(tmp_path, model_dir, ph):
    spool, out, port = str(tmp_path / "spool"), str(tmp_path / "out"), _free_port()
    acked: set = set()
    proc = _start(model_dir, spool, out, port)
    sender = threading.Thread(target=_deliver, args=(port, ph, 0, PAIRS, acked))
    sender.start()
    while len(acked) < 90 and sender.is_alive():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    sender.join(timeout=30)
    before_crash = set(acked)
    assert 90 <= len(before_crash) < PAIRS, "the kill must land mid-stream"
    assert glob.glob(os.path.join(spool, "segment-*.jsonl")), "the crash left spooled events"

    port = _free_port()
    proc = _start(model_dir, spool, out, port)
    resume = max(int(i.split("-")[1]) for i in before_crash) - 10  # at-least-once: redeliver the last ten
    _deliver(port, ph, resume, PAIRS, acked)
    proc.send_signal(signal.SIGTERM)
    # a graceful shutdown (uvicorn re-raises the signal after it, hence -SIGTERM) compacts what is joined
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM), proc.stdout.read().decode()[-2000:]

    files = sorted(glob.glob(os.path.join(out, "**", "*.parquet"), recursive=True))
    table = pq.ParquetDataset(files).read()
    keys = list(zip(table.column("request_id").to_pylist(), table.column("instance").to_pylist(), strict=True))
    assert len(keys) == len(set(keys)), "a record was written twice"
    written = {k[0] for k in keys}
    assert before_crash <= written, f"acknowledged before the crash but lost: {sorted(before_crash - written)[:5]}"
    assert acked <= written and len(written) == PAIRS, sorted(set(f"pair-{i:04d}" for i in range(PAIRS)) - written)
