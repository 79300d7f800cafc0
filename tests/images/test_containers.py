"""The four images, run as a cluster runs them: uid 1000, read-only root file system, the image's interpreter.

Needs a Docker engine (``make test`` starts one as root, images/engine.py); the images are built by this
session when missing or stale (images/local_build.py, the layer cache makes a no-change build seconds).
Without an engine or root the tests skip with the reason; under ``CI=true`` they fail instead.

* every image: ``id -u`` is 1000, ``kfpkit --version`` and ``pip check`` pass, the root file system is
  read-only and ``/tmp`` writable;
* every component runs its ``python_func`` on tiny data in the image its decorator names, in a pipeline's
  order on one shared folder (tests/images/component_tasks.py): ingest, train, evaluate, push, monitor,
  drift_alert, performance, deploy and rollout (against the loopback fake Kubernetes API and a fake
  Prometheus), infra_validate, validate;
* the serving image serves a pushed model version mounted read-only with ``kfpkit serve`` and answers
  v1, v2 JSON, v2 binary and gRPC from tritonclient and KServe's clients with the offline probabilities
  (1e-6); the payload sink runs from it and writes the payload records of logged events.
"""

from __future__ import annotations

import asyncio
import glob
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import httpx
import numpy as np
import pytest

from images import build, engine, local_base, local_build
from kfpkit.components import images
from kfpkit.core import model_dir as md
from kfpkit.core._version import __version__
from kfpkit.core.preprocessing import _category_key
from tests.deploy.fake_kube import FakeKubeApiServer
from tools import component_readmes as docs

pytestmark = [pytest.mark.container, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
ATOL = 1e-6
# the tasks each image runs (tests/images/component_tasks.py), in order; "canary" is deploy once more
TASKS: List[Tuple[str, List[str]]] = [
    ("base", ["ingest"]),
    ("train", ["train"]),
    (
        "base",
        [
            "evaluate",
            "push",
            "monitor",
            "drift_alert",
            "performance",
            "performance_skipped",
            "retrain_decision",
            "deploy",
            "canary",
            "rollout",
        ],
    ),
    ("serving", ["infra_validate"]),
    ("tfdv", ["validate"]),
]
TASK_COMPONENT = {"canary": "deploy"}


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " [CI=true: the container tests must run]")
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker() -> str:
    """The docker CLI, with ``DOCKER_HOST`` of an engine that answers in this process's environment."""
    host = engine.running_host()
    cli = shutil.which("docker") or "/usr/bin/docker"
    if not host or not os.access(cli, os.X_OK):
        _skip_or_fail(
            "no Docker engine answers (DOCKER_HOST, /var/run/docker.sock): run `make test` as root, which starts "
            "one, or `eval $(make -s docker-engine | tail -1)` first"
        )
    os.environ["DOCKER_HOST"] = host
    return cli


@pytest.fixture(scope="session")
def local_images(docker, tmp_path_factory) -> Dict[str, str]:
    """The four images, built here (one pytest worker at a time; the others then find them cached)."""
    log_path = tmp_path_factory.getbasetemp() / "image-build.log"
    try:
        with open(log_path, "a", encoding="utf-8") as log:
            local_build.ensure_local_images(log=log)
    except local_base.LocalBaseError as exc:
        _skip_or_fail(f"the local base image cannot be built here: {exc}")
    except build.BuildError as exc:
        pytest.fail(f"image build failed (log: {log_path}): {exc}")
    return {group: images.image_for(group) for group in images.IMAGE_NAMES}


