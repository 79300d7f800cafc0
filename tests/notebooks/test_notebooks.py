"""The notebooks: committed without outputs, and executed with nbclient in a kernel of this interpreter.

The cluster notebooks (Kubeflow, Vertex AI) run top to bottom against the same loopback FAKES as the
submit tests: the test injects the fake's address after the notebook's ``parameters`` cell (the papermill
convention), whose defaults are what a user with a cluster runs.
"""

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

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


def execute(path: Path, parameters: dict, workdir: Path, kernel_dir: Path):
    """Runs the notebook with ``parameters`` injected after its parameters cell; returns (notebook, seconds)."""
    notebook = nbformat.read(path, as_version=4)
    injected = nbformat.v4.new_code_cell("\n".join(f"{name} = {value!r}" for name, value in parameters.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(_parameters_cell(notebook) + 1, injected)
    manager = KernelManager(
        kernel_name="kfpkit-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)])
    )
    client = NotebookClient(notebook, km=manager, timeout=BUDGET_S, resources={"metadata": {"path": str(workdir)}})
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
        assert len(fake.pipelines) == 1 and len(fake.versions) == 1
        assert len(fake.runs) == 1 and len(fake.recurring_runs) == 1
        (recurring,) = fake.recurring_runs.values()
        assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
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
        assert len(fake.jobs) == 1 and len(fake.schedules) == 1
        (schedule,) = fake.schedules.values()
        assert schedule.cron == "TZ=Europe/Amsterdam 0 3 * * *"
        (job,) = fake.jobs.values()
        assert dict(job.labels) == {"team": "fraud", "pipeline": "training"}
    text = outputs(notebook)
    assert "Vertex AI cron has 5 fields" in text and "day of week '8' is outside 0-7" in text
    assert "final state: PIPELINE_STATE_SUCCEEDED" in text
    print(f"03-vertex-ai.ipynb ran in {seconds:.1f} s")
    assert seconds < BUDGET_S
