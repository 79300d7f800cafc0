"""Regression tests for the defects a fuzz of `kfpkit serve` found (issue 8), one or more per finding."""

from __future__ import annotations

import json
import logging
import math
import os

import orjson
import pytest

from kfpkit.core import model_dir as md
from kfpkit.serving.predictor import KfpkitModel
from kfpkit.serving.server import KfpkitModelServer

JSON = {"content-type": "application/json"}
ROW = {"amount": 12.5, "hour": 3, "channel": "web", "distance_km": 1.5, "country": "DE"}


def _app(model_dir, fast_path=True, **server_args):
    model = KfpkitModel("m", model_dir)
    model.load()
    server = KfpkitModelServer(host="127.0.0.1", http_port=0, enable_grpc=False, fast_path=fast_path, **server_args)
    return server.create_app([model], require_ready=False), model


@pytest.mark.parametrize("fast_path", [True, False])
def test_model_repository_unload_is_off_by_default_and_the_model_stays_served(sklearn_dir, kit, fast_path):
    app, _ = _app(sklearn_dir, fast_path)
    unload, infer, ready = kit.send_all(
        app,
        [
            ("POST", "/v2/repository/models/m/unload", {}),
            ("POST", "/v1/models/m:predict", {"json": {"instances": [ROW]}}),
            ("GET", "/v2/health/ready", {}),
        ],
    )
    assert unload.status_code == 404 and "repository extension is off" in unload.json()["error"]
    assert infer.status_code == 200 and ready.status_code == 200


def test_with_the_repository_enabled_unload_makes_the_server_not_ready(sklearn_dir, kit):
    app, _ = _app(sklearn_dir, enable_model_repository=True)
    before, unload, infer, after = kit.send_all(
        app,
        [
            ("GET", "/v2/health/ready", {}),
            ("POST", "/v2/repository/models/m/unload", {}),
            ("POST", "/v1/models/m:predict", {"json": {"instances": [ROW]}}),
            ("GET", "/v2/health/ready", {}),
        ],
    )
    assert before.status_code == 200 and unload.status_code == 200
    assert infer.status_code == 404
    assert after.status_code == 503  # KServe answered ready with no model left


def test_readiness_is_false_while_the_model_is_not_ready(tmp_path, frame, kit):
    directory = kit.build_sklearn_dir(str(tmp_path / "m"), frame)
    os.remove(os.path.join(directory, md.SKOPS_FILE))
    app, model = _app(directory)
    assert not model.ready
    assert kit.send(app, "GET", "/v2/health/ready").status_code == 503


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize(
    "huge", [{"amount": 1e41}, {"amount": 1e41, "hour": 1e40, "distance_km": -1e300}, {"amount": -1e41, "hour": 1e40}]
)
def test_huge_finite_inputs_give_finite_scores_and_the_score_sum_stays_finite(
    sklearn_dir, torch_dir, kit, fast_path, huge
):
    for directory in (sklearn_dir, torch_dir):
        app, _ = _app(directory, fast_path)
        v1 = kit.send(app, "POST", "/v1/models/m:predict", json={"instances": [{**ROW, **huge}, ROW]})
        assert v1.status_code == 200, v1.text
        assert all(math.isfinite(p["probability"]) for p in v1.json()["predictions"])
        v2 = {"inputs": [{"name": k, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1],
                          "data": [{**ROW, **huge}[k]]} for k, v in ROW.items()]}  # fmt: skip
        response = kit.send(app, "POST", "/v2/models/m/infer", content=orjson.dumps(v2), headers=JSON)
        assert response.status_code == 200, response.text
        assert "NaN" not in response.text
        metrics = kit.send(app, "GET", "/metrics").text
        sums = [line for line in metrics.splitlines() if line.startswith('kfpkit_prediction_score_sum{model_name="m"}')]
        assert sums and math.isfinite(float(sums[0].split()[-1]))


@pytest.mark.parametrize("fast_path", [True, False])
def test_body_limit_holds_on_kserves_route_and_for_cloudevents(sklearn_dir, kit, fast_path):
    app, _ = _app(sklearn_dir, fast_path, max_body_bytes=4096)
    big = orjson.dumps({"instances": [ROW] * 200})
    assert len(big) > 4096
    ce = {**JSON, "ce-specversion": "1.0", "ce-id": "1", "ce-source": "fuzz", "ce-type": "t"}
    for headers in (JSON, ce):
        response = kit.send(app, "POST", "/v1/models/m:predict", content=big, headers=headers)
        assert response.status_code == 413 and "exceeds 4096" in response.json()["error"]


@pytest.mark.parametrize("fast_path", [True, False])
def test_booleans_are_refused_mixed_with_numbers_too(sklearn_dir, kit, fast_path):
    app, _ = _app(sklearn_dir, fast_path)
    for instances in ([{**ROW, "amount": 1}, {**ROW, "amount": True}], [{**ROW, "hour": False}]):
        response = kit.send(app, "POST", "/v1/models/m:predict", json={"instances": instances})
        assert response.status_code == 400 and "is numeric but value" in response.json()["error"]


