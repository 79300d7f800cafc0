"""``kfpkit run --runner docker`` without an engine: flags, mounts, shared folders, the runner's arguments.

The runs themselves, in the images, are in test_docker_pipelines.py.
"""

import io
import os
import stat
import subprocess

import pytest
from kfp import local as kfp_local

from kfpkit.cli import main as cli
from kfpkit.components import images
from kfpkit.pipelines import local, local_docker
from kfpkit.pipelines.local import build_pipeline

DATA_FLAGS = ["--source", "synthetic://fraud?rows=10", "--label-column", "is_fraud", "--model-name", "m"]


@pytest.fixture
def runs(monkeypatch):
    """Replaces the local run: records the options of each ``kfpkit run`` that got as far as running."""
    calls = []

    def fake_run(name, arguments, **options):
        calls.append(options)
        return local.summarize_run(None, options["pipeline_root"], True, 1.0, pipeline=name)

    monkeypatch.setattr(local, "run_pipeline_locally", fake_run)
    return calls


def test_the_runner_flag_defaults_to_subprocess_and_passes_docker_on(runs, tmp_path):
    assert cli.main(["run", "training", *DATA_FLAGS, "--registry", str(tmp_path / "r")]) == 0
    assert cli.main(["run", "training", *DATA_FLAGS, "--registry", str(tmp_path / "r"), "--runner", "docker"]) == 0
    assert [call["runner"] for call in runs] == ["subprocess", "docker"]


def test_an_unknown_runner_is_refused_with_status_2(runs, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["run", "training", *DATA_FLAGS, "--registry", "r", "--runner", "podman"])
    assert done.value.code == 2 and "invalid choice: 'podman'" in capsys.readouterr().err
    assert runs == []


def test_tfdv_python_with_the_docker_runner_is_refused_before_anything_runs(runs, capsys):
    code = cli.main(["run", "training", *DATA_FLAGS, "--registry", "r", "--runner", "docker", "--tfdv-python", "p"])
    assert code == 2 and runs == []
    assert "--tfdv-python applies to --runner subprocess only" in capsys.readouterr().err


def test_run_pipeline_locally_refuses_an_unknown_runner_and_tfdv_python_with_docker():
    with pytest.raises(ValueError, match="subprocess runner only"):
        local.run_pipeline_locally("training", {}, runner="docker", tfdv_python="p")
    with pytest.raises(ValueError, match="unknown runner 'k8s'"):
        local.run_pipeline_locally("training", {}, runner="k8s")


def test_the_training_pipeline_runs_in_the_four_images_the_components_name():
    expected = [images.base_image(), images.serving_image(), images.tfdv_image(), images.train_image()]
    assert local_docker.pipeline_images(build_pipeline("training")) == sorted(expected)
    assert set(local_docker.pipeline_images(build_pipeline("monitoring"))) == set(expected)  # the nested training


def test_path_parameters_are_made_absolute_and_mounted_writable_or_read_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("a,y\n1,0\n")
    (tmp_path / "is_fraud").write_text("a file named like the label column")
    (tmp_path / "schema.pbtxt").write_text("")
    root = tmp_path / "outputs"
    arguments = {
        "source": "data.csv",
        "registry_root": str(tmp_path / "registry"),  # missing: created, it is written
        "curated_schema_uri": "file://" + str(tmp_path / "schema.pbtxt"),
        "checkpoint_dir": str(root / "ckpt"),  # inside the pipeline root: kfp.local mounts it already
        "model_uri": str(tmp_path / "registry" / "m" / "1"),  # inside the registry mount
        "live_source": str(tmp_path / "missing.parquet"),  # missing input: the task reports it
        "label_column": "is_fraud",  # not a path parameter, though a file of that name exists
        "retrain_source": "synthetic://fraud?rows=10",
        "epochs": 3,
    }
    resolved, mounts = local_docker.container_arguments(arguments, str(root))
    assert resolved["source"] == str(tmp_path / "data.csv")
    assert resolved["curated_schema_uri"] == "file://" + str(tmp_path / "schema.pbtxt")
    assert {k: resolved[k] for k in ("label_column", "retrain_source", "epochs")} == {
        "label_column": "is_fraud",
        "retrain_source": "synthetic://fraud?rows=10",
        "epochs": 3,
    }
    assert (tmp_path / "registry").is_dir()
    assert mounts == [
        (str(tmp_path / "registry"), False),
        (str(tmp_path / "data.csv"), True),
        (str(tmp_path / "schema.pbtxt"), True),
    ]