def run_in(
    docker: str,
    image: str,
    argv: Sequence[str],
    mounts: Sequence[Tuple[str, str, str]] = (),
    env: Optional[Dict[str, str]] = None,
    network: str = "none",
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """``docker run --rm --read-only --tmpfs /tmp`` of ``image`` as its own user (USER 1000)."""
    command = [docker, "run", "--rm", "--read-only", "--tmpfs", "/tmp:rw,exec,mode=1777", "--network", network]
    for source, target, mode in mounts:
        command += ["-v", f"{source}:{target}:{mode}"]
    for key, value in (env or {}).items():
        command += ["-e", f"{key}={value}"]
    command += [image, *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


# --------------------------------------------------------------------------------------------------
# Every image: uid 1000, read-only root, kfpkit and pip check


@pytest.mark.parametrize("group", list(images.IMAGE_NAMES))
def test_image_runs_as_uid_1000_on_a_read_only_root_with_a_writable_tmp_kfpkit_and_pip_check(
    group, docker, local_images
):
    script = (
        "id -u; kfpkit --version; pip check; "
        "touch /tmp/written && echo tmp-writable; "
        "touch /opt/venv/written 2>/dev/null || echo root-read-only; "
        "touch $HOME/written 2>/dev/null || echo home-read-only"
    )
    done = run_in(docker, local_images[group], ["sh", "-c", script], timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.split()
    assert lines[0] == "1000", done.stdout
    assert __version__ in done.stdout and "No broken requirements found." in done.stdout
    assert "tmp-writable" in lines and "root-read-only" in lines, done.stdout


# The goal for every image without CUDA libraries (train is built here with the CPU torch), as
# `docker image ls` reports sizes. tfdv keeps every locked distribution and bytecode only for what validate
# imports (images/README.md, "Bytecode for what validate imports").
SIZE_LIMITS = {"base": 1.5e9, "serving": 1.5e9, "train": 1.5e9, "tfdv": 1.5e9}
TFDV_LOCK = os.path.join(os.path.dirname(os.path.dirname(HERE)), "requirements", "tfdv.lock")


@pytest.mark.parametrize("group", list(images.IMAGE_NAMES))
def test_image_is_within_its_size_limit(group, local_images):
    sizes = local_build.image_sizes([local_images[group]])
    assert local_images[group] in sizes, f"{local_images[group]}: the engine reports no size for it ({sizes})"
    size = sizes[local_images[group]]
    assert size <= SIZE_LIMITS[group], f"{local_images[group]}: {size / 1e9:.2f} GB > {SIZE_LIMITS[group] / 1e9} GB"


def test_tfdv_image_runs_the_locks_tensorflow_as_the_cpu_build_under_a_metadata_only_tensorflow(docker, local_images):
    with open(TFDV_LOCK, encoding="utf-8") as handle:
        locked = next(line.split("==")[1].strip() for line in handle if line.startswith("tensorflow=="))
    script = (
        "import importlib.metadata as m, json, tensorflow as tf; "
        "print(json.dumps([tf.__version__, tf.test.is_built_with_cuda(), m.version('tensorflow'), "
        "m.version('tensorflow-cpu'), m.requires('tensorflow'), "
        "sorted({str(f).split('/')[0] for f in m.files('tensorflow')})]))"
    )
    done = run_in(docker, local_images["tfdv"], ["python", "-c", script], timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    version, cuda, dist, cpu_dist, requires, folders = json.loads(done.stdout.strip().splitlines()[-1])
    assert (version, dist, cpu_dist) == (locked, locked, locked)
    assert cuda is False
    assert requires == [f"tensorflow-cpu=={locked}"]
    assert folders == [f"tensorflow-{locked}.dist-info"], "the tensorflow distribution is metadata only"


# --------------------------------------------------------------------------------------------------
# Every component in its image


class _LoopbackFakes:
    """A webhook that records POSTs, and a fake Prometheus whose every query answers an empty vector."""

    def __init__(self) -> None:
        posts: List[Dict[str, Any]] = []
        queries: List[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                queries.append(self.path)
                self._answer()

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/api/v1/"):
                    queries.append(self.path)
                else:
                    posts.append(json.loads(data))
                self._answer()

        self.posts, self.queries = posts, queries
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


def _kubeconfig(path: str, url: str) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: fake, cluster: {{server: '{url}'}}}}]\n"
            "users: [{name: fake, user: {token: fake}}]\n"
            "contexts: [{name: fake, context: {cluster: fake, user: fake}}]\ncurrent-context: fake\n"
        )
    return path


@pytest.fixture(scope="module")
def pipeline_work(docker, local_images, tmp_path_factory) -> Iterator[Dict[str, Any]]:
    """Runs every task in its image on one folder (/work, owned by nobody in particular: mode 0777)."""
    work = str(tmp_path_factory.mktemp("containers"))
    os.chmod(work, 0o777)
    kube = FakeKubeApiServer().start()
    fakes = _LoopbackFakes()
    config = _kubeconfig(os.path.join(str(tmp_path_factory.mktemp("kube")), "config"), kube.url)
    ran: Dict[str, List[str]] = {}
    try:
        for group, tasks in TASKS:
            argv = ["python", "/kfpkit-tests/component_tasks.py", "/work", *tasks]
            argv += ["--webhook-url", f"{fakes.url}/hook", "--prometheus-url", fakes.url]
            done = run_in(
                docker,
                local_images[group],
                argv,
                mounts=[(work, "/work", "rw"), (HERE, "/kfpkit-tests", "ro"), (config, "/kube/config", "ro")],
                env={"KUBECONFIG": "/kube/config"},
                network="host",  # the fakes listen on the host's loopback
            )
            assert done.returncode == 0, f"{tasks} in {group}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
            ran.setdefault(group, []).extend(TASK_COMPONENT.get(t, t) for t in tasks)
        with open(os.path.join(work, "results.jsonl"), encoding="utf-8") as handle:
            results = {r["component"]: r for r in map(json.loads, handle)}
        yield {"work": work, "results": results, "ran": ran, "fakes": fakes, "kube": kube}
    finally:
        fakes.server.shutdown()
        kube.stop()
    assert not kube.schema_violations, kube.schema_violations


def test_every_component_ran_its_python_func_in_the_image_its_decorator_names(pipeline_work):
    group_of_image = {images.image_for(g): g for g in images.IMAGE_NAMES}
    expected: Dict[str, set] = {}
    for folder in docs.component_modules():
        image = docs.load_component(folder).component_spec.implementation.container.image
        expected.setdefault(group_of_image[image], set()).add(folder)
    assert {g: set(c) for g, c in pipeline_work["ran"].items()} == expected


def test_validate_in_the_tfdv_image_imports_no_module_of_the_environment_without_its_bytecode(
    pipeline_work, docker, local_images, tmp_path
):
    """The image's bytecode (written by images/tfdv_bytecode.py) covers what the real validate component imports.

    With ``PYTHONVERBOSE`` Python logs ``# code object from <file>.py`` for each module it compiles from source
    (a module without valid bytecode); on the read-only root it cannot write that bytecode, so each such module
    is compiled again on every run.
    """
    work = str(tmp_path / "work")
    shutil.copytree(os.path.join(pipeline_work["work"], "splits"), os.path.join(work, "splits"))
    os.chmod(work, 0o777)
    argv = ["python", "/kfpkit-tests/component_tasks.py", "/work", "validate"]
    mounts = [(work, "/work", "rw"), (HERE, "/kfpkit-tests", "ro")]
    done = run_in(docker, local_images["tfdv"], argv, mounts=mounts, env={"PYTHONVERBOSE": "1"})
    assert done.returncode == 0, done.stderr[-5000:]
    compiled = sorted(
        {
            line.split("code object from ", 1)[1]
            for line in done.stderr.splitlines()
            if line.startswith("# code object from /opt/venv/") and line.endswith(".py")
        }
    )
    assert "code object from '/opt/venv/" in done.stderr, "no module was read from bytecode: not Python's -v output?"
    assert not compiled, (
        f"{len(compiled)} modules compiled from source (add them to images/tfdv_bytecode.py): {compiled}"
    )


def test_components_in_their_images_write_what_the_next_one_reads(pipeline_work):
    results, fakes = pipeline_work["results"], pipeline_work["fakes"]
    assert sum(results["ingest"]["rows"].values()) == 3000
    assert results["train"]["framework"] == "pytorch" and 0 < results["train"]["pr_auc"] <= 1
    assert results["evaluate"]["report"] > 0
    assert results["push"]["version"] == 1 and results["push"]["model_uri"].endswith("/registry/fraud/1")
    assert results["monitor"]["drift_json"] is True
    assert results["drift_alert"]["status"] == 200 and len(fakes.posts) == 1
    assert results["push"]["model_uri"] in json.dumps(fakes.posts[0])
    assert results["performance"]["summary"] is True
    assert results["performance_skipped"]["degraded"] is False
    assert results["retrain_decision"]["decision"] == "performance"
    assert (results["deploy"]["stable_version"], results["deploy"]["canary_version"]) == ("1", "")
    assert (results["canary"]["stable_version"], results["canary"]["canary_version"]) == ("1", "2")
    assert results["rollout"]["decision"] in ("rollback", "promote") and fakes.queries
    assert results["infra_validate"]["infra_blessed"] is True
    assert results["validate"]["schema"] is True
    owners = {os.stat(p).st_uid for p in glob.glob(os.path.join(pipeline_work["work"], "*", "*"))}
    assert owners == {1000}, f"files under the work folder owned by {owners}, not the image's uid 1000"


# --------------------------------------------------------------------------------------------------
# The serving image: kfpkit serve on a pushed model mounted read-only, and the payload sink


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, container: str, docker: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    logs = subprocess.run([docker, "logs", container], capture_output=True, text=True, check=False)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s:\n{(logs.stdout + logs.stderr)[-4000:]}")


def _detached(docker: str, image: str, argv: Sequence[str], mounts: Sequence[Tuple[str, str, str]]) -> str:
    name = f"kfpkit-test-{uuid.uuid4().hex[:10]}"
    command = [docker, "run", "-d", "--rm", "--name", name, "--read-only", "--tmpfs", "/tmp:rw,mode=1777"]
    command += ["--network", "host"]
    for source, target, mode in mounts:
        command += ["-v", f"{source}:{target}:{mode}"]
    done = subprocess.run([*command, image, *argv], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return name


@pytest.fixture(scope="module")
def served(docker, local_images, pipeline_work) -> Iterator[Dict[str, Any]]:
    """``kfpkit serve`` in the serving image on the pushed version 1, mounted read-only at /mnt/models."""
    version_dir = pipeline_work["results"]["push"]["model_uri"].replace("/work", pipeline_work["work"], 1)
    http_port, grpc_port = _free_port(), _free_port()
    argv = ["kfpkit", "serve", "--model-dir", "/mnt/models", "--model-name", "fraud", "--host", "127.0.0.1"]
    argv += ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    name = _detached(docker, local_images["serving"], argv, [(version_dir, "/mnt/models", "ro")])
    try:
        _wait(f"http://127.0.0.1:{http_port}/v2/health/ready", name, docker)
        yield {
            "http": f"127.0.0.1:{http_port}",
            "grpc": f"127.0.0.1:{grpc_port}",
            "base": f"http://127.0.0.1:{http_port}",
            "version_dir": version_dir,
            "container": name,
        }
    finally:
        subprocess.run([docker, "stop", "-t", "10", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def reference(served, pipeline_work) -> Dict[str, Any]:
    """Test rows (missing values included), their offline probabilities in this environment, v2 columns."""
    import pandas as pd

    loaded = md.load_model(served["version_dir"])
    frame = pd.read_parquet(os.path.join(pipeline_work["work"], "splits", "test")).head(40)
    spec = loaded.spec
    expected = loaded.predict_proba(frame)
    columns = {}
    for name in spec.feature_order:
        if name in spec.categorical_names:
            columns[name] = ("BYTES", np.array([_category_key(v) for v in frame[name].tolist()], dtype=object))
        else:
            columns[name] = ("FP64", frame[name].to_numpy(dtype=np.float64))
    labels = (expected >= loaded.decision_threshold).astype(np.int64)
    return {"expected": expected, "labels": labels, "columns": columns, "rows": frame, "spec": spec}


def _json_safe(reference: Dict[str, Any]) -> Tuple[Dict[str, Any], Any]:
    keep = np.ones(len(reference["expected"]), dtype=bool)
    for datatype, values in reference["columns"].values():
        if datatype == "FP64":
            keep &= ~np.isnan(values)
    return {n: (dt, v[keep]) for n, (dt, v) in reference["columns"].items()}, keep


@pytest.mark.parametrize("binary_data", [True, False], ids=["v2-binary", "v2-json"])
def test_serving_image_answers_tritonclient_http_with_the_offline_probabilities(served, reference, binary_data):
    import tritonclient.http as httpclient

    columns, keep = (reference["columns"], slice(None)) if binary_data else _json_safe(reference)
    client = httpclient.InferenceServerClient(url=served["http"], network_timeout=30.0)
    try:
        assert client.is_server_ready() and client.is_model_ready("fraud")
        inputs = []
        for name, (datatype, values) in columns.items():
            item = httpclient.InferInput(name, [len(values)], datatype)
            item.set_data_from_numpy(values, binary_data=binary_data)
            inputs.append(item)
        outputs = [httpclient.InferRequestedOutput(n, binary_data=binary_data) for n in ("probability", "label")]
        result = client.infer("fraud", inputs, outputs=outputs)
    finally:
        client.close()
    np.testing.assert_allclose(result.as_numpy("probability"), reference["expected"][keep], rtol=0, atol=ATOL)
    assert result.as_numpy("label").tolist() == reference["labels"][keep].tolist()


TRITON_GRPC_SCRIPT = """
import json, sys
import numpy as np
import tritonclient.grpc as grpcclient

url, arrays_path, out_path = sys.argv[1:4]
arrays = np.load(arrays_path, allow_pickle=True)
spec = json.loads(str(arrays["__spec__"]))
client = grpcclient.InferenceServerClient(url=url)
inputs = []
for name, datatype in spec:
    item = grpcclient.InferInput(name, [len(arrays[name])], datatype)
    item.set_data_from_numpy(arrays[name])
    inputs.append(item)
result = client.infer("fraud", inputs, client_timeout=30)
json.dump({"probability": result.as_numpy("probability").astype(float).tolist()}, open(out_path, "w"))
client.close()
"""


def test_serving_image_answers_tritonclient_grpc_with_the_offline_probabilities(served, reference, tmp_path):
    """In a subprocess: tritonclient's and KServe's gRPC modules cannot share protobuf's descriptor pool."""
    arrays = {name: values for name, (_dt, values) in reference["columns"].items()}
    spec = [[name, dt] for name, (dt, _values) in reference["columns"].items()]
    np.savez(tmp_path / "inputs.npz", __spec__=np.array(json.dumps(spec)), **arrays)
    out_path = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, "-c", TRITON_GRPC_SCRIPT, served["grpc"], str(tmp_path / "inputs.npz"), str(out_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(out_path.read_text())["probability"]
    np.testing.assert_allclose(got, reference["expected"], rtol=0, atol=ATOL)


def test_serving_image_answers_kserve_clients_v2_rest_and_grpc_with_the_offline_probabilities(served, reference):
    from kserve import InferenceGRPCClient, InferenceRESTClient, RESTConfig
    from kserve.protocol.infer_type import InferInput, InferRequest

    def request(raw: bool, columns: Dict[str, Any]) -> InferRequest:
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

    async def query() -> Tuple[Any, Any]:
        rest = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30, retries=0))
        grpc_client = InferenceGRPCClient(url=served["grpc"], timeout=30, retries=0)
        try:
            return (
                await rest.infer(served["base"], request(False, json_columns), model_name="fraud"),
                await grpc_client.infer(request(True, reference["columns"])),
            )
        finally:
            await rest.close()
            await grpc_client.close()

    rest_json, grpc_raw = asyncio.run(asyncio.wait_for(query(), timeout=90))
    np.testing.assert_allclose(
        rest_json.get_output_by_name("probability").as_numpy(), reference["expected"][keep], rtol=0, atol=ATOL
    )
    np.testing.assert_allclose(
        grpc_raw.get_output_by_name("probability").as_numpy(), reference["expected"], rtol=0, atol=ATOL
    )


def _instances(reference: Dict[str, Any]) -> List[Dict[str, Any]]:
    spec, rows = reference["spec"], reference["rows"]

    def plain(value: Any) -> Any:
        return None if value is None or (isinstance(value, float) and np.isnan(value)) else value

    return [
        {f: plain(v) for f, v in zip(spec.feature_order, values, strict=True)}
        for values in rows[spec.feature_order].astype(object).to_numpy().tolist()
    ]


def test_serving_image_answers_v1_with_the_offline_probabilities(served, reference):
    response = httpx.post(
        f"{served['base']}/v1/models/fraud:predict", json={"instances": _instances(reference)}, timeout=30
    )
    assert response.status_code == 200, response.text
    got = [p["probability"] for p in response.json()["predictions"]]
    np.testing.assert_allclose(got, reference["expected"], rtol=0, atol=ATOL)


def test_payload_sink_runs_from_the_serving_image_and_writes_the_logged_requests(
    docker, local_images, served, reference, tmp_path
):
    out = tmp_path / "out"
    spool = tmp_path / "spool"
    for folder in (out, spool):
        folder.mkdir()
        os.chmod(folder, 0o777)
    port = _free_port()
    argv = ["kfpkit", "payload-sink", "--model", "fraud=/mnt/models", "--spool", "/spool", "--out", "/out"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--compact-seconds", "1"]
    mounts = [(served["version_dir"], "/mnt/models", "ro"), (str(spool), "/spool", "rw"), (str(out), "/out", "rw")]
    name = _detached(docker, local_images["serving"], argv, mounts)
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", name, docker)
        instances = _instances(reference)[:3]
        predictions = [{"probability": float(p), "label": int(p >= 0.5)} for p in reference["expected"][:3]]
        event_id = uuid.uuid4().hex
        for kind, body in (("request", {"instances": instances}), ("response", {"predictions": predictions})):
            headers = {
                "ce-specversion": "1.0",
                "ce-id": event_id,
                "ce-type": f"org.kubeflow.serving.inference.{kind}",
                "ce-source": "http://localhost:9081/fraud",
                "ce-time": "2026-12-01T09:15:00Z",
                "ce-inferenceservicename": "fraud",
                "ce-namespace": "default",
                "ce-component": "predictor",
                "ce-endpoint": "default",
                "content-type": "application/json",
            }
            response = httpx.post(f"http://127.0.0.1:{port}/", headers=headers, json=body, timeout=30)
            assert response.status_code == 200, response.text
        deadline = time.monotonic() + 60
        while not glob.glob(str(out / "**" / "*.parquet"), recursive=True) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        subprocess.run([docker, "stop", "-t", "10", name], capture_output=True, check=False)
    import pyarrow.parquet as pq

    files = glob.glob(str(out / "**" / "*.parquet"), recursive=True)
    assert files, "the sink wrote no payload records"
    table = pq.ParquetDataset(files).read()
    assert table.num_rows == 3 and set(table.column("request_id").to_pylist()) == {event_id}
    np.testing.assert_allclose(table.column("score").to_pylist(), reference["expected"][:3], rtol=0, atol=ATOL)
