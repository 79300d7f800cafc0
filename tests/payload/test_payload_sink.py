"""The payload sink in process: joins, v1/v2 bodies, dedupe, bad events, records identical to the predictor's."""

import asyncio
import glob
import json
import os

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from prometheus_client import REGISTRY

from kfpkit.serving.payload_log import PayloadLogger
from kfpkit.serving.payload_sink import ModelTarget, PayloadSink


def _sink(tmp_path, model_dir, **kwargs):
    sink = PayloadSink(
        {"fraud": ModelTarget.from_model_dir("fraud", model_dir)},
        str(tmp_path / "spool"),
        str(tmp_path / "out"),
        **{"orphan_wait_s": 0.05, **kwargs},
    )
    sink.start()
    return sink


def _send(sink, headers, body):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return asyncio.run(sink.receive(headers, data))


def _records(root):
    files = sorted(glob.glob(os.path.join(root, "**", "*.parquet"), recursive=True))
    return pq.ParquetDataset(files).read() if files else None


def _events(outcome):
    return REGISTRY.get_sample_value("kfpkit_payload_sink_events_total", {"outcome": outcome}) or 0.0


def test_request_and_response_are_joined_by_ce_id_and_written_on_compaction(tmp_path, model_dir, ph):
    sink = _sink(tmp_path, model_dir)
    ids = [ph.new_id() for _ in range(3)]
    for i, event_id in enumerate(ids):
        assert _send(sink, ph.ce_headers(event_id, "request"), ph.v1_request(2, i))[0] == 200
        assert _send(sink, ph.ce_headers(event_id, "response"), ph.v1_response(2, i))[0] == 200
    sink.stop()
    table = _records(str(tmp_path / "out"))
    assert table.num_rows == 6 and set(table.column("request_id").to_pylist()) == set(ids)
    assert set(table.column("model_version").to_pylist()) == {"3"}
    files = glob.glob(str(tmp_path / "out" / "fraud" / "3" / "2026-12-01" / "09" / "part-spool-*.parquet"))
    assert len(files) == 1
    assert not glob.glob(str(tmp_path / "spool" / "segment-*.jsonl")) or all(
        os.path.getsize(f) == 0 for f in glob.glob(str(tmp_path / "spool" / "segment-*.jsonl"))
    )


def test_v2_bodies_decode_with_the_models_codec(tmp_path, model_dir, ph):
    sink = _sink(tmp_path, model_dir)
    request = {
        "id": "abc",
        "inputs": [
            {"name": "amount", "datatype": "FP64", "shape": [2], "data": [10.5, 20.0]},
            {"name": "hour", "datatype": "INT64", "shape": [2], "data": [3, 4]},
            {"name": "channel", "datatype": "BYTES", "shape": [2], "data": ["web", "app"]},
            {"name": "country", "datatype": "BYTES", "shape": [2], "data": ["US", "DE"]},
        ],
    }
    response = {
        "model_name": "fraud",
        "outputs": [
            {"name": "probability", "datatype": "FP32", "shape": [2], "data": [0.25, 0.75]},
            {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 1]},
        ],
    }
    assert _send(sink, ph.ce_headers("v2-1", "request"), request)[0] == 200
    assert _send(sink, ph.ce_headers("v2-1", "response"), response)[0] == 200
    sink.stop()
    rows = _records(str(tmp_path / "out")).sort_by("instance").to_pylist()
    assert [r["score"] for r in rows] == [0.25, 0.75] and [r["label"] for r in rows] == [0, 1]
    assert [r["channel"] for r in rows] == ["web", "app"] and rows[1]["hour"] == 4.0


def test_redelivered_events_are_acknowledged_but_written_once(tmp_path, model_dir, ph):
    sink = _sink(tmp_path, model_dir)
    headers_req, headers_resp = ph.ce_headers("dup", "request"), ph.ce_headers("dup", "response")
    for _ in range(2):
        assert _send(sink, headers_req, ph.v1_request(1, 5))[0] == 200
    assert _send(sink, headers_resp, ph.v1_response(1, 5)) == (200, {"outcome": "accepted"})
    sink.rotate_and_compact()
    # after compaction too: a late redelivery is a duplicate
    assert _send(sink, headers_resp, ph.v1_response(1, 5)) == (200, {"outcome": "duplicate"})
    assert _send(sink, headers_req, ph.v1_request(1, 5)) == (200, {"outcome": "duplicate"})
    sink.stop()
    assert _records(str(tmp_path / "out")).num_rows == 1


