"""The notebooks: committed without outputs, and executed with nbclient in a kernel of this interpreter.

The cluster notebooks (Kubeflow, Vertex AI) run top to bottom against the same loopback FAKES as the
submit tests: the test injects the fake's address after the notebook's ``parameters`` cell (the papermill
convention), whose defaults are what a user with a cluster runs.
"""

import json
import re
import socket
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from kfpkit.core.records import read_record
from kfpkit.core.run_summary import RunSummary
from tests.submit.fakes import FakeKfp, FakeVertex

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
BUDGET_S = 60  # each notebook must run well within a minute


def _parameters_cell(notebook) -> int:
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "a notebook has exactly one cell tagged 'parameters'"
    return tagged[0]


def _defaults(path: Path) -> dict:
    notebook = nbformat.read(path, as_version=4)
    values: dict = {}
    exec(notebook.cells[_parameters_cell(notebook)].source, values)  # constants only
    return values


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A kernelspec running this very interpreter (the .venv), whatever else is installed as 'python3'."""
    directory = tmp_path_factory.mktemp("kernels")
    spec = directory / "kfpkit-test"
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "kfpkit test", "language": "python"}))
    return directory


def execute(path: Path, parameters: dict, workdir: Path, kernel_dir: Path, cell_timeout: int = BUDGET_S):
    """Runs the notebook with ``parameters`` injected after its parameters cell; returns (notebook, seconds)."""
    notebook = nbformat.read(path, as_version=4)
    injected = nbformat.v4.new_code_cell("\n".join(f"{name} = {value!r}" for name, value in parameters.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(_parameters_cell(notebook) + 1, injected)
    manager = KernelManager(
        kernel_name="kfpkit-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)])
    )
    client = NotebookClient(notebook, km=manager, timeout=cell_timeout, resources={"metadata": {"path": str(workdir)}})
    start = time.monotonic()
    try:
        client.execute()
    finally:  # nbclient leaves a kernel manager it was given running
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
    return notebook, time.monotonic() - start


def outputs(notebook) -> str:
    return "\n".join(
        o.get("text", "") if o.output_type == "stream" else json.dumps(o.get("data", {}))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"
    assert "widgets" not in notebook.metadata


def test_cluster_notebooks_default_to_a_real_cluster():
    kubeflow = _defaults(NOTEBOOKS / "02-kubeflow.ipynb")
    assert kubeflow["KFP_HOST"].startswith("https://") and "127.0.0.1" not in kubeflow["KFP_HOST"]
    assert kubeflow["REGISTRY_ROOT"].startswith("gs://")
    vertex = _defaults(NOTEBOOKS / "03-vertex-ai.ipynb")
    assert vertex["API_ENDPOINT"] is None and vertex["ANONYMOUS_CREDENTIALS"] is False
    assert vertex["PIPELINE_ROOT"].startswith("gs://")


def test_kubeflow_notebook_compiles_uploads_runs_and_schedules(tmp_path, kernel_dir):
    script = [("RUNNING", {"ingest": "RUNNING"}), ("SUCCEEDED", {"ingest": "SUCCEEDED", "train": "SUCCEEDED"})]
    with FakeKfp(run_script=script) as fake:
        parameters = {"KFP_HOST": fake.url, "KFP_TOKEN": "notebook-token", "WAIT_SECONDS": 30, "POLL_SECONDS": 0.05}
        notebook, seconds = execute(NOTEBOOKS / "02-kubeflow.ipynb", parameters, tmp_path, kernel_dir)
        assert fake.problems == []
        pipelines = sorted(p["display_name"] for p in fake.pipelines.values())
        assert pipelines == ["kfpkit-continuous-training", "kfpkit-training"] and len(fake.versions) == 2
        assert len(fake.runs) == 1 and len(fake.recurring_runs) == 2
        training, continuous = fake.recurring_runs.values()
        assert training["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
        # continuous training: every 6 hours, as the pipeline runner, with the Prometheus of the canary analysis
        assert continuous["trigger"]["cron_schedule"]["cron"] == "0 0 */6 * * *"
        assert continuous["service_account"] == "kfpkit-pipeline-runner"
        assert continuous["runtime_config"]["parameters"]["prometheus_url"].startswith("http://prometheus")
        assert {r["headers"].get("authorization") for r in fake.requests} == {"Bearer notebook-token"}
    text = outputs(notebook)
    assert "refused before sending: parameter epochs (NUMBER_INTEGER): 'many' is not an integer" in text
    assert "final state: SUCCEEDED" in text
    assert (tmp_path / "build" / "training.kubeflow.yaml").exists()
    print(f"02-kubeflow.ipynb ran in {seconds:.1f} s")
    assert seconds < BUDGET_S


def test_vertex_notebook_compiles_submits_and_schedules(tmp_path, kernel_dir):
    with FakeVertex() as fake:
        parameters = {
            "API_ENDPOINT": fake.url,
            "ANONYMOUS_CREDENTIALS": True,
            "WAIT_SECONDS": 30,
            "POLL_SECONDS": 0.05,
        }
        notebook, seconds = execute(NOTEBOOKS / "03-vertex-ai.ipynb", parameters, tmp_path, kernel_dir)
        assert fake.problems == []
        assert len(fake.jobs) == 1 and len(fake.schedules) == 2
        schedule, continuous = fake.schedules.values()
        assert schedule.cron == "TZ=Europe/Amsterdam 0 3 * * *"
        assert continuous.cron == "TZ=Europe/Amsterdam 0 */6 * * *"
        continuous_job = continuous.create_pipeline_job_request.pipeline_job
        assert dict(continuous_job.pipeline_spec)["pipelineInfo"]["name"] == "kfpkit-continuous-training"
        values = dict(continuous_job.runtime_config.parameter_values)
        assert values["payload_log"].startswith("gs://") and values["vertex_project"] == "my-project"
        (job,) = fake.jobs.values()
        assert dict(job.labels) == {"team": "fraud", "pipeline": "training"}
    text = outputs(notebook)
    assert "Vertex AI cron has 5 fields" in text and "day of week '8' is outside 0-7" in text
    assert "final state: PIPELINE_STATE_SUCCEEDED" in text
    print(f"03-vertex-ai.ipynb ran in {seconds:.1f} s")
    assert seconds < BUDGET_S


# --------------------------------------------------------------------------- local notebooks (run for real)
QUICKSTART_BUDGET_S = 150  # a kfp.local run of every task on 20,000 rows, then serving: ~75 s on 2 busy cores
KSERVE_BUDGET_S = 90  # a small sklearn model trained and pushed, then serving: ~30-45 s on 2 busy cores
SAMPLE = "synthetic://fraud?rows=20000&seed=0"
_READY = re.compile(r"ready(?: on|: REST) http://127\.0\.0\.1:(?P<port>\d+).*\(pid (?P<pid>\d+)\)")


def _server_of(text: str) -> tuple:
    found = _READY.search(text)
    assert found, "the notebook prints the server's address and pid"
    return int(found["port"]), int(found["pid"])


def _assert_server_gone(port: int, pid: int, timeout: float = 20.0) -> None:
    """Nothing listens on ``port`` and process ``pid`` is gone (or a zombie nobody reaped yet)."""
    deadline = time.monotonic() + timeout
    while True:
        stat = Path(f"/proc/{pid}/stat")
        alive = stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"
        with socket.socket() as sock:
            listening = sock.connect_ex(("127.0.0.1", port)) == 0
        if not alive and not listening:
            return
        assert time.monotonic() < deadline, f"kfpkit serve (pid {pid}, port {port}) still running"
        time.sleep(0.2)


def _assert_stopped_cleanly(text: str) -> None:
    """The notebook's last cell stopped the server it started (SIGTERM, exit 0) and nothing is left."""
    assert "server stopped, exit code 0" in text
    _assert_server_gone(*_server_of(text))


