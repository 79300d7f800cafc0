"""One behaviour, two paths: the fast path and KServe's own route answer every request alike.

The same corpus (good and bad; v1, v2 JSON and v2 binary) goes through a server with the fast path and
one with ``fast_path=False`` (FastAPI + pydantic + KServe's DataPlane + ``KfpkitModel.predict``). Status
codes must be equal, and bodies equal as data: JSON parsed (FP32 values compared as float32, since the
two encoders print a float32 with different digits; a generated ``id`` masked), binary outputs byte for
byte; unset optional fields, which KServe's pydantic response writes as ``null``, are dropped. The
private-KServe-API check is here too.
"""

from __future__ import annotations

import struct
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import orjson
import pytest

from kfpkit.serving.predictor import KfpkitModel
from kfpkit.serving.server import KfpkitModelServer

JSON = {"content-type": "application/json"}
MAX_BODY = 64 * 1024
GOOD_ROW = {"amount": 12.5, "hour": 3, "channel": "web", "distance_km": 1.5, "country": "DE"}


def v2_inputs(n: int = 2) -> List[Dict[str, Any]]:
    return [
        {"name": "amount", "datatype": "FP64", "shape": [n], "data": [12.5, None, 3.0][:n]},
        {"name": "hour", "datatype": "INT64", "shape": [n], "data": [3, 23, 0][:n]},
        {"name": "channel", "datatype": "BYTES", "shape": [n], "data": ["web", "atm", "pos"][:n]},
        {"name": "distance_km", "datatype": "FP32", "shape": [n], "data": [1.5, 300.0, 0.0][:n]},
        {"name": "country", "datatype": "BYTES", "shape": [n], "data": ["DE", None, "XX"][:n]},
    ]


def changed(name: str, n: int = 2, **changes: Any) -> Dict[str, Any]:
    """A v2 body whose input ``name`` has ``changes``."""
    return {"inputs": [{**i, **changes} if i["name"] == name else i for i in v2_inputs(n)]}


def every_input(drop: str = "", **changes: Any) -> Dict[str, Any]:
    """A one-row v2 body with ``changes`` (and without field ``drop``) in every input."""
    return {"inputs": [{k: v for k, v in i.items() if k != drop} | changes for i in v2_inputs(1)]}


CE_HEADERS = {
    "content-type": "application/json",
    "ce-specversion": "1.0",
    "ce-id": "1",
    "ce-source": "t",
    "ce-type": "t",
}


