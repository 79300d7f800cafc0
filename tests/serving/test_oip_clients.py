"""Independent Open Inference Protocol clients against `kfpkit serve` on 127.0.0.1 (REST and gRPC).

Triton's ``tritonclient.http`` (binary tensors on and off) and ``tritonclient.grpc``, KServe's
``InferenceRESTClient`` and ``InferenceGRPCClient`` (typed and raw contents), and a curl-style raw v1 POST
all get the probabilities that offline scoring (``LoadedModel.predict_proba``) gives, to 1e-6.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from kfpkit.core import model_dir as md
from kfpkit.core.preprocessing import _category_key

STARTUP_TIMEOUT_S = 60.0
ATOL = 1e-6


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(torch_dir, tmp_path_factory, kit):
    """`kfpkit serve` with REST and gRPC on loopback ports; stopped with SIGTERM (then SIGKILL)."""
    http_port, grpc_port = _free_port(), _free_port()
    log_path = tmp_path_factory.mktemp("oip") / "server.log"
    args = [
        "--model-dir", torch_dir, "--model-name", "fraud", "--host", "127.0.0.1", "--http-port", str(http_port),
        "--grpc-port", str(grpc_port), "--model-version", "4",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{http_port}"
    with kit.serve_process(args, f"{base}/v2/health/ready", log_path):
        _wait_for_port(grpc_port)
        yield {"http": f"127.0.0.1:{http_port}", "grpc": f"127.0.0.1:{grpc_port}", "base": base, "log": log_path}


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"gRPC port {port} not open within {timeout} s")


@pytest.fixture(scope="module")
def reference(torch_dir, frame):
    """Rows (with missing amounts and countries), their offline probabilities and labels, and per-feature arrays."""
    loaded = md.load_model(torch_dir)
    missing = frame[frame["amount"].isna()].head(3).index.union(frame[frame["country"].isna()].head(3).index)
    rows = frame.loc[frame.index[:30].union(missing)]
    assert rows["amount"].isna().any() and rows["country"].isna().any()
    expected = loaded.predict_proba(rows)
    spec = loaded.spec
    columns = {}
    for name in spec.feature_order:
        if name in spec.categorical_names:
            columns[name] = ("BYTES", np.array([_category_key(v) for v in rows[name].tolist()], dtype=object))
        elif name == "hour":
            columns[name] = ("INT64", rows[name].to_numpy(dtype=np.int64))
        else:
            columns[name] = ("FP64", rows[name].to_numpy(dtype=np.float64))
    labels = (expected >= loaded.decision_threshold).astype(np.int64)
    return {"expected": expected, "labels": labels, "columns": columns, "rows": rows, "spec": spec}


def _json_safe(reference):
    """The rows without missing amounts (JSON has no NaN; JSON clients send null only via raw bodies)."""
    keep = ~np.isnan(reference["columns"]["amount"][1])
    return {name: (dt, values[keep]) for name, (dt, values) in reference["columns"].items()}, keep


@pytest.mark.parametrize("binary_data", [True, False], ids=["binary", "json"])
def test_tritonclient_http_gets_offline_probabilities(server, reference, binary_data):
    import tritonclient.http as httpclient

    columns, keep = (reference["columns"], slice(None)) if binary_data else _json_safe(reference)
    client = httpclient.InferenceServerClient(url=server["http"], network_timeout=30.0)
    try:
        assert client.is_server_ready() and client.is_model_ready("fraud")
        inputs = []
        for name, (datatype, values) in columns.items():
            item = httpclient.InferInput(name, [len(values)], datatype)
            item.set_data_from_numpy(values, binary_data=binary_data)
            inputs.append(item)
        outputs = [httpclient.InferRequestedOutput(n, binary_data=binary_data) for n in ("probability", "label")]
        # the client's defaults: no outputs listed -> binary_data_output for all
        default = client.infer("fraud", inputs, request_id="t-1")
        chosen = client.infer("fraud", inputs, outputs=outputs)
    finally:
        client.close()
    expected, labels = reference["expected"][keep], reference["labels"][keep]
    for result in (default, chosen):
        np.testing.assert_allclose(result.as_numpy("probability"), expected, rtol=0, atol=ATOL)
        assert result.as_numpy("label").tolist() == labels.tolist()
    assert default.get_response()["id"] == "t-1"
    assert default.get_response()["model_version"] == "4"


TRITON_GRPC_SCRIPT = """
import json, sys
import numpy as np
import tritonclient.grpc as grpcclient

