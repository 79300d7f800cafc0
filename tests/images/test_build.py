"""The image build command (`make images`): the commands it constructs, tool detection, failures.

No image is built: --dry-run prints the commands, and stand-in `docker`/`buildah` executables on PATH record
how they are invoked and fail on demand.
"""

from __future__ import annotations

import os
import shlex
import stat

import pytest

from images import build
from kfpkit.components import images

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def commands(out: str):
    return [shlex.split(line[2:]) for line in out.splitlines() if line.startswith("+ ")]


def fake_tool(bin_dir, name, log, exit_status=0, info_status=0):
    """An executable ``name`` that appends its argv to ``log``; ``info`` exits ``info_status``."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = info ]; then exit {info_status}; fi\necho "{name} $*" >> "{log}"\nexit {exit_status}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_dry_run_builds_every_group_tagged_with_registry_and_tag_and_pushes_each(in_repo, capsys):
    status = build.main(["--dry-run", "--tool", "docker", "--registry", "r.example/ml/", "--tag", "1.2.3", "--push"])
    assert status == 0
    cmds = commands(capsys.readouterr().out)
    builds = [c for c in cmds if c[1] == "build"]
    pushes = [c for c in cmds if c[1] == "push"]
    tags = [c[c.index("--tag") + 1] for c in builds]
    assert tags == [
        "r.example/ml/kfpkit-base:1.2.3",
        "r.example/ml/kfpkit-tfdv:1.2.3",
        "r.example/ml/kfpkit-tfdv:1.2.3-dataflow",
        "r.example/ml/kfpkit-train:1.2.3",
        "r.example/ml/kfpkit-serving:1.2.3",
    ]
    assert [c[2] for c in pushes] == tags
    assert cmds[0] == [
        "docker",
        "build",
        "--file",
        "./images/base.Dockerfile",
        "--tag",
        "r.example/ml/kfpkit-base:1.2.3",
        "--build-arg",
        "VERSION=1.2.3",
        ".",
    ]
    dataflow = builds[2]
    assert dataflow[dataflow.index("--target") + 1] == "dataflow"
    assert dataflow[dataflow.index("--file") + 1] == "./images/tfdv.Dockerfile"
    # a push follows its own build
    assert cmds.index(pushes[0]) == cmds.index(builds[0]) + 1


def test_default_references_are_the_ones_the_components_use(in_repo, capsys):
    assert build.main(["--dry-run", "--tool", "podman"]) == 0
    tags = [c[c.index("--tag") + 1] for c in commands(capsys.readouterr().out)]
    assert images.base_image() in tags and images.train_image() in tags
    assert images.tfdv_image() in tags and images.serving_image() in tags


def test_buildah_command_carries_layers_isolation_platform_and_build_args(in_repo, capsys):
    argv = ["serving", "--dry-run", "--tool", "buildah", "--isolation", "chroot", "--platform", "linux/amd64"]
    argv += ["--build-arg", "EXTRAS=gcsfs==2026.10.1 s3fs==2026.9.0", "--tag", "7"]
    assert build.main(argv) == 0
    (cmd,) = commands(capsys.readouterr().out)
    assert cmd[:5] == ["buildah", "build", "--layers", "--format", "docker"]
    assert cmd[cmd.index("--isolation") + 1] == "chroot"
    assert cmd[cmd.index("--platform") + 1] == "linux/amd64"
    build_args = [cmd[i + 1] for i, word in enumerate(cmd) if word == "--build-arg"]
    assert build_args == ["VERSION=7", "EXTRAS=gcsfs==2026.10.1 s3fs==2026.9.0"]
    assert cmd[-1] == "."


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "unknown image group(s) ['nope']"),
        (["--tag", "1.0/x"], "--tag '1.0/x' is not a valid image tag"),
        (["--registry", "/"], "--registry must not be empty"),
        (["--build-arg", "NOEQUALS"], "--build-arg must be KEY=VALUE"),
        (["--tool", "docker", "--isolation", "chroot"], "--isolation applies to buildah and podman"),
    ],
)
def test_bad_arguments_fail_with_one_clear_error(in_repo, capsys, argv, message):
    assert build.main(["--dry-run", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_a_context_without_the_dockerfiles_is_refused_naming_them(tmp_path, capsys):
    assert build.main(["base", "--dry-run", "--tool", "docker", "--context", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "images/base.Dockerfile" in err and "repository root" in err


def test_detection_prefers_a_docker_engine_then_buildah_then_podman():
    available = {"docker": "/usr/bin/docker", "buildah": "/usr/bin/buildah", "podman": "/usr/bin/podman"}
    assert build.detect_tool(which=available.get, docker_ok=lambda: True) == "docker"
    assert build.detect_tool(which=available.get, docker_ok=lambda: False) == "buildah"
    no_buildah = {k: v for k, v in available.items() if k != "buildah"}
    assert build.detect_tool(which=no_buildah.get, docker_ok=lambda: False) == "podman"


def test_detection_without_a_usable_tool_says_what_was_found():
    with pytest.raises(build.BuildError, match=r"docker \(with a running engine\), buildah or podman") as raised:
        build.detect_tool(which={"docker": "/usr/bin/docker"}.get, docker_ok=lambda: False)
    assert "engine does not answer" in str(raised.value)
    with pytest.raises(build.BuildError) as raised:
        build.detect_tool(which={}.get, docker_ok=lambda: True)
    assert "does not answer" not in str(raised.value)


def test_auto_detection_skips_a_docker_client_without_engine(in_repo, tmp_path, monkeypatch, capsys):
    log = tmp_path / "calls.log"
    fake_tool(tmp_path / "bin", "docker", log, info_status=1)
    fake_tool(tmp_path / "bin", "buildah", log)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert build.main(["base", "--tag", "9"]) == 0
    assert log.read_text().splitlines() == [
        "buildah build --layers --format docker --file ./images/base.Dockerfile "
        "--tag ghcr.io/kfpkit/kfpkit-base:9 "
        "--build-arg VERSION=9 ."
    ]
    assert "built: ghcr.io/kfpkit/kfpkit-base:9" in capsys.readouterr().out


def test_builds_and_pushes_run_in_order(in_repo, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    fake_tool(tmp_path / "bin", "docker", log)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert build.main(["train", "serving", "--tool", "docker", "--push", "--registry", "reg.io/p", "--tag", "2"]) == 0
    calls = []
    for line in log.read_text().splitlines():
        words = line.split()
        calls.append([*words[:2], words[-1] if words[1] == "push" else words[words.index("--tag") + 1]])
    assert calls == [
        ["docker", "build", "reg.io/p/kfpkit-train:2"],
        ["docker", "push", "reg.io/p/kfpkit-train:2"],
        ["docker", "build", "reg.io/p/kfpkit-serving:2"],
        ["docker", "push", "reg.io/p/kfpkit-serving:2"],
    ]


def test_a_failing_build_stops_with_exit_1_naming_the_image(in_repo, tmp_path, monkeypatch, capsys):
    log = tmp_path / "calls.log"
    fake_tool(tmp_path / "bin", "docker", log, exit_status=3)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert build.main(["--tool", "docker", "--push"]) == 1
    assert len(log.read_text().splitlines()) == 1, "nothing runs after the first failure (not even its push)"
    err = capsys.readouterr().err
    assert err.startswith("error: ghcr.io/kfpkit/kfpkit-base:")
    assert "exit status 3" in err and "images/base.Dockerfile" in err


def test_a_missing_tool_program_is_reported_not_raised(in_repo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert build.main(["base", "--tool", "podman"]) == 1
    assert "cannot run podman" in capsys.readouterr().err
