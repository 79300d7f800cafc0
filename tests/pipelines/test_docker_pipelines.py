"""The pipelines in their images: ``kfpkit run --runner docker`` (kfp.local's DockerRunner) on a Docker engine.

Needs an engine (``DOCKER_HOST``; ``make docker-engine`` starts one) holding the four images as the components
name them (``make images-local``). Without them the tests skip with a message; under ``CI=true`` they fail.
"""

import dataclasses
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import uuid
import zipfile

import pytest

from kfpkit.components import images
from kfpkit.core.records import read_record
from kfpkit.core.run_summary import RunSummary

pytestmark = [pytest.mark.container, pytest.mark.slow]

SOURCE = "synthetic://fraud?rows=6000&seed=3&fraud_rate=0.08"
TRAIN_FLAGS = [
    "--source", SOURCE, "--label-column", "is_fraud", "--model-name", "fraud-detector",
    "--epochs", "3", "--batch-size", "256", "--min-pr-auc", "0.2", "--seed", "7",
]  # fmt: skip
PROGRESS = re.compile(r"^\[ *\d+\.\ds\] (?P<task>\S+) +(?P<what>started|done in|FAILED after)")
KFP_IMAGE_WARNING = "custom or non-Python base image"
IMAGES = [images.base_image(), images.tfdv_image(), images.train_image(), images.serving_image()]
# Facts of the run, not of the model: they differ between any two runs.
RUN_FACTS = {"rows_per_second"}


def _unavailable(message: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " [CI=true: the container tests must run]")
    pytest.skip(message)


