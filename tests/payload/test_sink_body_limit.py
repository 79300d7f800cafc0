"""The payload sink's body limit, at its ASGI app: 413 above the limit, without reading the body into memory."""

import argparse
import asyncio
import json
from typing import Dict, List, Optional, Tuple

import orjson
import pytest
from prometheus_client import REGISTRY

from kfpkit.cli import payload_sink as sink_cli
from kfpkit.serving.fast_path import DEFAULT_MAX_BODY_BYTES
from kfpkit.serving.payload_sink import ModelTarget, PayloadSink, PayloadSinkApp


def _app(tmp_path, model_dir, max_body_bytes: int) -> PayloadSinkApp:
    sink = PayloadSink(
        {"fraud": ModelTarget.from_model_dir("fraud", model_dir)}, str(tmp_path / "spool"), str(tmp_path / "out")
    )
    sink.start()
    return PayloadSinkApp(sink, max_body_bytes=max_body_bytes)


def _post(
    app: PayloadSinkApp, headers: Dict[str, str], chunks: List[bytes], endless: bool = False
) -> Tuple[int, dict, int]:
    """POSTs ``chunks`` (one ``http.request`` message each; ``endless`` repeats the last one forever) to the
    app; returns the status, the JSON answer and how many body messages the app read."""
    sent: List[dict] = []
    reads = 0

    async def receive() -> dict:
        nonlocal reads
        reads += 1
        if endless:
            return {"type": "http.request", "body": chunks[min(reads, len(chunks)) - 1], "more_body": True}
        if reads > len(chunks):
            raise AssertionError("the app read past the end of the body")
        return {"type": "http.request", "body": chunks[reads - 1], "more_body": reads < len(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), reads


def _too_large_count() -> float:
    return REGISTRY.get_sample_value("kfpkit_payload_sink_events_total", {"outcome": "payload_too_large"}) or 0.0


def test_a_content_length_over_the_limit_gets_413_before_any_of_the_body_is_read(tmp_path, model_dir, ph):
    app = _app(tmp_path, model_dir, max_body_bytes=1000)
    before = _too_large_count()
    headers = {**ph.ce_headers(ph.new_id(), "request"), "content-length": "1001"}

    status, document, reads = _post(app, headers, [b"x" * 1001])

    assert status == 413 and document["outcome"] == "payload_too_large"
    assert "1001 bytes exceeds 1000" in document["error"]
    assert reads == 0
    assert _too_large_count() - before == 1
    app.sink.stop()


def test_a_streamed_body_over_the_limit_gets_413_as_soon_as_its_chunks_pass_the_limit(tmp_path, model_dir, ph):
    app = _app(tmp_path, model_dir, max_body_bytes=1000)
    before = _too_large_count()
    headers = ph.ce_headers(ph.new_id(), "request")  # chunked: no content-length

    status, document, reads = _post(app, headers, [b"x" * 400], endless=True)

    assert status == 413 and document["outcome"] == "payload_too_large"
    assert "exceeds 1000 bytes" in document["error"]
    assert reads == 3  # 1200 bytes > 1000: the endless rest is never read
    assert _too_large_count() - before == 1
    app.sink.stop()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_of_exactly_the_limit_is_accepted(tmp_path, model_dir, ph, framing):
    body = orjson.dumps(ph.v1_request(2, 7))
    app = _app(tmp_path, model_dir, max_body_bytes=len(body))
    headers = ph.ce_headers(ph.new_id(), "request")
    if framing == "content-length":
        headers["content-length"] = str(len(body))
    half = len(body) // 2

    status, document, _reads = _post(app, headers, [body[:half], body[half:]])

    assert (status, document) == (200, {"outcome": "accepted"})
    app.sink.stop()


def test_the_sink_still_accepts_events_after_refusing_an_oversized_one(tmp_path, model_dir, ph):
    body = orjson.dumps(ph.v1_request(1, 3))
    app = _app(tmp_path, model_dir, max_body_bytes=len(body))

    assert _post(app, ph.ce_headers(ph.new_id(), "request"), [body + b" "])[0] == 413
    assert _post(app, ph.ce_headers(ph.new_id(), "request"), [body])[:2] == (200, {"outcome": "accepted"})
    app.sink.stop()


def test_a_limit_below_one_byte_is_refused(tmp_path, model_dir):
    with pytest.raises(ValueError, match="max_body_bytes"):
        _app(tmp_path, model_dir, max_body_bytes=0)


def _parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sink_cli.add_arguments(parser)
    return parser.parse_args(["--model", "fraud=/m", "--spool", "/s", "--out", "/o", *(argv or [])])


def test_the_sink_cli_limit_defaults_to_the_predictors_and_is_configurable():
    assert _parse().max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert _parse(["--max-body-bytes", "4096"]).max_body_bytes == 4096


def _get(app: PayloadSinkApp, path: str) -> Tuple[int, bytes]:
    sent: List[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "GET", "path": path, "headers": []}, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_healthz_says_ok_only_while_the_sink_runs(tmp_path, model_dir):
    app = _app(tmp_path, model_dir, DEFAULT_MAX_BODY_BYTES)
    assert _get(app, "/healthz") == (200, b'{"status":"ok"}')
    app.sink.stop()
    assert _get(app, "/healthz") == (503, b'{"status":"unavailable"}')