@pytest.mark.parametrize("fast_path", [True, False])
def test_v2_bytes_null_is_the_unknown_bucket(sklearn_dir, kit, fast_path):
    app, _ = _app(sklearn_dir, fast_path)
    inputs = [
        {"name": k, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [2],
         "data": [None, ""] if k == "country" else [v, v]} for k, v in ROW.items()
    ]  # fmt: skip
    response = kit.send(app, "POST", "/v2/models/m/infer", json={"id": "n", "inputs": inputs})
    assert response.status_code == 200, response.text
    probability = next(o for o in response.json()["outputs"] if o["name"] == "probability")["data"]
    assert probability[0] == pytest.approx(probability[1], abs=1e-7)


@pytest.mark.parametrize("fast_path", [True, False])
def test_validation_errors_are_400_error_objects_not_422_detail(sklearn_dir, kit, fast_path):
    app, _ = _app(sklearn_dir, fast_path)
    response = kit.send(app, "POST", "/v2/models/m/infer", json={"inputs": [{"name": "amount", "shape": [1]}]})
    assert response.status_code == 400
    assert set(response.json()) == {"error"} and "missing required field(s)" in response.json()["error"]


def test_model_card_with_a_nan_decision_threshold_is_not_ready(sklearn_dir, copy_dir, kit, caplog):
    directory = copy_dir(sklearn_dir)
    card_path = os.path.join(directory, "model_card.json")
    with open(card_path, encoding="utf-8") as fh:
        card = json.load(fh)
    card["decision_threshold"] = float("nan")
    with open(card_path, "w", encoding="utf-8") as fh:
        json.dump(card, fh)  # writes NaN, as a careless editor would
    md.write_manifest(directory)
    with caplog.at_level(logging.ERROR, logger="kfpkit.serving"):
        app, model = _app(directory)
    assert not model.ready and "decision_threshold" in model.load_error
    assert "model m refused" in caplog.text
    assert kit.send(app, "POST", "/v1/models/m:predict", json={"instances": [ROW]}).status_code == 503


def test_expected_digest_accepts_the_pushed_content_and_refuses_anything_else(sklearn_dir, copy_dir):
    recorded = md.build_manifest(sklearn_dir)["content_sha256"]
    good = KfpkitModel("m", sklearn_dir, expected_digest=recorded)
    assert good.load(), good.load_error
    assert good.content_digest == recorded
    wrong = KfpkitModel("m", sklearn_dir, expected_digest="0" * 64)
    assert not wrong.load() and "differs from the pinned --expected-digest" in wrong.load_error


def test_edited_manifest_is_caught(sklearn_dir, copy_dir):
    """An attacker edits a file and updates its per-file hash in MANIFEST.json."""
    recorded = md.build_manifest(sklearn_dir)["content_sha256"]
    directory = copy_dir(sklearn_dir)
    card_path = os.path.join(directory, "model_card.json")
    with open(card_path, encoding="utf-8") as fh:
        card = json.load(fh)
    card["decision_threshold"] = 0.99
    with open(card_path, "w", encoding="utf-8") as fh:
        json.dump(card, fh)
    manifest_path = os.path.join(directory, md.MANIFEST_FILE)
    with open(manifest_path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    manifest["files"]["model_card.json"] = md.sha256_file(card_path)
    with open(manifest_path, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    unpinned = KfpkitModel("m", directory)
    assert not unpinned.load() and "edited manifest" in unpinned.load_error
    manifest["content_sha256"] = md.build_manifest(directory)["content_sha256"]  # a consistent forgery
    with open(manifest_path, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    pinned = KfpkitModel("m", directory, expected_digest=recorded)
    assert not pinned.load() and "--expected-digest" in pinned.load_error


def test_unknown_model_404_logs_one_line_without_a_traceback(sklearn_dir, kit, caplog):
    app, _ = _app(sklearn_dir, fast_path=False)
    with caplog.at_level(logging.INFO):
        responses = kit.send_all(
            app,
            [
                ("POST", "/v2/models/nope/infer", {"json": {"inputs": []}}),
                ("GET", "/v2/models/nope", {}),
                ("POST", "/v1/models/nope:predict", {"json": {"instances": []}}),
            ],
        )
    assert [r.status_code for r in responses] == [404, 404, 404]
    assert all("nope" in r.json()["error"] for r in responses)
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)


def test_cli_flags_for_the_digest_repository_grpc_and_body_limit():
    from kfpkit.cli.serve import build_parser

    args = build_parser().parse_args(
        ["--model-dir", "d", "--model-name", "m", "--grpc-port", "9001", "--enable-grpc", "false",
         "--expected-digest", "ab" * 32, "--enable-model-repository", "true", "--max-body-bytes", "1024"]
    )  # fmt: skip
    assert (args.grpc_port, args.enable_grpc, args.expected_digest) == (9001, False, "ab" * 32)
    assert args.enable_model_repository is True and args.max_body_bytes == 1024
    defaults = build_parser().parse_args(["--model-dir", "d", "--model-name", "m"])
    assert defaults.enable_model_repository is False and defaults.expected_digest is None
    assert defaults.max_body_bytes == 32 * 1024 * 1024
