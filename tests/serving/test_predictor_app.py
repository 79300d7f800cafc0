"""The kfpkit predictor inside the real KServe ModelServer app, driven in-process (httpx.ASGITransport)."""

from __future__ import annotations

import logging
import os
import re

import numpy as np
import orjson
import pytest

from kfpkit.core import model_dir as md
from kfpkit.serving import payloads

JSON = {"content-type": "application/json"}


def _offline(model_dir, rows):
    return md.load_model(model_dir).predict_proba(rows)


def _features(frame, label):
    return frame.drop(columns=[label])


@pytest.fixture(params=["sklearn", "pytorch"])
def served(request, sklearn_dir, torch_dir, kit):
    directory = sklearn_dir if request.param == "sklearn" else torch_dir
    name = f"fraud-{request.param}"
    app, model = kit.serve_app(directory, name)
    assert model.ready, model.load_error
    return app, model, name, directory


def test_v1_objects_and_rows_match_offline_predict_proba(served, frame, kit):
    app, model, name, directory = served
    rows = frame.head(40)
    spec = model.loaded.spec
    expected = _offline(directory, rows)
    for as_rows in (False, True):
        body = payloads.v1_body(rows, spec.feature_order, spec.categorical_names, as_rows=as_rows)
        response = kit.send(app, "POST", f"/v1/models/{name}:predict", content=payloads.dumps(body), headers=JSON)
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        got = np.array([p["probability"] for p in predictions])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        labels = [p["label"] for p in predictions]
        assert labels == (expected >= model.decision_threshold).astype(int).tolist()


def test_v2_per_feature_inputs_match_offline_predict_proba(served, frame, kit):
    app, model, name, directory = served
    rows = frame.iloc[40:90]
    spec = model.loaded.spec
    expected = _offline(directory, rows)
    body = payloads.v2_body(rows, spec.feature_order, spec.categorical_names, request_id="req-7")
    assert {i["datatype"] for i in body["inputs"]} == {"FP32", "INT64", "BYTES"}
    response = kit.send(app, "POST", f"/v2/models/{name}/infer", content=payloads.dumps(body), headers=JSON)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["model_name"] == name and out["id"] == "req-7"
    outputs = {o["name"]: o for o in out["outputs"]}
    assert outputs["probability"]["datatype"] == "FP32" and outputs["probability"]["shape"] == [len(rows)]
    assert outputs["label"]["datatype"] == "INT64"
    np.testing.assert_allclose(outputs["probability"]["data"], expected, rtol=1e-6, atol=1e-7)
    assert outputs["label"]["data"] == (expected >= model.decision_threshold).astype(int).tolist()


