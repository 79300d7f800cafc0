"""Property-based fuzz (hypothesis) of v1, v2 JSON and v2 binary bodies around the valid shapes.

Every body goes through the fast path and through KServe's route (``fast_path=False``) in-process.
Properties: no response is a 5xx; every 4xx is a JSON object ``{"error": <non-empty string>}``; every
200 has finite probabilities; both paths give the same status code.

Bounded: ``FUZZ_EXAMPLES`` examples per protocol (default 200, ~10 s in all on a 2-core box) and a
wall-clock cap per test; ``make fuzz`` runs a longer one (``KFPKIT_FUZZ_EXAMPLES``, read when the tests
run, not at import). Each test has its own cap and its own count of the examples it sent, and fails when the
cap left it fewer than :data:`MIN_SENT_SHARE` of its examples: a capped run cannot pass without checking.
"""

from __future__ import annotations

import asyncio
import math
import os
import struct
import time
from typing import Any, Dict, List, Tuple

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kfpkit.serving.predictor import KfpkitModel
from kfpkit.serving.server import KfpkitModelServer

FEATURES = {"amount": "n", "hour": "n", "channel": "c", "distance_km": "n", "country": "c"}
DATATYPES = ["FP32", "FP64", "INT32", "INT64", "UINT8", "BYTES", "BOOL", "FP16", "float", ""]
DEFAULT_EXAMPLES = 200
WALL_CAP_S = 60.0
MIN_SENT_SHARE = 0.5  # of the examples asked for, that each test must have sent within its cap
MAX_BODY = 256 * 1024


def _examples() -> int:
    return int(os.environ.get("KFPKIT_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))


numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([0, 1, -1, 1e41, -1e300, 1e-320, 2**63, 2**64 - 1]),
)
scalars = st.one_of(
    numbers, st.none(), st.booleans(), st.text(max_size=8), st.sampled_from(["web", "atm", "pos", "DE", ""])
)
values: Any = st.one_of(
    scalars, st.lists(scalars, max_size=2), st.dictionaries(st.text(max_size=3), scalars, max_size=1)
)
names = st.one_of(st.sampled_from(list(FEATURES)), st.sampled_from(["features", "is_fraud", "", "Amount"]))


@st.composite
def v1_bodies(draw) -> Any:
    n = draw(st.integers(min_value=0, max_value=4))
    as_rows = draw(st.booleans())
    instances = []
    for _ in range(n):
        if as_rows:
            row = [draw(scalars) for _ in range(draw(st.sampled_from([5, 5, 5, 4, 6])))]
        else:
            keys = [k for k in FEATURES if draw(st.integers(0, 9)) > 0]
            if draw(st.integers(0, 9)) == 0:
                keys.append(draw(names))
            row = {k: draw(values) if draw(st.integers(0, 4)) == 0 else _typical(k, draw) for k in keys}
        instances.append(row)
    body: Any = {"instances": instances}
    mutation = draw(st.integers(0, 12))
    if mutation == 0:
        body = {"instances": draw(values)}
    elif mutation == 1:
        body = draw(values)
    elif mutation == 2:
        body["inputs"] = []
    return body


def _typical(feature: str, draw) -> Any:
    if FEATURES.get(feature) == "c":
        return draw(st.one_of(st.sampled_from(["web", "atm", "DE", "US", ""]), st.none(), st.text(max_size=4)))
    return draw(st.one_of(numbers, st.none()))


@st.composite
def v2_inputs(draw) -> Tuple[Dict[str, Any], int]:
    n = draw(st.integers(min_value=0, max_value=3))
    inputs = []
    for feature, kind in FEATURES.items():
        if draw(st.integers(0, 14)) == 0:
            continue
        datatype = "BYTES" if kind == "c" else draw(st.sampled_from(["FP32", "FP64", "INT64"]))
        if draw(st.integers(0, 9)) == 0:
            datatype = draw(st.sampled_from(DATATYPES))
        rows = n if draw(st.integers(0, 9)) else draw(st.integers(0, 4))
        shape: Any = [rows] if draw(st.booleans()) else [rows, 1]
        if draw(st.integers(0, 14)) == 0:
            shape = draw(st.one_of(st.just([]), st.lists(st.integers(-1, 3), max_size=3), values))
        data: Any = [_typical(feature, draw) for _ in range(rows)]
        if datatype.startswith("INT") and draw(st.booleans()):
            data = [draw(st.integers(-5, 5)) for _ in range(rows)]
        if draw(st.integers(0, 9)) == 0:
            data = draw(st.one_of(st.lists(values, max_size=4), values))
        item: Dict[str, Any] = {"name": feature, "datatype": datatype, "shape": shape, "data": data}
        if draw(st.integers(0, 14)) == 0:
            item.pop(draw(st.sampled_from(["name", "datatype", "shape", "data"])))
        inputs.append(item)
    if draw(st.integers(0, 9)) == 0:
        inputs.append({"name": draw(names), "datatype": "FP32", "shape": [n], "data": [1.0] * n})
    body: Dict[str, Any] = {"inputs": inputs}
    if draw(st.booleans()):
        body["id"] = draw(st.one_of(st.text(max_size=6), st.integers(-5, 5)))
    if draw(st.integers(0, 4)) == 0:
        body["outputs"] = [{"name": draw(st.sampled_from(["probability", "label", "score"]))}]
    if draw(st.integers(0, 4)) == 0:
        body["parameters"] = draw(st.one_of(st.just({"binary_data_output": True}), values))
    return body, n


def _raw(datatype: str, data: List[Any]) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(s)) + s for s in (str(v).encode() for v in data))
    dtype = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8", "INT32": "<i4"}.get(datatype, "<f8")
    clean = [0 if not isinstance(v, (int, float)) or isinstance(v, bool) else v for v in data]
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(clean, dtype=np.float64).astype(dtype).tobytes()