@pytest.fixture(scope="module")
def engine():
    """The Docker client of the engine that holds the four images (skips, or fails under CI=true, without)."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        _unavailable(
            f"needs a Docker engine ({exc}): `make docker-engine`, then the `export DOCKER_HOST=...` it prints"
        )
    # the images are (re)built from this tree first, as tests/images does: a fresh clone gets them, and an image
    # built from older sources never stands in for the code under test (one worker builds, the lock is the build's)
    from images import local_base, local_build

    try:
        local_build.ensure_local_images()
    except local_base.LocalBaseError as exc:
        _unavailable(f"the images cannot be built here (local base image: {exc}): `make images-local`")
    missing = []
    for image in IMAGES:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
    if missing:
        pytest.fail(f"the images {', '.join(missing)} are missing after the build")
    yield client
    client.close()


def _kfpkit_run(folder, pipeline, *flags, runner="docker", timeout=900):
    """``kfpkit run PIPELINE --runner RUNNER`` with outputs under ``folder``; returns (process, summary)."""
    summary_path = folder / "summary.json"
    cmd = [
        sys.executable, "-m", "kfpkit.cli.main", "run", pipeline, "--runner", runner,
        "--pipeline-root", str(folder / "outputs"), "--summary-json", str(summary_path), *flags,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    summary = read_record(str(summary_path), RunSummary) if summary_path.exists() else None
    return proc, summary


def _events(stdout):
    return [(m["task"], m["what"]) for m in map(PROGRESS.match, stdout.splitlines()) if m]


@dataclasses.dataclass
class Run:
    proc: subprocess.CompletedProcess
    summary: RunSummary
    folder: object

    @property
    def registry(self):
        return self.folder / "registry"


@pytest.fixture(scope="module")
def docker_training(engine, tmp_path_factory):
    """The training pipeline run once in the images, into its own pipeline root and registry."""
    folder = tmp_path_factory.mktemp("docker-training")
    proc, summary = _kfpkit_run(folder, "training", *TRAIN_FLAGS, "--registry", str(folder / "registry"))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    return Run(proc, summary, folder)


def _model_metrics(metrics):
    return {k: v for k, v in (metrics or {}).items() if k not in RUN_FACTS}


def _assert_close(docker_values, subprocess_values, what):
    assert set(docker_values) == set(subprocess_values), what
    for key, value in subprocess_values.items():
        assert math.isclose(docker_values[key], value, rel_tol=0, abs_tol=1e-6), (what, key, docker_values[key], value)


def _torchscript_members(path):
    """The TorchScript archive's weights and code (Final declarations sorted, as the registry's identity does).

    Left out: the random ``serialization_id`` and the ``*.debug_pkl`` source maps, which hold the absolute
    path of the Python file each function came from (``/opt/venv/lib/python3.11/site-packages/kfpkit/...`` in
    the image, the checkout here), so they differ wherever kfpkit is installed.
    """
    from kfpkit.core import registry

    members = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename.split("/", 1)[-1]
            if name.endswith(".debug_pkl") or name == ".data/serialization_id":
                continue
            data = archive.read(info)
            members[name] = registry._sorted_final_declarations(data) if name.startswith("code/") else data
    return members


def _json_close(ours, theirs, where):
    """Equal JSON documents, floats within 1e-9 (a last-bit difference of a library's float summation)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), where
        for key in theirs:
            _json_close(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _json_close(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float):
        assert math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12), (where, ours, theirs)
    else:
        assert ours == theirs, (where, ours, theirs)


def _assert_same_model(ours, theirs):
    """The two model version folders hold the same model: every file, less what records the run or the install.

    The weights and the TorchScript code are byte-equal; JSON files (calibration, model card, baseline
    profile) equal with floats within 1e-9, less the run's facts and, in the card, ``versions.python`` (the
    image's Python 3.11 patch release is not the host's; every library version is the lock's in both).
    """
    from kfpkit.core import registry

    def load(folder, name):
        with open(os.path.join(folder, name), encoding="utf-8") as fh:
            return json.load(fh)

    files = sorted(os.path.relpath(os.path.join(p, n), theirs) for p, _, names in os.walk(theirs) for n in names)
    assert files == sorted(os.path.relpath(os.path.join(p, n), ours) for p, _, names in os.walk(ours) for n in names)
    for rel in files:
        a, b = os.path.join(ours, rel), os.path.join(theirs, rel)
        if rel == "model.pt":
            assert _torchscript_members(a) == _torchscript_members(b)
        elif rel == "model_card.json":
            cards = [registry._card_without_run_facts(load(folder, rel)) for folder in (ours, theirs)]
            for card in cards:
                card["versions"].pop("python")
            _json_close(*cards, rel)
        elif rel == "monitoring_baseline.json":  # its identity is the sha256 of model.pt, debug maps included
            _json_close(*[registry._without(load(f, rel), ("created_at", "identity")) for f in (ours, theirs)], rel)
        elif rel.endswith(".json") and rel != "MANIFEST.json":
            _json_close(load(ours, rel), load(theirs, rel), rel)
        elif rel != "MANIFEST.json":
            assert registry._identity_digest(rel, a) == registry._identity_digest(rel, b), rel


def test_training_in_the_images_gives_the_subprocess_runners_summary_and_metrics_on_the_same_seed(
    docker_training, tmp_path
):
    proc, summary = _kfpkit_run(tmp_path, "training", *TRAIN_FLAGS, "--registry", str(tmp_path / "registry"),
                                runner="subprocess")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    ours = docker_training.summary
    assert ours.status == summary.status == "succeeded"
    assert dataclasses.asdict(ours).keys() == dataclasses.asdict(summary).keys()
    assert ours.tasks == summary.tasks and {"ingest", "validate", "train", "evaluate", "push"} <= set(ours.tasks)
    assert sorted(ours.artifacts) == sorted(summary.artifacts)
    assert ours.validation == summary.validation and ours.validation.passed is True
    assert (ours.blessed, ours.infra_blessed, ours.model_version) == (summary.blessed, summary.infra_blessed, 1)
    assert ours.metrics_split == summary.metrics_split == "test"
    _assert_close(ours.metrics, summary.metrics, "evaluate")
    assert ours.training_metrics.keys() == summary.training_metrics.keys() == {"eval"}
    _assert_close(
        _model_metrics(ours.training_metrics["eval"]), _model_metrics(summary.training_metrics["eval"]), "train"
    )
    _assert_same_model(ours.model_uri, summary.model_uri)
    assert sorted(_events(docker_training.proc.stdout)) == sorted(_events(proc.stdout))
    assert "kfp.local DockerRunner (each task in its image)" in docker_training.proc.stdout
    log_text = open(ours.run_log, encoding="utf-8").read()
    assert (
        f"Running image '{images.tfdv_image()}'" in log_text and f"Running image '{images.train_image()}'" in log_text
    )
    for text in (docker_training.proc.stdout, docker_training.proc.stderr, log_text):
        assert KFP_IMAGE_WARNING not in text


def _tree(*folders):
    for folder in folders:
        yield folder
        for parent, subfolders, files in os.walk(folder):
            for name in subfolders + files:
                yield os.path.join(parent, name)


def _let_others_through(folder):
    """Adds search (x) for group and others to ``folder`` and each ancestor up to the first that others can search."""
    for each in (folder, *folder.parents):
        mode = stat.S_IMODE(os.stat(each).st_mode)
        if mode & 0o001:
            return
        os.chmod(each, mode | 0o011)


def test_what_the_tasks_write_belongs_to_uid_1000_and_the_folders_group_and_the_host_user_reads_and_removes_it(
    docker_training,
):
    summary = docker_training.summary
    pipeline_root = summary.pipeline_root
    group = os.stat(pipeline_root).st_gid
    written = [p for p in _tree(summary.run_dir, summary.model_uri) if p != summary.run_log]
    assert len(written) > 20
    for path in written:
        info = os.lstat(path)
        assert (info.st_uid, info.st_gid) == (1000, group), path
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISDIR(info.st_mode):
            assert mode & 0o2775 == 0o2775, f"{path}: {oct(mode)}"
        else:
            assert mode & 0o644 == 0o644, f"{path}: {oct(mode)}"  # kfpkit publishes its files 0644
            with open(path, "rb") as fh:  # the host user reads it
                fh.read(1)
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        return  # the host user (not root) has just read every file; root could not tell
    # as root, check as users who are neither root nor uid 1000: anyone reads every file ... (pytest makes its
    # temporary folders 0700 -- pytest-of-<user>, pytest-<n> and, under xdist, popen-gw<k>: let others through
    # every one of them, as a pipeline root under a home folder would; pytest makes pytest-of-<user> private again
    # at its next session)
    _let_others_through(docker_training.folder)
    files = [p for p in written if os.path.isfile(p)]
    nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    read = subprocess.run([*nobody, "cat", *files], capture_output=True, check=False)
    assert read.returncode == 0, read.stderr.decode(errors="replace")[-2000:]
    # ... and a member of the pipeline root's group (the host user's, here root's) removes a task's folder
    member = [setpriv, "--reuid=65534", f"--regid={group}", "--clear-groups"]
    task_folder = os.path.join(summary.run_dir, "ingest")
    removed = subprocess.run([*member, "rm", "-r", task_folder], capture_output=True, text=True, check=False)
    assert removed.returncode == 0 and not os.path.exists(task_folder), removed.stderr


def test_the_monitoring_pipeline_retrains_through_its_nested_training_in_the_images(docker_training, tmp_path):
    from kfpkit.components.ingest.synthetic import generate_fraud

    live = tmp_path / "live.parquet"
    generate_fraud(3000, seed=11, drift=1.0).drop(columns=["is_fraud"]).to_parquet(live, index=False)
    registry = tmp_path / "registry"
    proc, summary = _kfpkit_run(
        tmp_path, "monitoring",
        "--model-uri", docker_training.summary.model_uri, "--live-source", str(live),
        "--registry-root", str(registry), "--retrain-source", "synthetic://fraud?rows=3000&seed=5&fraud_rate=0.08",
        "--label-column", "is_fraud", "--model-name", "fraud-detector", "--framework", "sklearn",
        "--min-pr-auc", "0.05", "--no-deploy-new-version", "--prometheus-url", "http://127.0.0.1:9",
        # kfp.local (either runner) cannot default an optional pipeline input that has no default value
        # ("ValueError: Unknown value type"): give it one
        "--rollout-thresholds", "{}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert summary.status == "succeeded"
    assert {"monitor", "ingest", "validate", "train", "evaluate", "push"} <= set(summary.tasks), summary.tasks
    assert summary.model_version == 1 and summary.model_uri == str(registry / "fraud-detector" / "1")
    assert os.path.isfile(registry / "fraud-detector" / "1" / "MANIFEST.json")
    assert os.stat(registry / "fraud-detector" / "1").st_uid == 1000


def test_a_failing_task_prints_its_containers_last_lines_and_the_run_exits_1(engine, tmp_path):
    proc, summary = _kfpkit_run(
        tmp_path, "training", "--source", str(tmp_path / "nope.csv"), "--label-column", "y", "--model-name", "m",
        "--registry", str(tmp_path / "registry"), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert summary.status == "failed" and summary.failed_task == "ingest" and summary.model_uri is None
    assert _events(proc.stdout) == [("ingest", "started"), ("ingest", "FAILED after")]
    tail = [line for line in proc.stdout.splitlines() if line.startswith("    | ")]
    assert 0 < len(tail) <= 20 and "nope.csv" in tail[-1], proc.stdout
    assert f"full log: {summary.run_log}" in proc.stdout


def test_a_fast_failing_container_reports_its_exit_status_every_time_and_is_removed(engine, capsys):
    from kfpkit.pipelines.local_docker import run_container_keeping_status

    label = {"kfpkit-test": uuid.uuid4().hex}
    statuses = [
        run_container_keeping_status(
            engine,
            images.base_image(),
            ["python", "-c", "print('bye'); raise SystemExit(3)"],
            {},
            network_mode="none",
            labels=label,
        )
        for _ in range(20)
    ]
    assert statuses == [3] * 20  # kfp 2.17's own runner read 0 for 2 of 30 such containers on this engine
    assert capsys.readouterr().out.count("bye") == 20
    assert engine.containers.list(all=True, filters={"label": f"kfpkit-test={label['kfpkit-test']}"}) == []