def test_v2_nested_data_and_output_selection(sklearn_dir, frame, kit):
    app, model, name = *kit.serve_app(sklearn_dir, "sel"), "sel"
    rows = frame.head(3)
    spec = model.loaded.spec
    body = payloads.v2_body(rows, spec.feature_order, spec.categorical_names)
    for item in body["inputs"]:
        item["shape"] = [3, 1]
        item["data"] = [[v] for v in item["data"]]
    body["outputs"] = [{"name": "label"}]
    response = kit.send(app, "POST", f"/v2/models/{name}/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert [o["name"] for o in outputs] == ["label"]
    expected = _offline(sklearn_dir, rows)
    assert outputs[0]["data"] == (expected >= model.decision_threshold).astype(int).tolist()


def test_kserve_standard_path_gives_the_same_predictions(sklearn_dir, frame, kit):
    """With the fast path off, KServe's own handlers call KfpkitModel.predict (dict / InferRequest)."""
    app, model = kit.serve_app(sklearn_dir, "std", fast_path=False)
    rows = frame.head(25)
    spec = model.loaded.spec
    expected = _offline(sklearn_dir, rows)
    v1, v2, bad = kit.send_all(
        app,
        [
            (
                "POST",
                "/v1/models/std:predict",
                {"json": payloads.v1_body(rows, spec.feature_order, spec.categorical_names)},
            ),
            (
                "POST",
                "/v2/models/std/infer",
                {"json": payloads.v2_body(rows, spec.feature_order, spec.categorical_names)},
            ),
            ("POST", "/v1/models/std:predict", {"json": {"instances": [{"amount": 1.0}]}}),
        ],
    )
    assert v1.status_code == 200 and v2.status_code == 200, (v1.text, v2.text)
    np.testing.assert_allclose([p["probability"] for p in v1.json()["predictions"]], expected, atol=1e-9)
    probability = next(o for o in v2.json()["outputs"] if o["name"] == "probability")
    np.testing.assert_allclose(probability["data"], expected, rtol=1e-6, atol=1e-7)
    assert bad.status_code == 400 and "missing feature(s)" in bad.json()["error"]


def test_all_numeric_model_accepts_one_features_tensor(tmp_path, frame, kit):
    numeric_frame = frame[["amount", "hour", "distance_km", kit.LABEL]]
    directory = kit.build_sklearn_dir(str(tmp_path / "numeric"), numeric_frame)
    app, model = kit.serve_app(directory, "num")
    rows = numeric_frame.head(20)
    order = model.loaded.spec.feature_order
    tensor = payloads.v2_body(rows, order, as_tensor=True)
    assert tensor["inputs"][0]["shape"] == [20, 3]
    response = kit.send(app, "POST", "/v2/models/num/infer", json=tensor)
    assert response.status_code == 200, response.text
    probability = next(o for o in response.json()["outputs"] if o["name"] == "probability")
    np.testing.assert_allclose(probability["data"], _offline(directory, rows), rtol=1e-6, atol=1e-7)


def test_model_with_categorical_features_refuses_the_features_tensor(sklearn_dir, kit):
    app, _ = kit.serve_app(sklearn_dir, "cat")
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 5], "data": [1, 2, 3, 4, 5]}]}
    response = kit.send(app, "POST", "/v2/models/cat/infer", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "every feature is numeric" in error and "channel" in error and "country" in error


def test_metadata_lists_every_feature_with_its_datatype_and_the_outputs(sklearn_dir, kit):
    app, _model = kit.serve_app(sklearn_dir, "meta")
    response = kit.send(app, "GET", "/v2/models/meta")
    assert response.status_code == 200
    meta = response.json()
    assert meta["name"] == "meta"
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        ("amount", "FP32", [-1]),
        ("hour", "FP32", [-1]),
        ("channel", "BYTES", [-1]),
        ("distance_km", "FP32", [-1]),
        ("country", "BYTES", [-1]),
    ]
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [("probability", "FP32"), ("label", "INT64")]
    assert kit.send(app, "GET", "/v2/models/meta/ready").json() == {"name": "meta", "ready": True}


def _good_v2(n=1):
    return {
        "inputs": [
            {"name": "amount", "datatype": "FP32", "shape": [n], "data": [12.5] * n},
            {"name": "hour", "datatype": "INT64", "shape": [n], "data": [3] * n},
            {"name": "channel", "datatype": "BYTES", "shape": [n], "data": ["web"] * n},
            {"name": "distance_km", "datatype": "FP64", "shape": [n], "data": [1.5] * n},
            {"name": "country", "datatype": "BYTES", "shape": [n], "data": ["DE"] * n},
        ]
    }


def _v2_with(index, **changes):
    body = _good_v2()
    body["inputs"][index].update(changes)
    return body


def _v2_without_field(field):
    body = _good_v2()
    del body["inputs"][1][field]
    return body


GOOD_ROW = {"amount": 12.5, "hour": 3, "channel": "web", "distance_km": 1.5, "country": "DE"}
V1 = "/v1/models/bad:predict"
V2 = "/v2/models/bad/infer"