@st.composite
def binary_bodies(draw) -> Tuple[bytes, Dict[str, str]]:
    body, _n = draw(v2_inputs())
    chunks = []
    for item in body["inputs"]:
        if draw(st.integers(0, 4)) == 0 or not isinstance(item.get("data"), list):
            continue  # stays JSON
        raw = _raw(item.get("datatype", "FP64") if isinstance(item.get("datatype"), str) else "FP64", item["data"])
        if draw(st.integers(0, 9)) == 0:
            raw = draw(st.binary(max_size=24))
        size: Any = len(raw) if draw(st.integers(0, 9)) else draw(st.one_of(st.integers(-4, 64), values))
        item.pop("data")
        item["parameters"] = {"binary_data_size": size}
        chunks.append(raw)
    if draw(st.booleans()):
        body["parameters"] = {"binary_data_output": draw(st.booleans())}
    header = orjson.dumps(body)
    payload = header + b"".join(chunks)
    mutation = draw(st.integers(0, 9))
    if mutation == 0:
        payload = payload[: draw(st.integers(0, len(payload)))]
    elif mutation == 1:
        payload += draw(st.binary(min_size=1, max_size=8))
    length: Any = len(header)
    if draw(st.integers(0, 9)) == 0:
        length = draw(st.one_of(st.integers(-2, len(payload) + 4), st.text("0123456789 x-+.", max_size=4)))
    return payload, {"inference-header-content-length": str(length)}


