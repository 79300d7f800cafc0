"""check_pins.py: the build-time check that an image's environment holds only what its locks pin."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from images import check_pins
from kfpkit.components import __version__ as kfpkit_version

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "images", "check_pins.py")

LOCK = {"torch": "2.13.0", "numpy": "2.4.6", "pyyaml": "6.0.4"}


def test_an_environment_of_locked_versions_passes_and_a_cpu_local_label_matches_the_plain_pin():
    installed = {"torch": "2.13.0+cpu", "numpy": "2.4.6", "PyYAML": "6.0.4"}
    assert check_pins.find_unpinned(installed, LOCK) == []


def test_a_package_missing_from_the_lock_is_reported_by_name_and_version():
    installed = {"numpy": "2.4.6", "nvidia-cudnn-cu13": "9.20.0.48"}
    assert check_pins.find_unpinned(installed, LOCK) == [
        "nvidia-cudnn-cu13==9.20.0.48 is installed but not pinned by the lock"
    ]


def test_a_version_other_than_the_locked_one_is_reported():
    problems = check_pins.find_unpinned({"numpy": "2.4.5"}, LOCK)
    assert problems == ["numpy==2.4.5 is installed but the lock pins numpy==2.4.6"]


def test_a_pin_with_a_local_label_requires_that_exact_build():
    assert check_pins.find_unpinned({"torch": "2.13.0"}, {"torch": "2.13.0+cpu"}) == [
        "torch==2.13.0 is installed but the lock pins torch==2.13.0+cpu"
    ]


def test_bootstrap_tools_are_checked_only_when_the_lock_lists_them():
    installed = {"pip": "24.0", "setuptools": "80.0.0", "wheel": "0.45.0"}
    assert check_pins.find_unpinned(installed, LOCK) == []
    assert check_pins.find_unpinned(installed, {**LOCK, "setuptools": "84.2.1"}) == [
        "setuptools==80.0.0 is installed but the lock pins setuptools==84.2.1"
    ]


def test_ignored_names_are_skipped():
    assert check_pins.find_unpinned({"kfpkit": "0.1.0"}, LOCK, ignore=["kfpkit"]) == []


def test_the_repository_locks_parse_and_a_malformed_line_is_named(tmp_path):
    main = check_pins.read_lock(os.path.join(REPO, "requirements", "main.lock"))
    assert main["torch"] == "2.13.0" and main["prometheus-client"]
    assert check_pins.read_lock(os.path.join(REPO, "requirements", "tfdv.lock"))["tensorflow-data-validation"]
    bad = tmp_path / "bad.lock"
    bad.write_text("# header\nnumpy==2.4.6\ntorch>=2\n")
    with pytest.raises(check_pins.LockFileError, match=r"bad.lock:3: expected 'name==version', got 'torch>=2'"):
        check_pins.read_lock(str(bad))


def test_several_locks_combine_and_a_conflicting_pin_is_refused(tmp_path):
    (tmp_path / "a.lock").write_text("numpy==2.4.6\n")
    (tmp_path / "b.lock").write_text("triton==3.7.1\nnumpy==2.4.6\n")
    (tmp_path / "c.lock").write_text("numpy==2.4.5\n")
    paths = [str(tmp_path / n) for n in ("a.lock", "b.lock")]
    assert check_pins.read_locks(paths) == {"numpy": "2.4.6", "triton": "3.7.1"}
    with pytest.raises(check_pins.LockFileError, match=r"c.lock pins numpy==2.4.5 but .*a.lock pins numpy==2.4.6"):
        check_pins.read_locks([paths[0], str(tmp_path / "c.lock")])


def test_the_script_checks_the_running_interpreter_and_exits_1_listing_offenders(tmp_path):
    # This environment has pytest and kfpkit; a lock pinning only pytest's version leaves the rest unpinned.
    lock = tmp_path / "tiny.lock"
    lock.write_text(f"pytest=={pytest.__version__}\n")
    result = subprocess.run(
        [sys.executable, SCRIPT, str(lock)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "not pinned by the lock" in result.stderr
    assert "pytest==" not in result.stderr  # pinned at the installed version
    assert f"kfpkit=={kfpkit_version} is installed but not pinned" in result.stderr


def test_the_script_passes_an_environment_that_its_locks_describe(tmp_path):
    installed = sorted(check_pins.installed_distributions().items())
    half = len(installed) // 2
    first, second = tmp_path / "first.lock", tmp_path / "second.lock"
    first.write_text("".join(f"{name}=={version}\n" for name, version in installed[:half]))
    second.write_text("".join(f"{name}=={version}\n" for name, version in installed[half:]))
    result = subprocess.run(
        [sys.executable, SCRIPT, str(first), str(second)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(installed)} distributions, all pinned by {first} {second}" in result.stdout


def test_requirements_of_a_distribution_are_accepted_without_a_lock_pin():
    # torch's CUDA wheels are fixed by torch's own release; here: what the installed torch requires.
    names = check_pins.requirement_names("torch")
    assert "filelock" in names and all(n == check_pins.normalize(n) for n in names)
    installed = {"torch": "2.13.0", "filelock": "3.0.0"}
    lock = {"torch": "2.13.0"}
    assert check_pins.find_unpinned(installed, lock) == ["filelock==3.0.0 is installed but not pinned by the lock"]
    assert check_pins.find_unpinned(installed, lock, ignore=names) == []


# An excerpt of PyPI's metadata for torch 2.13.0 (CUDA 13.0): its CUDA wheels form a tree.
TORCH_CUDA_TREE = {
    "torch": [
        "filelock",
        'cuda-toolkit[cublas,cudart]==13.0.3; platform_system == "Linux"',
        'cuda-bindings<14,>=13.0.3; platform_system == "Linux" and python_version < "3.15"',
        'nvidia-nccl-cu13==2.29.7; platform_system == "Linux"',
        'optree>=0.13.0; extra == "optree"',
    ],
    "cuda-toolkit": [
        "nvidia-cublas==13.1.1.3.*; sys_platform == 'linux' and extra == 'cublas'",
        "nvidia-cuda-runtime==13.0.96.*; sys_platform == 'linux' and extra == 'cudart'",
        "nvidia-cufft==12.0.0.61.*; sys_platform == 'linux' and extra == 'cufft'",
    ],
    "nvidia-cublas": ["nvidia-cuda-nvrtc"],
    "cuda-bindings": ["cuda-pathfinder>=1.4.2"],
    "filelock": [],
    "nvidia-nccl-cu13": [],
    "nvidia-cuda-runtime": [],
    "nvidia-cuda-nvrtc": [],
    "cuda-pathfinder": [],
}


def test_requirements_are_followed_through_the_cuda_wheel_tree_with_the_requested_extras():
    names = check_pins.requirement_names("torch", requires=TORCH_CUDA_TREE.get)
    assert set(names) == {
        "filelock",
        "cuda-toolkit",
        "cuda-bindings",
        "nvidia-nccl-cu13",
        "nvidia-cublas",  # cuda-toolkit[cublas]
        "nvidia-cuda-runtime",  # cuda-toolkit[cudart]
        "nvidia-cuda-nvrtc",  # required by nvidia-cublas
        "cuda-pathfinder",  # required by cuda-bindings
    }
    # an extra nobody asked for is not followed: torch[optree], cuda-toolkit[cufft]
    installed = {name: "1" for name in TORCH_CUDA_TREE} | {"optree": "0.13.0", "nvidia-cufft": "12.0.0.61"}
    installed["torch"] = "2.13.0"
    assert check_pins.find_unpinned(installed, {"torch": "2.13.0"}, ignore=names) == [
        "nvidia-cufft==12.0.0.61 is installed but not pinned by the lock",
        "optree==0.13.0 is installed but not pinned by the lock",
    ]