def bytes_tensor(values: List[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def binary_body(
    raw_overrides: Optional[Dict[str, bytes]] = None,
    size_overrides: Optional[Dict[str, Any]] = None,
    parameters: Optional[Dict[str, Any]] = None,
    outputs: Optional[List[Dict[str, Any]]] = None,
    tail: bytes = b"",
    header_delta: int = 0,
) -> Tuple[bytes, Dict[str, str]]:
    """A binary-extension request (like tritonclient.http's), optionally corrupted."""
    raw = {
        "amount": np.array([12.5, np.nan], dtype="<f8").tobytes(),
        "hour": np.array([3, 23], dtype="<i8").tobytes(),
        "channel": bytes_tensor([b"web", b"atm"]),
        "distance_km": np.array([1.5, 300.0], dtype="<f4").tobytes(),
        "country": bytes_tensor([b"DE", b""]),
    }
    raw.update(raw_overrides or {})
    inputs = []
    for item in v2_inputs(2):
        size = (size_overrides or {}).get(item["name"], len(raw[item["name"]]))
        inputs.append({k: v for k, v in item.items() if k != "data"} | {"parameters": {"binary_data_size": size}})
    header: Dict[str, Any] = {"id": "bin-1", "inputs": inputs}
    if parameters is not None:
        header["parameters"] = parameters
    if outputs is not None:
        header["outputs"] = outputs
    head = orjson.dumps(header)
    body = head + b"".join(raw.values()) + tail
    return body, {"inference-header-content-length": str(len(head) + header_delta)}


def _json(body: Any) -> bytes:
    return body if isinstance(body, bytes) else orjson.dumps(body)


V1 = "/v1/models/m:predict"
V2 = "/v2/models/m/infer"

CORPUS: List[Tuple[str, str, Any, Dict[str, str]]] = [
    # good
    ("v1-objects", V1, {"instances": [GOOD_ROW, {**GOOD_ROW, "amount": None, "country": None}]}, JSON),
    ("v1-rows", V1, {"instances": [[12.5, 3, "web", 1.5, "DE"], [1e41, 1e40, "atm", -1e300, ""]]}, JSON),
    ("v2-json", V2, {"id": "a", "inputs": v2_inputs(3)}, JSON),
    ("v2-json-no-id", V2, {"inputs": v2_inputs(2)}, JSON),
    (
        "v2-nested-label-only",
        V2,
        {
            "id": "b",
            "inputs": [{**i, "shape": [1, 1], "data": [[i["data"][0]]]} for i in v2_inputs(1)],
            "outputs": [{"name": "label"}],
        },
        JSON,
    ),
    ("v2-json-binary-outputs", V2, {"id": "c", **changed("hour"), "parameters": {"binary_data_output": True}}, JSON),
    ("binary-in-binary-out", V2, *binary_body(parameters={"binary_data_output": True})),
    ("binary-in-json-out", V2, *binary_body()),
    (
        "binary-per-output",
        V2,
        *binary_body(outputs=[{"name": "probability", "parameters": {"binary_data": True}}, {"name": "label"}]),
    ),
    ("huge-finite-values", V2, {"id": "d", **changed("amount", data=[1e41, -1e300])}, JSON),
    # bad: JSON
    ("malformed-json-v1", V1, b'{"instances": [', JSON),
    ("malformed-json-v2", V2, b"{inputs: 1}", JSON),
    ("empty-body-v2", V2, b"", JSON),
    ("empty-body-v1", V1, b"", JSON),
    ("text-plain-v1", V1, orjson.dumps({"instances": [GOOD_ROW]}), {"content-type": "text/plain"}),
    ("form-v2", V2, orjson.dumps(every_input()), {"content-type": "application/x-www-form-urlencoded"}),
    ("octet-stream-no-header", V2, b"\x01\x02", {"content-type": "application/octet-stream"}),
    ("v1-not-object", V1, [1, 2], JSON),
    ("v1-missing-feature", V1, {"instances": [{k: v for k, v in GOOD_ROW.items() if k != "hour"}]}, JSON),
    ("v1-bool-mixed", V1, {"instances": [GOOD_ROW, {**GOOD_ROW, "amount": True}]}, JSON),
    ("v1-bool-alone", V1, {"instances": [{**GOOD_ROW, "amount": True}]}, JSON),
    ("v2-bool-mixed", V2, changed("hour", data=[1, True]), JSON),
    ("v2-no-inputs", V2, {"instances": []}, JSON),
    ("v2-inputs-not-list", V2, {"inputs": {"a": 1}}, JSON),
    ("v2-input-without-name", V2, every_input(drop="name"), JSON),
    ("v2-shape-not-list", V2, every_input(shape=1), JSON),
    ("v2-shape-float", V2, every_input(shape=[1.0]), JSON),
    ("v2-shape-string", V2, every_input(shape=["1"]), JSON),
    ("v2-unknown-datatype", V2, every_input(datatype="FLOAT"), JSON),
    ("v2-id-not-string", V2, {"id": 5, "inputs": v2_inputs(1)}, JSON),
    ("v2-wrong-count", V2, changed("amount", shape=[3]), JSON),
    ("v2-string-for-number", V2, changed("amount", data=["x", "y"]), JSON),
    ("v2-bytes-number", V2, changed("channel", data=[1, 2]), JSON),
    ("v2-list-body", V2, [1, 2], JSON),
    ("v2-unknown-output", V2, {"inputs": v2_inputs(1), "outputs": [{"name": "score"}]}, JSON),
    ("v2-duplicate-input", V2, {"inputs": [*v2_inputs(1), v2_inputs(1)[0]]}, JSON),
    ("v2-unexpected-input", V2, {"inputs": [*v2_inputs(1), {**v2_inputs(1)[0], "name": "is_fraud"}]}, JSON),
    ("v2-sizes-without-header", V2, every_input(drop="data", parameters={"binary_data_size": 4}), JSON),
    ("too-large-v1", V1, b'{"instances": [' + b" " * MAX_BODY + b"]}", JSON),
    ("too-large-cloudevent", V2, b"{" + b" " * MAX_BODY + b"}", CE_HEADERS),
    # bad: binary framing
    ("binary-header-not-a-number", V2, binary_body()[0], {"inference-header-content-length": "12x"}),
    ("binary-header-past-the-body", V2, binary_body()[0], {"inference-header-content-length": "999999"}),
    ("binary-header-cut-json", V2, *binary_body(header_delta=-3)),
    ("binary-size-mismatch", V2, *binary_body(size_overrides={"amount": 12})),
    ("binary-size-negative", V2, *binary_body(size_overrides={"amount": -8})),
    ("binary-truncated", V2, binary_body()[0][:-3], binary_body()[1]),
    ("binary-trailing-bytes", V2, *binary_body(tail=b"\x00\x00")),
    ("binary-bytes-invalid-utf8", V2, *binary_body(raw_overrides={"channel": bytes_tensor([b"\xff\xfe", b"atm"])})),
    ("binary-bytes-bad-length-prefix", V2, *binary_body(raw_overrides={"channel": b"\xff\x00\x00\x00web"})),
    ("binary-on-v1", V1, *binary_body()),
]  # fmt: skip


@pytest.fixture(scope="module")
def apps(sklearn_dir):
    """The same model behind the fast path and behind KServe's route (body limit lowered for the corpus)."""
    out = {}
    for fast in (True, False):
        model = KfpkitModel("m", sklearn_dir)
        assert model.load(), model.load_error
        server = KfpkitModelServer(
            host="127.0.0.1", http_port=0, enable_grpc=False, fast_path=fast, max_body_bytes=MAX_BODY
        )
        out[fast] = server.create_app([model])
    return out


def _without_nulls(value: Any) -> Any:
    """KServe's pydantic response model writes unset optional fields as ``null``; the fast path omits them."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _as_data(response: Any, request_has_id: bool) -> Any:
    header_length = response.headers.get("inference-header-content-length")
    content = response.content
    raw = b""
    if header_length is not None:
        content, raw = content[: int(header_length)], content[int(header_length) :]
    body = _without_nulls(orjson.loads(content))
    if isinstance(body, dict) and "outputs" in body:
        if not request_has_id:
            assert isinstance(body.pop("id"), str)
        for output in body["outputs"]:
            if output.get("datatype") == "FP32" and "data" in output:
                output["data"] = np.asarray(output["data"], dtype=np.float32).tolist()
    return body, raw


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_fast_path_and_kserve_route_answer_alike(case, apps, kit):
    name, path, body, headers = case
    content = _json(body)
    fast, plain = (kit.send(apps[flag], "POST", path, content=content, headers=headers) for flag in (True, False))
    assert fast.status_code == plain.status_code, (name, fast.text[:300], plain.text[:300])
    has_id = (isinstance(body, dict) and "id" in body) or name.startswith("binary")
    assert _as_data(fast, has_id) == _as_data(plain, has_id), name
    if fast.status_code >= 400:
        assert set(orjson.loads(fast.content)) == {"error"}
    else:
        assert fast.status_code == 200


def test_corpus_covers_successes_refusals_and_binary_outputs(apps, kit):
    statuses = {}
    binary_outputs = 0
    for name, path, body, headers in CORPUS:
        response = kit.send(apps[True], "POST", path, content=_json(body), headers=headers)
        statuses[name] = response.status_code
        binary_outputs += "inference-header-content-length" in response.headers
    assert sum(s == 200 for s in statuses.values()) == 10
    assert {s for s in statuses.values() if s != 200} == {400, 413, 415}
    assert binary_outputs == 3
    assert statuses["huge-finite-values"] == 200 and statuses["v1-rows"] == 200


def test_private_kserve_api_check_names_a_missing_name(monkeypatch):
    from kserve.protocol.rest.server import RESTServer

    from kfpkit.serving import kserve_overrides

    kserve_overrides.check_private_api()  # this KServe has them all
    monkeypatch.delattr(RESTServer, "_register_endpoints")
    with pytest.raises(kserve_overrides.KServeAPIChanged, match=r"RESTServer\._register_endpoints"):
        kserve_overrides.check_private_api()
    with pytest.raises(kserve_overrides.KServeAPIChanged, match="kserve_overrides.py"):
        KfpkitModelServer(host="127.0.0.1", http_port=0, enable_grpc=False)
