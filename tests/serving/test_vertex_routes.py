"""``kfpkit serve`` under Vertex AI's custom-container variables, called the way Vertex calls it."""

from __future__ import annotations

import os
import socket

import httpx
import pytest

from kfpkit.serving.fast_path import FastInferenceMiddleware
from kfpkit.serving.vertex_routes import VertexRoutes, vertex_settings
from tests.serving.conftest import SERVER_STARTUP_TIMEOUT_S, send

PREDICT_ROUTE = "/v1/endpoints/1234/deployedModels/5678:predict"  # Vertex's default routes' shape
HEALTH_ROUTE = "/v1/endpoints/1234/deployedModels/5678"


def _app(model_dir, vertex=True, require_ready=True):
    from kfpkit.serving.predictor import KfpkitModel
    from kfpkit.serving.server import KfpkitModelServer

    model = KfpkitModel("fraud", model_dir)
    model.load()
    routes = ("fraud", PREDICT_ROUTE, HEALTH_ROUTE) if vertex else None
    server = KfpkitModelServer(host="127.0.0.1", http_port=0, enable_grpc=False, vertex_routes=routes)
    return server.create_app([model], require_ready=require_ready)


def _instances(frame, rows=3):
    return frame.drop(columns=["is_fraud"], errors="ignore").head(rows).to_dict(orient="records")


def test_vertex_predict_route_takes_instances_and_parameters_and_answers_predictions(torch_dir, frame):
    app = _app(torch_dir)
    body = {"instances": _instances(frame), "parameters": {"confidence": 0.5}}
    vertex = send(app, "POST", PREDICT_ROUTE, json=body)
    kfpkit_v1 = send(app, "POST", "/v1/models/fraud:predict", json={"instances": _instances(frame)})
    assert vertex.status_code == 200, vertex.text
    assert set(vertex.json()) == {"predictions"} and len(vertex.json()["predictions"]) == 3
    assert vertex.json() == kfpkit_v1.json()


def test_vertex_health_route_answers_200_once_the_model_is_loaded(torch_dir):
    assert send(_app(torch_dir), "GET", HEALTH_ROUTE).status_code == 200


def test_vertex_health_route_answers_503_while_the_model_is_not_loaded(torch_dir, copy_dir):
    tampered = copy_dir(torch_dir)
    with open(os.path.join(tampered, "preprocessing.json"), "a", encoding="utf-8") as fh:
        fh.write(" ")
    app = _app(tampered, require_ready=False)
    assert send(app, "GET", HEALTH_ROUTE).status_code == 503
    assert send(app, "POST", PREDICT_ROUTE, json={"instances": [[1.0]]}).status_code >= 500


def test_without_vertex_variables_nothing_is_added_in_front_of_the_fast_path(torch_dir):
    app = _app(torch_dir, vertex=False)
    assert isinstance(app, FastInferenceMiddleware)  # the benchmarks' fast path, unwrapped
    assert send(app, "POST", PREDICT_ROUTE, json={"instances": [[1.0]]}).status_code == 404
    assert isinstance(_app(torch_dir), VertexRoutes)


def test_vertex_settings_are_read_only_when_set_and_checked():
    assert vertex_settings({}) is None
    settings = vertex_settings({"AIP_HTTP_PORT": "8080", "AIP_PREDICT_ROUTE": "/p", "AIP_HEALTH_ROUTE": "/h"})
    assert settings is not None and (settings.http_port, settings.predict_route, settings.health_route) == (
        8080,
        "/p",
        "/h",
    )
    with pytest.raises(ValueError, match="AIP_HTTP_PORT"):
        vertex_settings({"AIP_HTTP_PORT": "http"})
    with pytest.raises(ValueError, match="AIP_PREDICT_ROUTE"):
        vertex_settings({"AIP_PREDICT_ROUTE": "predict"})


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kfpkit_serve_listens_on_aip_http_port_and_answers_vertex_routes(torch_dir, frame, tmp_path):
    import subprocess
    import sys
    import time

    port = _free_port()
    env = dict(os.environ, AIP_HTTP_PORT=str(port), AIP_PREDICT_ROUTE=PREDICT_ROUTE, AIP_HEALTH_ROUTE=HEALTH_ROUTE)
    command = [sys.executable, "-m", "kfpkit.cli", "serve", "--model-dir", torch_dir, "--model-name", "fraud"]
    command += ["--host", "127.0.0.1", "--enable_grpc", "false"]  # no --http-port: AIP_HTTP_PORT decides
    log = open(tmp_path / "serve.log", "wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVER_STARTUP_TIMEOUT_S
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(base + HEALTH_ROUTE, timeout=1.0)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert health is not None and health.status_code == 200, (tmp_path / "serve.log").read_text()[-2000:]
        answer = httpx.post(base + PREDICT_ROUTE, json={"instances": _instances(frame)}, timeout=10)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 3
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