@pytest.mark.parametrize(
    ("case", "status", "outcome"),
    [
        ("no_id", 400, "no_id"),
        ("unknown_type", 400, "unknown_type"),
        ("not_json", 400, "undecodable"),
        ("refused_by_codec", 400, "undecodable"),
        ("orphan", 409, "orphan_response"),
    ],
)
def test_bad_events_get_a_4xx_and_are_counted(tmp_path, model_dir, ph, case, status, outcome):
    sink = _sink(tmp_path, model_dir)
    before = _events(outcome)
    headers = ph.ce_headers(ph.new_id(), "request")
    body = ph.v1_request(1, 1)
    if case == "no_id":
        headers.pop("ce-id")
    elif case == "unknown_type":
        headers["ce-type"] = "org.kubeflow.serving.inference.explain"
    elif case == "not_json":
        body = b"{not json"
    elif case == "refused_by_codec":
        body = {"instances": [{"amount": "lots"}]}
    else:
        headers = ph.ce_headers(ph.new_id(), "response")
        body = ph.v1_response(1, 1)
    got_status, document = _send(sink, headers, body)
    assert got_status == status and document["outcome"] == outcome
    assert _events(outcome) - before == 1
    # the sink keeps working
    good = ph.new_id()
    assert _send(sink, ph.ce_headers(good, "request"), ph.v1_request(1, 2))[0] == 200
    sink.stop()


def test_a_response_arriving_just_before_its_request_is_joined(tmp_path, model_dir, ph):
    sink = _sink(tmp_path, model_dir, orphan_wait_s=2.0)

    async def scenario():
        response = asyncio.create_task(
            sink.receive(ph.ce_headers("early", "response"), orjson.dumps(ph.v1_response(1, 9)))
        )
        await asyncio.sleep(0.05)
        request = await sink.receive(ph.ce_headers("early", "request"), orjson.dumps(ph.v1_request(1, 9)))
        return request, await response

    request, response = asyncio.run(scenario())
    assert request[0] == 200 and response == (200, {"outcome": "accepted"})
    sink.stop()
    assert _records(str(tmp_path / "out")).num_rows == 1


def test_sink_records_equal_the_predictor_loggers_for_the_same_request(tmp_path, model_dir, ph):
    sink = _sink(tmp_path, model_dir)
    request, response = ph.v1_request(3, 4), ph.v1_response(3, 4)
    _send(sink, ph.ce_headers("same", "request"), request)
    _send(sink, ph.ce_headers("same", "response"), response)
    sink.stop()
    target = sink.models["fraud"]
    decoded = target.codec.decode_v1(request)
    scores = np.array([p["probability"] for p in response["predictions"]])
    labels = np.array([p["label"] for p in response["predictions"]])
    log = PayloadLogger(str(tmp_path / "predictor"), "fraud", "3", ph.make_spec(), flush_seconds=0.01)
    log.log(decoded.columns, scores, labels, request_id="same")
    log.close()
    from_sink = _records(str(tmp_path / "out")).drop(["timestamp"])
    from_predictor = _records(str(tmp_path / "predictor")).drop(["timestamp"])
    assert from_sink.schema == from_predictor.schema
    assert from_sink.to_pylist() == from_predictor.to_pylist()
    assert json.loads(json.dumps(from_sink.to_pylist()))[0]["country"] is None


def test_a_request_whose_response_never_comes_is_dropped_after_the_ttl_and_counted(tmp_path, model_dir, ph):
    sink = _sink(tmp_path, model_dir, pending_ttl_s=0.0)
    before = REGISTRY.get_sample_value("kfpkit_payload_sink_unanswered_total", {"model_name": "fraud"}) or 0.0
    assert _send(sink, ph.ce_headers("lonely", "request"), ph.v1_request(1, 3))[0] == 200
    sink.rotate_and_compact()
    after = REGISTRY.get_sample_value("kfpkit_payload_sink_unanswered_total", {"model_name": "fraud"})
    assert after - before == 1
    sink.stop()
    assert _records(str(tmp_path / "out")) is None