def _images(notebook) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def _makefile_defaults() -> dict:
    """The ``NAME ?= value`` settings of the Makefile (what ``make run`` passes to the training pipeline)."""
    text = (NOTEBOOKS.parent / "Makefile").read_text(encoding="utf-8")
    return dict(re.findall(r"^([A-Z_]+) \?= (.*)$", text, re.M))


def test_local_notebooks_default_to_the_built_in_sample_and_the_make_run_registry():
    from kfpkit.components.ingest.synthetic import LABEL_COLUMN

    quickstart = _defaults(NOTEBOOKS / "01-local-quickstart.ipynb")
    make = _makefile_defaults()
    assert quickstart["SOURCE"] == make["SOURCE"] and quickstart["SOURCE"].startswith("synthetic://fraud?")
    assert quickstart["LABEL_COLUMN"] == make["LABEL_COLUMN"] == LABEL_COLUMN
    assert quickstart["MODEL_NAME"] == make["MODEL_NAME"]
    assert (quickstart["EPOCHS"], quickstart["FRAMEWORK"]) == (8, "pytorch")
    inference = _defaults(NOTEBOOKS / "04-kserve-inference.ipynb")
    # notebook 4 serves what notebook 1 (and `make run`, from the repository root) pushed
    assert quickstart["REGISTRY_ROOT"] == inference["REGISTRY_ROOT"] == "../local_registry"
    assert quickstart["MODEL_NAME"] == inference["MODEL_NAME"] and inference["MODEL_URI"] is None