url, arrays_path, out_path = sys.argv[1:4]
arrays = np.load(arrays_path, allow_pickle=True)
spec = json.loads(str(arrays["__spec__"]))
client = grpcclient.InferenceServerClient(url=url)
out = {"ready": bool(client.is_server_ready() and client.is_model_ready("fraud"))}
out["metadata_inputs"] = [i.name for i in client.get_model_metadata("fraud").inputs]
inputs = []
for name, datatype in spec:
    item = grpcclient.InferInput(name, [len(arrays[name])], datatype)
    item.set_data_from_numpy(arrays[name])
    inputs.append(item)
result = client.infer("fraud", inputs, request_id="g-1", client_timeout=30)
only_label = client.infer("fraud", inputs, outputs=[grpcclient.InferRequestedOutput("label")], client_timeout=30)
out["id"] = result.get_response().id
out["probability"] = result.as_numpy("probability").astype(float).tolist()
out["label"] = result.as_numpy("label").tolist()
out["only_label_outputs"] = [o.name for o in only_label.get_response().outputs]
client.close()
json.dump(out, open(out_path, "w"))
"""


def test_tritonclient_grpc_gets_offline_probabilities(server, reference, tmp_path):
    """In a subprocess: tritonclient's and KServe's generated gRPC modules both define ``inference.*``
    in protobuf's default descriptor pool, so they cannot be imported into one process."""
    import json

    arrays = {name: values for name, (_dt, values) in reference["columns"].items()}
    spec = [[name, dt] for name, (dt, _values) in reference["columns"].items()]
    np.savez(tmp_path / "inputs.npz", __spec__=np.array(json.dumps(spec)), **arrays)
    out_path = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, "-c", TRITON_GRPC_SCRIPT, server["grpc"], str(tmp_path / "inputs.npz"), str(out_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(out_path.read_text())
    assert out["ready"] is True
    assert out["metadata_inputs"] == reference["spec"].feature_order
    np.testing.assert_allclose(out["probability"], reference["expected"], rtol=0, atol=ATOL)
    assert out["label"] == reference["labels"].tolist()
    assert out["id"] == "g-1"
    assert out["only_label_outputs"] == ["label"]


def test_kserve_clients_rest_and_grpc_typed_and_raw_get_offline_probabilities(server, reference):
    from kserve import InferenceGRPCClient, InferenceRESTClient, RESTConfig
    from kserve.protocol.infer_type import InferInput, InferRequest

    def request(raw: bool, columns) -> InferRequest:
        inputs = []
        for name, (datatype, values) in columns.items():
            item = InferInput(name=name, shape=[len(values)], datatype=datatype)
            if raw:
                item.set_data_from_numpy(values, binary_data=True)
            else:
                item.data = values.tolist()
            inputs.append(item)
        return InferRequest("fraud", inputs, request_id="k-1")

    json_columns, keep = _json_safe(reference)

    async def query():
        rest = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30, retries=0))
        grpc_client = InferenceGRPCClient(url=server["grpc"], timeout=30, retries=0)
        try:
            return (
                await rest.infer(server["base"], request(False, json_columns), model_name="fraud"),
                await grpc_client.infer(request(False, reference["columns"])),
                await grpc_client.infer(request(True, reference["columns"])),
                await grpc_client.is_server_ready(),
            )
        finally:
            await rest.close()
            await grpc_client.close()

    rest_json, grpc_typed, grpc_raw, ready = asyncio.run(asyncio.wait_for(query(), timeout=90))
    assert ready is True
    np.testing.assert_allclose(
        rest_json.get_output_by_name("probability").as_numpy(), reference["expected"][keep], rtol=0, atol=ATOL
    )
    for response in (grpc_typed, grpc_raw):
        assert response.id == "k-1"
        np.testing.assert_allclose(
            response.get_output_by_name("probability").as_numpy(), reference["expected"], rtol=0, atol=ATOL
        )
        assert response.get_output_by_name("label").as_numpy().tolist() == reference["labels"].tolist()