BAD_REQUESTS = [
    # (id, path, raw body or JSON-able, headers, status, message fragment)
    ("malformed-json-v1", V1, b'{"instances": [', JSON, 400, "malformed JSON"),
    ("malformed-json-v2", V2, b"{inputs: 1}", JSON, 400, "malformed JSON"),
    ("empty-body", V2, b"", JSON, 400, "empty request body"),
    (
        "wrong-content-type",
        V1,
        orjson.dumps({"instances": [GOOD_ROW]}),
        {"content-type": "text/plain"},
        415,
        "content type",
    ),
    (
        "form-content-type",
        V2,
        orjson.dumps(_good_v2()),
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "application/json",
    ),
    ("body-not-object-v1", V1, [1, 2], JSON, 400, "JSON object"),
    ("no-instances", V1, {"rows": []}, JSON, 400, "no 'instances'"),
    ("v2-body-on-v1", V1, _good_v2(), JSON, 400, "/v2/models/{name}/infer"),
    ("instances-not-list", V1, {"instances": {"amount": 1}}, JSON, 400, "must be a list"),
    ("empty-instances", V1, {"instances": []}, JSON, 400, "empty"),
    (
        "missing-feature-v1",
        V1,
        {"instances": [{k: v for k, v in GOOD_ROW.items() if k != "hour"}]},
        JSON,
        400,
        "missing feature(s) ['hour']",
    ),
    (
        "extra-feature-v1",
        V1,
        {"instances": [{**GOOD_ROW, "is_fraud": 1}]},
        JSON,
        400,
        "unexpected feature(s) ['is_fraud']",
    ),
    ("short-row-v1", V1, {"instances": [[1.0, 2, "web"]]}, JSON, 400, "expected a list of 5 values"),
    ("mixed-forms-v1", V1, {"instances": [GOOD_ROW, [1, 2, "a", 3, "b"]]}, JSON, 400, "use one form"),
    ("scalar-instance-v1", V1, {"instances": [3]}, JSON, 400, "each instance must be an object"),
    ("non-numeric-string-v1", V1, {"instances": [{**GOOD_ROW, "amount": "12.5"}]}, JSON, 400, "'amount' is numeric"),
    ("bool-as-number-v1", V1, {"instances": [{**GOOD_ROW, "hour": True}]}, JSON, 400, "'hour' is numeric"),
    ("list-as-category-v1", V1, {"instances": [{**GOOD_ROW, "channel": ["web"]}]}, JSON, 400, "not a scalar"),
    ("no-inputs", V2, {"id": "x"}, JSON, 400, "no 'inputs'"),
    ("v1-body-on-v2", V2, {"instances": [GOOD_ROW]}, JSON, 400, "/v1/models/{name}:predict"),
    ("inputs-not-list", V2, {"inputs": {"name": "amount"}}, JSON, 400, "'inputs' must be a list"),
    ("empty-inputs", V2, {"inputs": []}, JSON, 400, "'inputs' is empty"),
    ("input-not-object", V2, {"inputs": ["amount"]}, JSON, 400, "must be an object"),
    ("input-missing-name", V2, _v2_without_field("name"), JSON, 400, "missing required field(s) ['name']"),
    ("input-missing-shape", V2, _v2_without_field("shape"), JSON, 400, "missing required field(s) ['shape']"),
    ("input-missing-datatype", V2, _v2_without_field("datatype"), JSON, 400, "['datatype']"),
    ("input-missing-data", V2, _v2_without_field("data"), JSON, 400, "['data']"),
    (
        "data-null",
        V2,
        _v2_with(0, data=None),
        JSON,
        400,
        "'data' must be a list",
    ),
    (
        "binary-sizes-without-the-header",
        V2,
        {
            "inputs": [
                {k: v for k, v in i.items() if k != "data"} | {"parameters": {"binary_data_size": 4}}
                for i in _good_v2()["inputs"]
            ]
        },
        JSON,
        400,
        "without the Inference-Header-Content-Length header",
    ),
    (
        "binary-header-length-zero",
        V2,
        b"\x00\x01",
        {"content-type": "application/octet-stream", "inference-header-content-length": "0"},
        400,
        "JSON header is empty",
    ),
    ("octet-stream-without-header", V2, b"\x01", {"content-type": "application/octet-stream"}, 415, "application/json"),
    ("id-not-string", V2, {**_good_v2(), "id": 5}, JSON, 400, "'id' must be a string"),
    ("unknown-datatype", V2, _v2_with(0, datatype="FLOAT"), JSON, 400, "unknown datatype 'FLOAT'"),
    (
        "bytes-for-numeric",
        V2,
        _v2_with(0, datatype="BYTES", data=["12.5"]),
        JSON,
        400,
        "numeric feature needs a numeric datatype",
    ),
    ("fp32-for-categorical", V2, _v2_with(2, datatype="FP32", data=[1.0]), JSON, 400, "needs datatype BYTES"),
    ("non-numeric-string-v2", V2, _v2_with(0, data=["abc"]), JSON, 400, "'amount' is numeric but value #0 is 'abc'"),
    ("float-in-int64", V2, _v2_with(1, data=[3.5]), JSON, 400, "integer datatype"),
    ("number-as-bytes", V2, _v2_with(2, data=[7]), JSON, 400, "not a string"),
    ("shape-data-mismatch", V2, _v2_with(0, data=[1.0, 2.0]), JSON, 400, "needs 1 values, 'data' has 2"),
    ("rows-mismatch", V2, _v2_with(0, shape=[2], data=[1.0, 2.0]), JSON, 400, "the other inputs have 2"),
    ("wrong-rank", V2, _v2_with(0, shape=[1, 2], data=[1.0, 2.0]), JSON, 400, "is not [n] or [n, 1]"),
    ("negative-shape", V2, _v2_with(0, shape=[-1]), JSON, 400, "non-negative integers"),
    (
        "empty-shape",
        V2,
        {"inputs": [{**i, "shape": [0], "data": []} for i in _good_v2()["inputs"]]},
        JSON,
        400,
        "empty",
    ),
    (
        "missing-input",
        V2,
        {"inputs": _good_v2()["inputs"][:4]},
        JSON,
        400,
        "missing input(s) for feature(s) ['country']",
    ),
    (
        "extra-input",
        V2,
        {"inputs": [*_good_v2()["inputs"], {"name": "is_fraud", "datatype": "INT64", "shape": [1], "data": [0]}]},
        JSON,
        400,
        "unexpected input(s) ['is_fraud']",
    ),
    ("duplicate-input", V2, {"inputs": [*_good_v2()["inputs"], _good_v2()["inputs"][0]]}, JSON, 400, "more than once"),
    ("unknown-output", V2, {**_good_v2(), "outputs": [{"name": "logits"}]}, JSON, 400, "unknown output 'logits'"),
    ("too-deep-nesting", V2, _v2_with(0, data=[[[[[[1.0]]]]]]), JSON, 400, "nested too deeply"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_gets_a_4xx_with_a_message(case, sklearn_dir, kit):
    _id, path, body, headers, status, fragment = case
    app, _ = kit.serve_app(sklearn_dir, "bad")
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = kit.send(app, "POST", path, content=content, headers=headers)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_good_requests_of_the_corpus_pass(sklearn_dir, kit):
    """The corpus' baseline bodies are valid, so each bad case fails for its own reason."""
    app, _ = kit.serve_app(sklearn_dir, "bad")
    v1, v2 = kit.send_all(app, [("POST", V1, {"json": {"instances": [GOOD_ROW]}}), ("POST", V2, {"json": _good_v2()})])
    assert v1.status_code == 200 and v2.status_code == 200, (v1.text, v2.text)
    assert v1.json()["predictions"][0]["probability"] == pytest.approx(
        next(o for o in v2.json()["outputs"] if o["name"] == "probability")["data"][0], rel=1e-6
    )


def test_null_values_are_missing_values_like_offline(sklearn_dir, kit):
    import pandas as pd

    app, _model = kit.serve_app(sklearn_dir, "nulls")
    row = {**GOOD_ROW, "amount": None, "country": None}
    response = kit.send(app, "POST", "/v1/models/nulls:predict", json={"instances": [row]})
    assert response.status_code == 200, response.text
    frame = pd.DataFrame([{**row, "amount": np.nan}])
    expected = md.load_model(sklearn_dir).predict_proba(frame)
    assert response.json()["predictions"][0]["probability"] == pytest.approx(float(expected[0]), abs=1e-12)


def test_oversized_body_gets_413(sklearn_dir, kit):
    from kfpkit.serving.predictor import KfpkitModel
    from kfpkit.serving.server import KfpkitModelServer

    model = KfpkitModel("small", sklearn_dir)
    assert model.load()
    app = KfpkitModelServer(host="127.0.0.1", http_port=0, enable_grpc=False, max_body_bytes=100).create_app([model])
    response = kit.send(app, "POST", "/v1/models/small:predict", json={"instances": [GOOD_ROW] * 10})
    assert response.status_code == 413 and "exceeds" in response.json()["error"]


def test_unknown_model_is_404_from_kserve(sklearn_dir, kit):
    app, _ = kit.serve_app(sklearn_dir, "known")
    response = kit.send(app, "POST", "/v2/models/unknown/infer", json=_good_v2())
    assert response.status_code == 404


def test_large_batch_is_scored_off_the_event_loop_with_the_same_result(sklearn_dir, frame, kit):
    app, model = kit.serve_app(sklearn_dir, "large")
    rows = frame.head(300)  # > INLINE_MAX_ROWS
    spec = model.loaded.spec
    response = kit.send(
        app, "POST", "/v2/models/large/infer", json=payloads.v2_body(rows, spec.feature_order, spec.categorical_names)
    )
    assert response.status_code == 200
    probability = next(o for o in response.json()["outputs"] if o["name"] == "probability")
    np.testing.assert_allclose(probability["data"], _offline(sklearn_dir, rows), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------- refused models


def _tamper(directory):
    path = os.path.join(directory, md.SKOPS_FILE)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as fh:
        fh.write(bytes(data))


def test_tampered_model_is_refused_not_ready_with_a_clear_log_line(sklearn_dir, copy_dir, kit, caplog):
    from kserve.errors import NoModelReady

    from kfpkit.serving.predictor import KfpkitModel
    from kfpkit.serving.server import KfpkitModelServer

    directory = copy_dir(sklearn_dir)
    _tamper(directory)
    with caplog.at_level(logging.ERROR, logger="kfpkit.serving"):
        app, model = kit.serve_app(directory, "tampered", require_ready=False)
    assert not model.ready
    assert "sha256 mismatch in model.skops" in model.load_error
    assert any(
        r.levelno == logging.ERROR
        and re.search(r"model tampered refused: .*sha256 mismatch in model\.skops", r.getMessage())
        for r in caplog.records
    )
    ready, infer, v1 = kit.send_all(
        app,
        [
            ("GET", "/v2/models/tampered/ready", {}),
            ("POST", "/v2/models/tampered/infer", {"json": _good_v2()}),
            ("POST", "/v1/models/tampered:predict", {"json": {"instances": [GOOD_ROW]}}),
        ],
    )
    assert ready.status_code == 503
    assert infer.status_code == 503 and "sha256 mismatch" in infer.json()["error"]
    assert v1.status_code == 503
    refused = KfpkitModel("tampered", directory)
    assert not refused.load()
    with pytest.raises(NoModelReady):
        KfpkitModelServer(host="127.0.0.1", http_port=0, enable_grpc=False).create_app([refused])


def test_model_without_manifest_is_refused(tmp_path, frame, kit):
    directory = kit.build_sklearn_dir(str(tmp_path / "nomanifest"), frame.head(200), manifest=False)
    _, model = kit.serve_app(directory, "nomanifest", require_ready=False)
    assert not model.ready and "no MANIFEST.json" in model.load_error


def test_model_with_a_file_added_after_the_manifest_is_refused(sklearn_dir, copy_dir, kit):
    directory = copy_dir(sklearn_dir)
    with open(os.path.join(directory, "extra.bin"), "wb") as fh:
        fh.write(b"x")
    _, model = kit.serve_app(directory, "extra", require_ready=False)
    assert not model.ready and "unlisted file extra.bin" in model.load_error


# ---------------------------------------------------------------------- metrics and logging


def _metric(text, name, **labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_include_kfpkit_score_histogram_and_request_counters(sklearn_dir, frame, kit):
    app, model = kit.serve_app(sklearn_dir, "metered")
    spec = model.loaded.spec
    body = payloads.v2_body(frame.head(10), spec.feature_order, spec.categorical_names)
    responses = kit.send_all(
        app,
        [
            ("POST", "/v2/models/metered/infer", {"json": body}),
            ("POST", "/v1/models/metered:predict", {"json": {"instances": [GOOD_ROW]}}),
            ("POST", "/v1/models/metered:predict", {"json": {"instances": []}}),
            ("POST", "/v1/models/metered:predict", {"content": b"x", "headers": {"content-type": "text/csv"}}),
            ("GET", "/metrics", {}),
        ],
    )
    assert [r.status_code for r in responses] == [200, 200, 400, 415, 200]
    text = responses[-1].text
    assert _metric(text, "kfpkit_prediction_score_count", model_name="metered") == 11
    assert _metric(text, "kfpkit_prediction_score_bucket", model_name="metered", le="1.0") == 11
    assert _metric(text, "kfpkit_requests_total", model_name="metered", protocol="v2", outcome="success") == 1
    assert _metric(text, "kfpkit_requests_total", model_name="metered", protocol="v1", outcome="success") == 1
    assert _metric(text, "kfpkit_requests_total", model_name="metered", protocol="v1", outcome="bad_request") == 1
    assert (
        _metric(text, "kfpkit_requests_total", model_name="metered", protocol="v1", outcome="unsupported_media_type")
        == 1
    )
    assert _metric(text, "kfpkit_request_duration_seconds_count", model_name="metered", protocol="v1") == 3
    assert _metric(text, "request_predict_seconds_count", model_name="metered") == 2  # KServe's own histogram


def test_access_log_filter_drops_only_inference_paths():
    from kfpkit.serving.fast_path import InferenceAccessLogFilter

    def record(path):
        return logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            "",
            0,
            '%s - "%s %s HTTP/%s" %d',
            ("1.2.3.4:5", "POST", path, "1.1", 200),
            None,
        )

    keep = InferenceAccessLogFilter()
    assert not keep.filter(record("/v2/models/m/infer"))
    assert not keep.filter(record("/v1/models/m:predict?x=1"))
    assert keep.filter(record("/v2/health/ready"))
    assert keep.filter(record("/v2/models/m"))


# ---------------------------------------------------------------------- payload builders


def test_payloads_send_missing_values_as_null_and_the_unknown_bucket(kit):
    import pandas as pd

    rows = pd.DataFrame({"amount": [1.5, np.nan], "hour": [3, 4], "channel": ["web", None], "is_fraud": [0, 1]})
    v1 = payloads.v1_body(rows, ["amount", "hour", "channel"], ["channel"])
    assert v1 == {
        "instances": [
            {"amount": 1.5, "hour": 3.0, "channel": "web"},
            {"amount": None, "hour": 4.0, "channel": ""},
        ]
    }
    assert payloads.v1_body(rows, ["amount", "hour", "channel"], ["channel"], as_rows=True)["instances"][1] == [
        None,
        4.0,
        "",
    ]
    v2 = payloads.v2_body(rows, ["amount", "hour", "channel"], ["channel"])
    assert [(i["name"], i["datatype"], i["data"]) for i in v2["inputs"]] == [
        ("amount", "FP32", [1.5, None]),
        ("hour", "INT64", [3, 4]),
        ("channel", "BYTES", ["web", ""]),
    ]
    with pytest.raises(ValueError, match="categorical"):
        payloads.v2_body(rows, ["amount", "channel"], ["channel"], as_tensor=True)
    with pytest.raises(KeyError, match="distance"):
        payloads.v1_body(rows, ["distance"])


def test_kserve_predict_handler_reads_binary_tensors_of_an_infer_request(sklearn_dir, frame):
    """The gRPC / binary REST path: InferRequest inputs whose data are raw numpy bytes."""
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferInput, InferRequest

    from kfpkit.serving.predictor import KfpkitModel

    model = KfpkitModel("grpc", sklearn_dir)
    assert model.load()
    rows = frame.head(4)
    spec = model.loaded.spec
    inputs = []
    for name in spec.feature_order:
        if name in spec.categorical_names:
            item = InferInput(name, [4], "BYTES")
            item.set_data_from_numpy(np.array([str(v) for v in rows[name].fillna("")], dtype=object), binary_data=True)
        else:
            item = InferInput(name, [4], "FP64")
            item.set_data_from_numpy(rows[name].to_numpy(dtype=np.float64), binary_data=True)
        inputs.append(item)
    response = model.predict(InferRequest("grpc", inputs, request_id="g-1"))
    assert response.id == "g-1"
    np.testing.assert_allclose(
        response.get_output_by_name("probability").data, _offline(sklearn_dir, rows), rtol=1e-6, atol=1e-7
    )
    with pytest.raises(InvalidInput, match="missing input"):
        model.predict(InferRequest("grpc", inputs[:2]))


def test_served_app_is_the_fast_path_in_front_of_kserves_app_with_the_body_limit_before_kserve(sklearn_dir, kit):
    from fastapi import FastAPI
    from timing_asgi import TimingMiddleware

    from kfpkit.serving.fast_path import BodyLimitMiddleware, FastInferenceMiddleware
    from kfpkit.serving.kserve_overrides import RawInferBodyMiddleware

    served, _ = kit.serve_app(sklearn_dir, "structure")
    assert isinstance(served, FastInferenceMiddleware) and isinstance(served.app, FastAPI)
    kserve_side = [BodyLimitMiddleware, RawInferBodyMiddleware, TimingMiddleware]
    assert [m.cls for m in served.app.user_middleware] == kserve_side
    paths = set(served.app.openapi()["paths"])
    assert {"/metrics", "/v1/models/{model_name}:predict", "/v2/models/{model_name}/infer", "/v2/health/ready"} <= paths
    plain, _ = kit.serve_app(sklearn_dir, "structure", fast_path=False)
    assert isinstance(plain, FastAPI) and [m.cls for m in plain.user_middleware] == kserve_side


def test_access_log_off_leaves_uvicorn_nothing_to_log_and_on_restores_its_handlers():
    from kfpkit.serving.server import KfpkitModelServer

    access = logging.getLogger("uvicorn.access")
    handler = logging.NullHandler()
    saved = (list(access.handlers), access.propagate)
    access.handlers = [handler]
    try:
        KfpkitModelServer(host="127.0.0.1", http_port=0, enable_grpc=False).create_app()
        assert not access.hasHandlers()  # what uvicorn's protocol checks before formatting a record
        KfpkitModelServer(host="127.0.0.1", http_port=0, enable_grpc=False, access_log=True).create_app()
        assert access.handlers == [handler]
    finally:
        access.handlers, access.propagate = saved


def test_requests_without_an_id_get_distinct_generated_ids_and_models_distinct_prefixes(sklearn_dir):
    from kfpkit.serving.predictor import KfpkitModel
    from kfpkit.serving.protocol import DecodedRequest

    model, other = KfpkitModel("ids", sklearn_dir), KfpkitModel("ids-2", sklearn_dir)
    assert model.load() and other.load()
    spec = model.loaded.spec
    ids = []
    for _ in range(3):
        columns = {f.name: [0.0] for f in spec.numeric} | {c.name: ["web"] for c in spec.categorical}
        decoded = DecodedRequest(columns=columns, rows=1)
        model.score(decoded)
        ids.append(decoded.request_id)
    assert len(set(ids)) == 3 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert other._next_request_id()[:16] != ids[0][:16]  # one random prefix per model instance


def test_identifier_columns_left_out_by_training_are_accepted_and_ignored():
    from kfpkit.serving.protocol import BadRequest, RequestCodec

    codec = RequestCodec(["amount", "channel"], ["channel"], "m", ignored_columns=["transaction_id"])
    v1 = codec.decode_v1({"instances": [{"transaction_id": "t-1", "amount": 3.0, "channel": "web"}]})
    assert set(v1.columns) == {"amount", "channel"} and v1.rows == 1
    v2 = codec.decode_v2(
        {
            "inputs": [
                {"name": "transaction_id", "datatype": "BYTES", "shape": [1], "data": ["t-1"]},
                {"name": "amount", "datatype": "FP32", "shape": [1], "data": [3.0]},
                {"name": "channel", "datatype": "BYTES", "shape": [1], "data": ["web"]},
            ]
        }
    )
    assert set(v2.columns) == {"amount", "channel"}
    with pytest.raises(BadRequest, match=r"unexpected feature\(s\) \['is_fraud'\]"):
        codec.decode_v1({"instances": [{"transaction_id": "t", "amount": 1.0, "channel": "web", "is_fraud": 0}]})
