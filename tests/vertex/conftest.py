"""Real parts around the Vertex fakes: a service-account key, the scenario models and a container runtime.

* ``credentials``: a service-account key generated for the session (RSA, never sent anywhere): the
  aiplatform and monitoring clients sign self-signed JWTs with it, as they do with a real key, and the fakes
  check that every call carries them. Subprocesses find it through ``GOOGLE_APPLICATION_CREDENTIALS``.
* ``launcher``: what Vertex's container runtime does with a model version's ``containerSpec``: it runs
  ``kfpkit <args>`` with ``AIP_HTTP_PORT``, ``AIP_PREDICT_ROUTE``, ``AIP_HEALTH_ROUTE`` and the spec's ``env``,
  and reports the container once its health route answers 200. It listens on 127.0.0.1 only (``--host``) and
  without gRPC; a container with the same arguments is started once per session and reused.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import types

import pytest

from kfpkit.components.rollout import analysis
from tests.rollout import harness
from tests.vertex.fake_cloud_monitoring import FakeCloudMonitoring
from tests.vertex.fake_vertex_ai import FakeVertexAI

PROJECT, LOCATION = "kfpkit-test", "us-central1"
MODEL_NAME = "fraud"


@pytest.fixture(scope="session")
def service_account_file(tmp_path_factory):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "fake-key-1",
        "private_key": pem,
        "client_email": f"kfpkit-test@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1",
        # never reached: the clients sign their own JWTs (always_use_jwt_access); a token request would fail
        "token_uri": "http://127.0.0.1:9/token",
    }
    path = tmp_path_factory.mktemp("credentials") / "service-account.json"
    path.write_text(json.dumps(info))
    return str(path)


@pytest.fixture(scope="session")
def credentials(service_account_file):
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(service_account_file)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int, route: str) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", route)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


class ContainerRuntime:
    """Starts a model version's container as Vertex would (see the module docstring)."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.running = {}  # args -> (process, base URL)
        self.started = []

    def __call__(self, model, deployed_model_id: str) -> str:
        spec = model.container_spec
        key = tuple(spec.args)
        if key in self.running and self.running[key][0].poll() is None:
            return self.running[key][1]
        port = free_port()
        env = dict(os.environ, AIP_HTTP_PORT=str(port), AIP_PREDICT_ROUTE=spec.predict_route)
        env.update(AIP_HEALTH_ROUTE=spec.health_route, AIP_DEPLOYED_MODEL_ID=deployed_model_id)
        env.update({e.name: e.value for e in spec.env})
        assert list(spec.command) == ["kfpkit"], spec.command
        command = [sys.executable, "-m", "kfpkit.cli", *spec.args, "--host", "127.0.0.1", "--enable_grpc", "false"]
        log = open(os.path.join(self.log_dir, f"container-{len(self.started)}.log"), "wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.started.append(process)
        deadline = time.monotonic() + 180
        while not _healthy(port, spec.health_route):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"container {spec.args} did not become healthy (see {log.name})")
            time.sleep(0.2)
        warm_up(port, spec.predict_route)
        url = f"http://127.0.0.1:{port}"
        self.running[key] = (process, url)
        return url

    def stop(self):
        for process in self.started:
            process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def warm_up(port: int, route: str, requests: int = 30) -> None:
    """A few predictions first: TorchScript's profiling executor makes a fresh process's first calls slow."""
    batches = harness.replay_batches(batches=requests, marked_fraction=0.0)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for batch in batches:
        conn.request("POST", route, json.dumps({"instances": batch}), {"Content-Type": "application/json"})
        conn.getresponse().read()
    conn.close()


@pytest.fixture(scope="session")
def runtime(tmp_path_factory):
    started = ContainerRuntime(str(tmp_path_factory.mktemp("containers")))
    yield started
    started.stop()


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return harness.build_models(str(tmp_path_factory.mktemp("vertex-models")))


@pytest.fixture(scope="session")
def payload_root(tmp_path_factory):
    """One payload log for the session: a container's arguments name it, and equal arguments share a container."""
    return str(tmp_path_factory.mktemp("payload-log"))


@pytest.fixture()
def fakes(runtime):
    """A fresh fake Vertex AI and Cloud Monitoring per test (the containers are shared)."""
    monitoring = FakeCloudMonitoring(PROJECT).start()
    vertex = FakeVertexAI(runtime, monitoring).start()
    yield types.SimpleNamespace(vertex=vertex, monitoring=monitoring)
    vertex.stop()
    monitoring.stop()


# short intervals as in the KServe scenario suite; Cloud Monitoring's counts are exact (no extrapolation)
CONFIG = analysis.RolloutConfig(
    steps=(25, 50, 100),
    interval_s=3.0,
    min_requests=10,
    max_inconclusive=2,
    thresholds=analysis.Thresholds(min_latency_increase_seconds=0.03, score_alpha=0.001),
)
