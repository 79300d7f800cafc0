"""`kfpkit serve` as a real process on 127.0.0.1, queried by an independent client (KServe's InferenceRESTClient)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import httpx
import numpy as np
import pytest

from kfpkit.cli import serve as cli
from kfpkit.core import model_dir as md

STARTUP_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def running_server(torch_dir, tmp_path, kit):
    """``python -m kfpkit.cli.serve`` on a free loopback port; always stopped (SIGTERM, then SIGKILL)."""
    port = _free_port()
    log_path = tmp_path / "server.log"
    args = [
        "--model-dir", torch_dir, "--model-name", "fraud", "--http-port", str(port),
        "--host", "127.0.0.1", "--enable_grpc", "false", "--model-version", "3",
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    with kit.serve_process(args, f"{base_url}/v2/models/fraud/ready", log_path):
        yield base_url, log_path


def test_kserve_rest_client_gets_offline_predictions_from_a_loopback_server(running_server, torch_dir, frame):
    from kserve import InferenceRESTClient, RESTConfig
    from kserve.protocol.infer_type import InferInput, InferRequest

    base_url, log_path = running_server
    loaded = md.load_model(torch_dir)
    spec = loaded.spec
    rows = frame.head(12)
    expected = loaded.predict_proba(rows)

    inputs = []
    for name in spec.feature_order:
        if name in spec.categorical_names:
            values = np.array(["" if v is None else str(v) for v in rows[name].tolist()], dtype=object)
            item = InferInput(name=name, shape=[len(rows)], datatype="BYTES")
        else:
            values = rows[name].to_numpy(dtype=np.float64)
            item = InferInput(name=name, shape=[len(rows)], datatype="FP64")
        item.set_data_from_numpy(values, binary_data=False)
        inputs.append(item)
    v1_instances = [
        [None if (isinstance(v, float) and np.isnan(v)) else v for v in row]
        for row in rows[spec.feature_order].astype(object).to_numpy().tolist()
    ]

    async def query():
        v2_client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=20, retries=0))
        v1_client = InferenceRESTClient(RESTConfig(protocol="v1", timeout=20, retries=0))
        try:
            v2 = await v2_client.infer(base_url, InferRequest("fraud", inputs, request_id="r-1"), model_name="fraud")
            v1 = await v1_client.infer(base_url, {"instances": v1_instances}, model_name="fraud")
            live = await v2_client.is_server_ready(base_url)
            with pytest.raises(httpx.HTTPStatusError) as bad:
                await v1_client.infer(base_url, {"instances": [[1.0]]}, model_name="fraud")
            return v2, v1, live, bad.value.response
        finally:
            await v2_client.close()
            await v1_client.close()

    v2, v1, ready, bad = asyncio.run(asyncio.wait_for(query(), timeout=60))
    assert ready is True
    assert v2.id == "r-1" and v2.model_name == "fraud"
    probability = v2.get_output_by_name("probability")
    assert probability.datatype == "FP32"
    np.testing.assert_allclose(probability.as_numpy(), expected, rtol=1e-6, atol=1e-7)
    assert (
        v2.get_output_by_name("label").as_numpy().tolist()
        == (expected >= loaded.decision_threshold).astype(int).tolist()
    )
    np.testing.assert_allclose([p["probability"] for p in v1["predictions"]], expected, atol=1e-9)
    assert bad.status_code == 400 and "expected a list of 5 values" in bad.json()["error"]

    meta = httpx.get(f"{base_url}/v2/models/fraud", timeout=5).json()
    assert [i["name"] for i in meta["inputs"]] == spec.feature_order
    metrics = httpx.get(f"{base_url}/metrics", timeout=5).text
    assert 'kfpkit_requests_total{model_name="fraud",outcome="success",protocol="v2"} 1.0' in metrics
    raw = httpx.post(
        f"{base_url}/v2/models/fraud/infer", content=b"{", headers={"content-type": "application/json"}, timeout=5
    )
    assert raw.status_code == 400
    assert raw.json()["error"].startswith("malformed JSON")
    assert "model fraud loaded" in log_path.read_text()
    log = log_path.read_text()
    assert "/v2/models/fraud/infer" not in log  # no access-log line on the inference path
    assert "GET /v2/models/fraud HTTP" not in log  # the access log is off at the source by default


def test_cli_refuses_a_tampered_model_with_exit_status_1(torch_dir, copy_dir, caplog):
    directory = copy_dir(torch_dir)
    with open(os.path.join(directory, md.PREPROCESSING_FILE), "a", encoding="utf-8") as fh:
        fh.write(" ")
    with caplog.at_level(logging.ERROR, logger="kfpkit.serving"):
        status = cli.main(["--model-dir", directory, "--model-name", "m", "--http-port", "0", "--host", "127.0.0.1",
                           "--configure_logging", "false"])  # fmt: skip
    assert status == 1
    assert "model m refused" in caplog.text and "sha256 mismatch in preprocessing.json" in caplog.text


def test_cli_refuses_a_missing_registry_version(tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="kfpkit.serving"):
        status = cli.main(
            ["--model-dir", f"file://{tmp_path}/nope/1", "--model-name", "m", "--configure_logging", "false"]
        )
    assert status == 1 and "model m refused" in caplog.text


def test_cli_parser_accepts_kserve_flags_and_dashed_aliases():
    args = cli.build_parser().parse_args(
        [
            "--model-dir",
            "/m",
            "--model-name",
            "fraud",
            "--http-port",
            "9000",
            "--grpc_port",
            "9001",
            "--enable_grpc",
            "false",
        ]
    )
    assert (args.model_name, args.http_port, args.grpc_port, args.enable_grpc) == ("fraud", 9000, 9001, False)
    defaults = cli.build_parser().parse_args(["--model-dir", "/m", "--model_name", "x"])
    assert defaults.model_name == "x" and defaults.http_port == 8080 and defaults.fast_path is True
    assert cli.default_model_version("gs://bucket/registry/fraud/12") == "12"
    assert cli.default_model_version("/tmp/model") is None