class Harness:
    """Both apps and one event loop for the whole module (hypothesis calls the test synchronously)."""

    def __init__(self, model_dir: str):
        self.loop = asyncio.new_event_loop()
        self.clients = {}
        for fast in (True, False):
            model = KfpkitModel("m", model_dir)
            assert model.load(), model.load_error
            app = KfpkitModelServer(
                host="127.0.0.1", http_port=0, enable_grpc=False, fast_path=fast, max_body_bytes=MAX_BODY
            ).create_app([model])
            self.clients[fast] = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

    def post_both(self, path: str, content: bytes, headers: Dict[str, str]) -> Tuple[httpx.Response, httpx.Response]:
        async def both():
            return tuple([await self.clients[f].post(path, content=content, headers=headers) for f in (True, False)])

        return self.loop.run_until_complete(both())

    def close(self) -> None:
        for client in self.clients.values():
            self.loop.run_until_complete(client.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(sklearn_dir):
    h = Harness(sklearn_dir)
    yield h
    h.close()


def _check(fast: httpx.Response, plain: httpx.Response, what: Any) -> None:
    for response in (fast, plain):
        assert response.status_code < 500, (what, response.status_code, response.text[:500])
        if response.status_code >= 400:
            error = orjson.loads(response.content)
            assert isinstance(error, dict) and set(error) == {"error"}, (what, response.text[:300])
            assert isinstance(error["error"], str) and error["error"], what
        else:
            assert response.status_code == 200, what
            length = response.headers.get("inference-header-content-length")
            content = response.content[: int(length)] if length else response.content
            parsed = orjson.loads(content)
            probabilities = (
                [p["probability"] for p in parsed["predictions"]]
                if "predictions" in parsed
                else [v for o in parsed["outputs"] if o["name"] == "probability" for v in o.get("data", [])]
            )
            assert all(isinstance(p, float) and math.isfinite(p) for p in probabilities), what
    assert fast.status_code == plain.status_code, (what, fast.text[:300], plain.text[:300])


def _settings():
    return settings(
        max_examples=_examples(),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    )


class Budget:
    """One test's wall-clock cap and the number of examples it sent; a fresh one per test, never shared."""

    def __init__(self) -> None:
        self.examples = _examples()
        self.cap_s = WALL_CAP_S * max(1, self.examples // DEFAULT_EXAMPLES)
        self.start = time.monotonic()
        self.sent = 0

    def open(self) -> bool:
        """Whether the cap leaves time for one more example."""
        return time.monotonic() - self.start < self.cap_s

    def assert_enough_sent(self) -> None:
        """Fails when the cap stopped the test before it sent :data:`MIN_SENT_SHARE` of its examples."""
        minimum = max(1, int(self.examples * MIN_SENT_SHARE))
        assert self.sent >= minimum, (
            f"sent {self.sent} of {self.examples} examples within the {self.cap_s:.0f} s cap; at least {minimum} needed"
        )


@pytest.fixture
def budget() -> Budget:
    return Budget()


JSON = {"content-type": "application/json"}


def test_fuzz_v1_bodies(harness, budget):
    @_settings()
    @given(v1_bodies())
    def run(body):
        if budget.open():
            _check(*harness.post_both("/v1/models/m:predict", orjson.dumps(body), JSON), body)
            budget.sent += 1

    run()
    budget.assert_enough_sent()


def test_fuzz_v2_json_bodies(harness, budget):
    @_settings()
    @given(v2_inputs())
    def run(case):
        if budget.open():
            _check(*harness.post_both("/v2/models/m/infer", orjson.dumps(case[0]), JSON), case[0])
            budget.sent += 1

    run()
    budget.assert_enough_sent()


def test_fuzz_v2_binary_bodies(harness, budget):
    @_settings()
    @given(binary_bodies())
    def run(case):
        if budget.open():
            payload, headers = case
            _check(*harness.post_both("/v2/models/m/infer", payload, headers), (payload[:400], headers))
            budget.sent += 1

    run()
    budget.assert_enough_sent()


def test_fuzz_raw_bytes(harness, budget):
    @_settings()
    @given(st.binary(max_size=64), st.sampled_from(["/v1/models/m:predict", "/v2/models/m/infer"]))
    def run(payload, path):
        if budget.open():
            _check(*harness.post_both(path, payload, JSON), payload)
            budget.sent += 1

    run()
    budget.assert_enough_sent()


def test_a_fuzz_test_whose_cap_ran_out_before_enough_examples_fails():
    first, second = Budget(), Budget()
    first.sent = first.examples
    second.cap_s = 0.0

    first.assert_enough_sent()
    assert not second.open() and second.sent == 0  # its own count: the first test's examples are not its
    with pytest.raises(AssertionError, match="at least"):
        second.assert_enough_sent()