@pytest.mark.slow
@pytest.mark.tfdv
def test_quickstart_notebook_trains_plots_serves_and_answers_v1_and_v2(tmp_path, kernel_dir):
    parameters = {
        "SOURCE": SAMPLE,
        "EPOCHS": 4,
        "BATCH_SIZE": 512,
        "REGISTRY_ROOT": str(tmp_path / "registry"),
        "PIPELINE_ROOT": str(tmp_path / "outputs"),
    }
    notebook, seconds = execute(
        NOTEBOOKS / "01-local-quickstart.ipynb", parameters, tmp_path, kernel_dir, cell_timeout=QUICKSTART_BUDGET_S
    )
    text = outputs(notebook)
    assert "kfpkit training run: SUCCEEDED" in text and "blessed: True | serves in KServe: True" in text
    assert (tmp_path / "registry" / "fraud-detector" / "1" / "MANIFEST.json").is_file()
    (run_dir,) = (tmp_path / "outputs").glob("kfpkit-training-*/")
    summary = read_record(str(run_dir / "summary.json"), RunSummary)
    assert summary.model_version == 1 and summary.model_created is True
    assert _images(notebook) == 1 and (run_dir / "curves.png").stat().st_size > 10_000
    assert "v1 and v2 match the offline probabilities of 5 test rows" in text
    assert "sent with the label column: 400" in text
    _assert_stopped_cleanly(text)
    print(f"01-local-quickstart.ipynb ran in {seconds:.1f} s")
    assert seconds < QUICKSTART_BUDGET_S


@pytest.mark.slow
def test_kserve_notebook_answers_v1_v2_json_binary_and_grpc_with_offline_probabilities(tmp_path, kernel_dir):
    registry_root = tmp_path / "registry"  # empty: the notebook trains a small sklearn model and pushes it
    parameters = {"REGISTRY_ROOT": str(registry_root), "SAMPLE_SOURCE": "synthetic://fraud?rows=8000&seed=0"}
    notebook, seconds = execute(NOTEBOOKS / "04-kserve-inference.ipynb", parameters, tmp_path, kernel_dir)
    text = outputs(notebook)
    assert "had no blessed fraud-detector: trained a sklearn model" in text
    assert (registry_root / "fraud-detector" / "1" / "MANIFEST.json").is_file()
    assert "all 6 ways agree with the offline probabilities of 8 rows (to 1e-6)" in text
    assert "a request without every feature: StatusCode.INVALID_ARGUMENT" in text
    assert "the label sent as a feature: 400" in text and "not JSON: 415" in text
    assert 'kfpkit_requests_total{model_name="fraud-detector",outcome="success",protocol="v2"} 5.0' in text
    _assert_stopped_cleanly(text)
    print(f"04-kserve-inference.ipynb ran in {seconds:.1f} s")
    assert seconds < KSERVE_BUDGET_S


@pytest.mark.slow
def test_kserve_notebook_server_stops_when_a_later_cell_fails(tmp_path, kernel_dir):
    """nbclient stops at a failing cell; shutting the kernel down then stops the server it started."""
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(NOTEBOOKS / "04-kserve-inference.ipynb", as_version=4)
    started = next(i for i, c in enumerate(notebook.cells) if "subprocess.Popen(" in c.source)
    pid_file = tmp_path / "server.txt"
    record = f"open({str(pid_file)!r}, 'w').write(f'{{http_port}} {{server.pid}}')"
    failing = record + "\nraise RuntimeError('a later cell failed')"
    notebook.cells.insert(started + 1, nbformat.v4.new_code_cell(failing))
    broken = tmp_path / "broken.ipynb"
    nbformat.write(notebook, broken)
    parameters = {"REGISTRY_ROOT": str(tmp_path / "registry"), "SAMPLE_SOURCE": "synthetic://fraud?rows=3000&seed=0"}
    with pytest.raises(CellExecutionError, match="a later cell failed"):
        execute(broken, parameters, tmp_path, kernel_dir)
    port, pid = map(int, pid_file.read_text().split())
    _assert_server_gone(port, pid)