def test_path_parameter_names_cover_every_registered_path_and_no_column():
    assert all(
        local_docker.PATH_PARAMETER.fullmatch(n) for n in ("source", "live_source", "model_uri", "registry_root")
    )
    assert not any(local_docker.PATH_PARAMETER.fullmatch(n) for n in ("label_column", "model_name", "sources_count"))


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_sharing_a_registry_makes_its_writable_folders_group_writable_and_leaves_versions_alone(tmp_path):
    registry = tmp_path / "registry"
    for folder in ("m/1/baseline", "m/.claims", "m/.staging"):
        (registry / folder).mkdir(parents=True)
    for folder in [registry, *registry.rglob("*")]:
        os.chmod(folder, 0o755)
    groups = local_docker.share_with_tasks(str(registry), depth=local_docker.SHARED_DEPTH)
    assert groups == {os.stat(registry).st_gid}
    shared = 0o2775  # rwxrwsr-x
    for folder in (registry, registry / "m", registry / "m" / ".claims", registry / "m" / ".staging"):
        assert _mode(folder) == shared, folder
    for version in (registry / "m" / "1", registry / "m" / "1" / "baseline"):
        assert _mode(version) == 0o755, f"{version}: a complete version is never written again"
    root = tmp_path / "outputs"
    (root / "old-run").mkdir(parents=True)
    os.chmod(root / "old-run", 0o700)
    local_docker.share_with_tasks(str(root))
    assert _mode(root) & 0o2070 == 0o2070 and _mode(root / "old-run") == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to uid 1000 needs root")
def test_a_folder_the_tasks_user_owns_is_left_as_it_is(tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, local_docker.IMAGE_UID, 0)
    assert local_docker.share_with_tasks(str(folder)) == set()
    assert _mode(folder) == 0o700


def test_the_runner_runs_the_images_user_on_the_host_network_with_group_write_and_the_mounts():
    runner = local_docker.docker_runner([("/data/registry", False), ("/data/x.csv", True)], groups=[20, 0, 20])
    assert isinstance(runner, kfp_local.DockerRunner)
    args = runner.container_run_args
    assert "user" not in args, "the tasks run as the image's own user (uid 1000), as on a cluster"
    assert args["network_mode"] == "host" and args["group_add"] == ["0", "20"]
    assert args["entrypoint"] == local_docker.UMASK_ENTRYPOINT
    assert [(m["Source"], m["Target"], m["Type"], m["ReadOnly"]) for m in args["mounts"]] == [
        ("/data/registry", "/data/registry", "bind", False),
        ("/data/x.csv", "/data/x.csv", "bind", True),
    ]


def test_the_umask_entrypoint_runs_kfps_command_unchanged_with_umask_0002():
    command = ["sh", "-ec", 'umask; printf "%s|" "$0" "$@"', "first arg", "--flag", "a b"]
    out = subprocess.run([*local_docker.UMASK_ENTRYPOINT, *command], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["0002", "first arg|--flag|a b|"]


def test_a_docker_run_without_an_engine_does_not_start_and_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    progress = io.StringIO()
    arguments = {"source": "synthetic://fraud?rows=10", "label_column": "is_fraud", "model_name": "m"}
    arguments["registry_root"] = str(tmp_path / "registry")
    summary = local.run_pipeline_locally(
        "training", arguments, pipeline_root=str(tmp_path / "out"), progress=progress, runner="docker"
    )
    text = progress.getvalue()
    assert summary.status == "failed" and summary.tasks == [] and summary.run_dir is None
    assert "kfp.local DockerRunner (each task in its image)" in text
    assert f"the pipeline did not run: DockerSetupError: no Docker engine answers at unix://{tmp_path}" in text
    assert "make docker-engine" in text
    assert "make docker-engine" in open(summary.run_log, encoding="utf-8").read()