def test_raw_v1_post_gets_offline_probabilities_and_grpc_listens_on_host_only(server, reference):
    spec, rows = reference["spec"], reference["rows"]

    def plain(v):
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else v

    instances = [
        {f: plain(v) for f, v in zip(spec.feature_order, values, strict=True)}
        for values in rows[spec.feature_order].astype(object).to_numpy().tolist()
    ]
    response = httpx.post(f"{server['base']}/v1/models/fraud:predict", json={"instances": instances}, timeout=30)
    assert response.status_code == 200, response.text
    got = [p["probability"] for p in response.json()["predictions"]]
    np.testing.assert_allclose(got, reference["expected"], rtol=0, atol=ATOL)
    port = int(server["grpc"].rsplit(":", 1)[1])
    assert f"gRPC server on 127.0.0.1:{port}" in server["log"].read_text()


def test_grpc_refusals_are_status_codes_with_messages(server):
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    def tensor(name, datatype, shape, **contents):
        return pb.ModelInferRequest.InferInputTensor(
            name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents)
        )

    good = [
        tensor("amount", "FP64", [1], fp64_contents=[12.5]),
        tensor("hour", "INT64", [1], int64_contents=[3]),
        tensor("channel", "BYTES", [1], bytes_contents=[b"web"]),
        tensor("distance_km", "FP32", [1], fp32_contents=[1.5]),
        tensor("country", "BYTES", [1], bytes_contents=[b"DE"]),
    ]
    bad_utf8 = [*good[:2], tensor("channel", "BYTES", [1], bytes_contents=[b"\xff\xfe"]), *good[3:]]
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    two_rows = tensor("amount", "FP64", [2], fp64_contents=[1.0])
    cases = [
        ("fraud", bad_utf8, [], invalid, "not valid UTF-8"),
        ("fraud", good[:3], [], invalid, "missing input"),
        ("fraud", [two_rows, *good[1:]], [], invalid, "needs 2 values"),
        ("nope", good, [], grpc.StatusCode.NOT_FOUND, "nope"),
    ]
    raw_inputs = [pb.ModelInferRequest.InferInputTensor(name=t.name, datatype=t.datatype, shape=[1]) for t in good]
    raw_bad = [np.float64(1).tobytes(), np.int64(3).tobytes()[:5], b"\x03\x00\x00\x00web", b"\x00" * 4, b"\x00" * 4]
    cases.append(("fraud", raw_inputs, raw_bad, invalid, "needs 8 bytes"))
    with grpc.insecure_channel(server["grpc"]) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        ok = stub.ModelInfer(pb.ModelInferRequest(model_name="fraud", inputs=good), timeout=30)
        assert [o.name for o in ok.outputs] == ["probability", "label"]
        assert len(ok.outputs[0].contents.fp32_contents) == 1  # typed request -> typed outputs
        for model, inputs, raw, code, fragment in cases:
            request = pb.ModelInferRequest(model_name=model, inputs=inputs, raw_input_contents=raw)
            with pytest.raises(grpc.RpcError) as refused:
                stub.ModelInfer(request, timeout=30)
            assert refused.value.code() == code, (model, refused.value.details())
            assert fragment in refused.value.details()
        with pytest.raises(grpc.RpcError) as unload:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="fraud"), timeout=30)
        assert unload.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert stub.ModelReady(pb.ModelReadyRequest(name="fraud"), timeout=30).ready is True