def test_readme_choose_your_path_and_the_notebooks_readme_link_every_notebook():
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    readme = (NOTEBOOKS.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Choose your path\n", 1)[1].split("\n## ", 1)[0]
    assert sorted(set(re.findall(r"\]\(notebooks/([^)]+\.ipynb)\)", section))) == names
    listed = re.findall(r"\]\(([^)/]+\.ipynb)\)", (NOTEBOOKS / "README.md").read_text(encoding="utf-8"))
    assert sorted(set(listed)) == names


# ------------------------------------------------- local notebooks 05 and 06: canary rollout, monitoring
ROLLOUT_BUDGET_S = 120  # two small sklearn models, then 3 canary steps of 3 s with 3 processes: ~60 s
MONITORING_BUDGET_S = 90  # a small sklearn model, serving, 2 x 1,500 rows replayed, 2 monitor runs: ~40 s
SMALL_SOURCES = ("synthetic://fraud?rows=6000&seed=0", "synthetic://fraud?rows=6000&seed=1&drift=0.2")


@pytest.mark.slow
def test_canary_notebook_runs_the_local_rollout_shows_the_analysis_table_and_the_decision(tmp_path, kernel_dir):
    registry_root = tmp_path / "registry"  # empty: the notebook trains and pushes two small sklearn versions
    parameters = {
        "REGISTRY_ROOT": str(registry_root),
        "TRAIN_SOURCES": SMALL_SOURCES,
        "TRAFFIC_ROWS": 1000,
        "INTERVAL": "3s",
        "MIN_REQUESTS": 10,
    }
    notebook, seconds = execute(
        NOTEBOOKS / "05-canary-rollout.ipynb", parameters, tmp_path, kernel_dir, cell_timeout=ROLLOUT_BUDGET_S
    )
    text = outputs(notebook)
    assert [p.name for p in sorted((registry_root / "fraud-detector").glob("*/MANIFEST.json"))] == ["MANIFEST.json"] * 2
    assert re.search(r"stable: .*/fraud-detector/1\n", text) and re.search(r"canary: .*/fraud-detector/2\n", text)
    decision = re.search(r"^decision: (promote|rollback) \((.+)\) after (\d+) intervals$", text, re.M)
    assert decision, "the notebook prints the decision"
    if decision[1] == "promote":
        assert decision[2] == "all 3 steps passed" and "kfpkit rollout exited with 0" in text
        assert "traffic now: version 2: 100 %" in text
    else:
        assert "kfpkit rollout exited with 3" in text and "traffic now: version 1: 100 %" in text
    for metric in ("error_rate_increase", "p99_latency_ratio", "score_js_distance", "score_psi", "p99_seconds"):
        assert metric in text, f"the analysis table has a {metric} row"
    port = int(re.search(r"nginx on port (\d+): stopped", text)[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    print(f"05-canary-rollout.ipynb ran in {seconds:.1f} s ({decision[1]})")
    assert seconds < ROLLOUT_BUDGET_S


@pytest.mark.slow
def test_monitoring_notebook_finds_drift_only_in_the_drifted_window_and_plots_it(tmp_path, kernel_dir):
    registry_root = tmp_path / "registry"
    parameters = {
        "REGISTRY_ROOT": str(registry_root),
        "SAMPLE_SOURCE": "synthetic://fraud?rows=6000&seed=0",
        "WINDOW_ROWS": 1500,
    }
    notebook, seconds = execute(
        NOTEBOOKS / "06-monitoring.ipynb", parameters, tmp_path, kernel_dir, cell_timeout=MONITORING_BUDGET_S
    )
    text = outputs(notebook)
    assert (registry_root / "fraud-detector" / "1" / "MANIFEST.json").is_file()
    assert re.search(r"^like training: 1500 rows, no drift$", text, re.M)
    drifted = re.search(r"^drift=1: 1500 rows, DRIFT in (.+)$", text, re.M)
    assert drifted and "device" in drifted[1].split(", ")
    assert _images(notebook) == 1
    assert "<iframe srcdoc=" in text and "report.html" in text
    _assert_stopped_cleanly(text)
    print(f"06-monitoring.ipynb ran in {seconds:.1f} s")
    assert seconds < MONITORING_BUDGET_S
