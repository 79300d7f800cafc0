"""The local build's pieces that need no engine: the engine's command line and folder, the wheel staging,
the build arguments and the base image's apt sources."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from images import engine, local_base, local_build
from kfpkit.components import images

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_private_engine_keeps_socket_data_exec_root_and_pid_file_in_one_folder_without_iptables_or_bridge(tmp_path):
    folder = engine.EngineDir(str(tmp_path))
    argv = engine.dockerd_command(folder, "/usr/sbin/dockerd")
    assert f"--host=unix://{tmp_path}/docker.sock" in argv
    for flag in ("--data-root", "--exec-root", "--pidfile"):
        value = next(a for a in argv if a.startswith(flag + "=")).split("=", 1)[1]
        assert os.path.dirname(value) == str(tmp_path), flag
    assert "--iptables=false" in argv and "--bridge=none" in argv
    # containerd's sockets live under the exec root: unix socket paths are limited to 108 bytes
    assert len(engine.engine_dir().exec_root) < 40


def test_engine_folder_defaults_outside_the_checkout_and_follows_kfpkit_docker_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("KFPKIT_DOCKER_DIR", raising=False)
    assert engine.engine_dir().root == "/var/tmp/kfpkit-docker"
    monkeypatch.setenv("KFPKIT_DOCKER_DIR", str(tmp_path))
    assert engine.engine_dir().root == str(tmp_path)


def test_stop_leaves_alone_a_process_that_is_not_this_folders_dockerd(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = engine.EngineDir(str(tmp_path))
        (tmp_path / "dockerd.pid").write_text(str(sleeper.pid))
        assert engine.stop(folder) is False
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_an_engine_that_is_not_there_does_not_answer(tmp_path):
    assert engine.answers(f"unix://{tmp_path}/none.sock") is False
    assert engine.answers("tcp://127.0.0.1:9") is False


def test_the_locked_cpu_torch_wheel_is_linked_into_images_wheels_and_stale_ones_removed(tmp_path):
    repo = tmp_path / "repo"
    (repo / "requirements").mkdir(parents=True)
    (repo / "images" / "wheels").mkdir(parents=True)
    (repo / "requirements" / "main.lock").write_text("numpy==2.0.0\ntorch==2.13.0\n")
    stale = repo / "images" / "wheels" / "torch-2.12.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    stale.write_bytes(b"old")
    found = tmp_path / "wheels"
    found.mkdir()
    name = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    (found / name).write_bytes(b"wheel")
    (found / "torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"cuda build: not taken")
    assert local_build.stage_cpu_torch_wheel(str(repo), [str(found)]) == name
    assert sorted(os.listdir(repo / "images" / "wheels")) == [name]
    assert local_build.stage_cpu_torch_wheel(str(repo), [str(tmp_path / "empty")]) is None
    assert os.listdir(repo / "images" / "wheels") == []


def test_local_builds_pass_the_local_base_the_wheel_folder_and_build_train_with_cpu_torch():
    local = local_base.LOCAL_PYTHON_IMAGE
    args = {g: local_build.local_build_args(g, local, "torch.whl") for g in images.IMAGE_NAMES}
    assert all(f"PYTHON_IMAGE={local}" in a for a in args.values())
    assert "TORCH_FIND_LINKS=images/wheels" in args["base"] and "TORCH_FIND_LINKS=images/wheels" in args["train"]
    assert f"TORCH_INDEX_URL={local_build.CPU_TORCH_INDEX}" in args["train"]
    assert not any(a.startswith("TORCH_") for a in args["tfdv"])
    assert "EXTRAS=async-timeout==5.0.1" in args["tfdv"], "redis needs it below Python 3.11.3 (Debian 3.11.2)"
    assert not any(a.startswith("EXTRAS") for a in local_build.local_build_args("tfdv", "upstream", None))
    assert local_build.local_build_args("base", "p", None) == ["PYTHON_IMAGE=p"]


def test_local_builds_are_tagged_as_the_compiled_pipelines_name_them_and_tfdv_without_the_dataflow_target():
    builds = local_build.local_builds(list(images.IMAGE_NAMES))
    assert [b.reference for b in builds] == [images.image_for(g) for g in images.IMAGE_NAMES]
    assert all(b.target is None for b in builds)


def test_the_pinned_python_image_is_read_from_the_dockerfiles():
    assert local_build.pinned_python_image(REPO).startswith("docker.io/library/python:3.11.")


@pytest.mark.parametrize(
    "mirror, security",
    [
        ("http://deb.debian.org/debian", "deb http://deb.debian.org/debian-security bookworm-security main"),
        ("http://m/x", None),
    ],
)
def test_the_local_base_image_has_the_suite_its_updates_and_security_sources(mirror, security):
    lines = local_base.sources_list(mirror).splitlines()
    assert lines[:2] == [f"deb {mirror} bookworm main", f"deb {mirror} bookworm-updates main"]
    assert (lines[2] if len(lines) > 2 else None) == security


def test_the_local_base_image_leaves_out_translations_manuals_and_docs_but_the_copyright_files_as_slim(tmp_path):
    root = tmp_path / "rootfs"
    files = [
        "usr/share/locale/de/LC_MESSAGES/apt.mo",
        "usr/share/locale/locale.alias",
        "usr/share/man/man1/ls.1.gz",
        "usr/share/info/dir",
        "usr/share/doc/python3/changelog.Debian.gz",
        "usr/share/doc/python3/copyright",
        "usr/share/lintian/overrides/python3",
        "usr/share/zoneinfo/UTC",
        "usr/lib/python3.11/os.py",
    ]
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    (root / "etc" / "dpkg").mkdir(parents=True)
    local_base.slim(str(root))
    kept = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    config = "etc/dpkg/dpkg.cfg.d/docker"
    assert kept == sorted(
        [config, "usr/lib/python3.11/os.py", "usr/share/doc/python3/copyright", "usr/share/zoneinfo/UTC"]
    )
    lines = (root / config).read_text().splitlines()
    assert "path-exclude /usr/share/locale/*" in lines and "path-exclude /usr/share/man/*" in lines
    # dpkg applies the last matching line: the include of the copyright files after the doc exclude
    assert lines.index("path-include /usr/share/doc/*/copyright") > lines.index("path-exclude /usr/share/doc/*")
