"""``kfpkit serve --payload-log``: REST (v1, v2) and gRPC requests become payload records, flushed on SIGTERM,
and the monitor reads them back against the trained model's baseline profile."""

import asyncio
import glob
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from kfpkit.components.ingest.synthetic import generate_fraud
from kfpkit.components.monitor import logic
from kfpkit.components.train.logic import TrainParams, train_model
from kfpkit.core.model_dir import write_manifest

LABEL = "is_fraud"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc, base, timeout_s=90):
    """Polls the server's v2 readiness until it answers 200; fails when the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        try:
            if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "kfpkit serve did not get ready"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    frame = generate_fraud(4000, seed=1, fraud_rate=0.08)
    frame.iloc[:3000].to_parquet(root / "train.parquet", index=False)
    frame.iloc[3000:].to_parquet(root / "eval.parquet", index=False)
    model_dir = root / "registry" / "fraud" / "2"
    train_model(str(root / "train.parquet"), str(root / "eval.parquet"), LABEL, str(model_dir), TrainParams("sklearn"))
    write_manifest(str(model_dir))  # as push does
    return str(model_dir), frame.iloc[3000:].drop(columns=[LABEL])


def test_rest_and_grpc_requests_are_logged_flushed_on_sigterm_and_monitorable(tmp_path, trained):
    from kserve import InferenceGRPCClient
    from kserve.protocol.infer_type import InferInput, InferRequest

    model_dir, rows = trained
    http_port, grpc_port = _free_port(), _free_port()
    log_root = tmp_path / "payload"
    cmd = [
        sys.executable, "-m", "kfpkit.cli.serve", "--model-dir", model_dir, "--model-name", "fraud",
        "--host", "127.0.0.1", "--http-port", str(http_port), "--grpc-port", str(grpc_port),
        "--payload-log", str(log_root), "--payload-log-flush-seconds", "3600",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http_port}"
    try:
        _wait_ready(proc, base)
        records = rows.head(40).to_dict(orient="records")
        features = [c for c in rows.columns]
        for i in range(10):  # v1: 10 requests x 2 instances
            batch = [
                {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                for r in records[2 * i : 2 * i + 2]
            ]
            assert httpx.post(f"{base}/v1/models/fraud:predict", json={"instances": batch}).status_code == 200
        numeric = rows.select_dtypes("number").columns
        inputs = [
            {"name": c, "datatype": "FP64" if c in numeric else "BYTES", "shape": [3],
             "data": [None if isinstance(v, float) and np.isnan(v) else v for v in rows[c].head(3).tolist()]}
            for c in features
        ]  # fmt: skip
        response = httpx.post(f"{base}/v2/models/fraud/infer", json={"id": "rest-v2", "inputs": inputs})
        assert response.status_code == 200, response.text

        async def grpc_call():
            client = InferenceGRPCClient(url=f"127.0.0.1:{grpc_port}", timeout=30, retries=0)
            try:
                grpc_inputs = []
                for c in features:
                    values = rows[c].iloc[3:5]
                    item = InferInput(name=c, shape=[2], datatype="FP64" if c in numeric else "BYTES")
                    item.data = values.fillna(0).tolist() if c in numeric else values.fillna("").tolist()
                    grpc_inputs.append(item)
                return await client.infer(InferRequest("fraud", grpc_inputs, request_id="grpc-1"))
            finally:
                await client.close()

        asyncio.run(asyncio.wait_for(grpc_call(), timeout=60))
        assert not glob.glob(str(log_root / "**" / "*.parquet"), recursive=True)  # still queued
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    files = glob.glob(str(log_root / "fraud" / "2" / "*" / "*" / "*.parquet"))
    table = pq.ParquetDataset(files).read()
    assert table.num_rows == 20 + 3 + 2
    ids = table.column("request_id").to_pylist()
    assert ids.count("rest-v2") == 3 and ids.count("grpc-1") == 2
    assert all(0 <= s <= 1 for s in table.column("score").to_pylist())

    result = logic.run_monitor(model_dir, str(log_root), logic.OutputPaths())
    assert result.rows == 25 and not result.drift_detected and result.score is not None
