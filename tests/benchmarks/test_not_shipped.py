"""What ships and what does not.

The wheel holds the kfpkit packages (cli, components, core, onebox, pipelines, serving) and nothing else: no
Dockerfile, image build script, requirement list, benchmark, load generator of the benchmarks, developer tool
or demo module (demo/). The images hold the packages that run on a cluster: not onebox (the one-machine
stack), and nothing of benchmarks/, tools/, demo/ or images/ beyond the requirement lists and the pin check
their builder stage runs.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile
from typing import List, Tuple

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEVELOPER_FOLDERS = ("benchmarks", "tools", "images", "demo")
# what the wheel and the images get from the repository (setup.py's package_dir and the Dockerfiles' COPY)
PACKAGE_FOLDERS = ("cli", "components", "core", "onebox", "pipelines", "serving")
# packages of the wheel that no image copies (what runs only on one machine)
WHEEL_ONLY_FOLDERS = ("onebox",)
DOCKERFILES = sorted(glob.glob(os.path.join(REPO, "images", "*.Dockerfile")))


def _repo_files(folder: str) -> List[str]:
    """Repository-relative paths of the files under ``folder`` (caches left out)."""
    out = []
    for root, dirs, files in os.walk(os.path.join(REPO, folder)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        out += [os.path.relpath(os.path.join(root, f), REPO) for f in files if not f.endswith(".pyc")]
    return sorted(out)


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> Tuple[List[str], str, str]:
    """``(file names, METADATA, the build's stderr)`` of the wheel that setup.py builds from a copy of the
    repository."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    source.mkdir()
    for name in (*PACKAGE_FOLDERS, *DEVELOPER_FOLDERS):
        shutil.copytree(os.path.join(REPO, name), source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), source / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
         str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = glob.glob(str(tmp / "dist" / "*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        return names, archive.read(metadata).decode("utf-8"), done.stderr


@pytest.fixture(scope="module")
def wheel_files(built_wheel) -> List[str]:
    """The file names inside the wheel."""
    return built_wheel[0]


def test_building_the_wheel_prints_no_setuptools_warning_and_declares_an_spdx_license(built_wheel):
    _names, metadata, stderr = built_wheel
    # pip's own lines about this machine's index configuration are not the project's
    ours = [line for line in stderr.splitlines() if "is ignored: it is neither a file nor a directory" not in line]

    assert [line for line in ours if re.search(r"warn|deprecat", line, re.IGNORECASE)] == [], stderr[-3000:]
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert not [line for line in metadata.splitlines() if line.startswith(("Classifier: License ::", "License:"))]


def test_the_wheel_holds_the_kfpkit_packages_and_no_dockerfile_build_script_or_benchmark(wheel_files):
    modules = {n for n in wheel_files if n.endswith(".py")}

    assert {"kfpkit/components/push/component.py", "kfpkit/cli/main.py", "kfpkit/serving/predictor.py"} <= modules
    assert "kfpkit/core/registry.py" in modules
    assert all(n.startswith("kfpkit/") or ".dist-info/" in n for n in wheel_files), wheel_files
    leaked = [
        n
        for n in wheel_files
        if re.search(
            r"(^|/)(benchmarks|tools|bench|demo)(/|\.py$)|(^|/)images/|Dockerfile|\.in$"
            r"|(^|/)(build|check_pins|loadgen|locustfile|stages|shifts)\.py$",
            n,
        )
    ]
    assert leaked == []
    # exactly the modules of components/, pipelines/ and serving/, as kfpkit.<folder>
    expected = {f"kfpkit/{p}" for folder in PACKAGE_FOLDERS for p in _repo_files(folder) if p.endswith(".py")}
    assert modules - expected == set(), "the wheel ships modules from outside components/, pipelines/, serving/"
    assert expected - modules == set(), "modules left out of the wheel (a folder without __init__.py?)"


def test_no_benchmark_or_tool_is_left_inside_the_package_folders():
    stray = [
        path
        for folder in PACKAGE_FOLDERS
        for path in _repo_files(folder)
        if re.search(r"(^|/)(bench[^/]*\.py|golden\.py|docs\.py|locustfile\.py|bench/)", path)
    ]
    assert stray == [], "benchmarks belong in benchmarks/, developer tools in tools/"


def _dockerignore_rules() -> List[tuple]:
    """``(negated, regex)`` per line of .dockerignore, in order (Docker's patternmatcher syntax)."""
    rules = []
    with open(os.path.join(REPO, ".dockerignore"), encoding="utf-8") as fh:
        for line in fh:
            pattern = line.strip()
            if not pattern or pattern.startswith("#"):
                continue
            negated = pattern.startswith("!")
            pattern = os.path.normpath(pattern.lstrip("!").strip()).lstrip("/")
            regex = ""
            i = 0
            while i < len(pattern):
                if pattern.startswith("**/", i):
                    regex, i = regex + "(?:.*/)?", i + 3
                elif pattern.startswith("**", i):
                    regex, i = regex + ".*", i + 2
                elif pattern[i] == "*":
                    regex, i = regex + "[^/]*", i + 1
                elif pattern[i] == "?":
                    regex, i = regex + "[^/]", i + 1
                else:
                    regex, i = regex + re.escape(pattern[i]), i + 1
            rules.append((negated, re.compile(regex + r"\Z")))
    return rules


def in_build_context(path: str, rules: List[tuple]) -> bool:
    """Whether Docker sends ``path`` (repository-relative) to the daemon: the last rule matching the path or
    one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in rules:
        if any(regex.match(c) for c in candidates):
            excluded = not negated
    return not excluded


def test_the_docker_build_context_leaves_out_benchmarks_tools_onebox_and_the_build_files():
    rules = _dockerignore_rules()

    assert in_build_context("components/push/component.py", rules)
    assert in_build_context("core/registry.py", rules)
    assert in_build_context("cli/serve.py", rules)
    assert in_build_context("serving/predictor.py", rules)
    assert in_build_context("requirements/main.lock", rules)
    assert in_build_context("images/base.in", rules) and in_build_context("images/check_pins.py", rules)
    assert not in_build_context(".venv/bin/python", rules)
    assert not in_build_context("images/build.py", rules) and not in_build_context("images/base.Dockerfile", rules)
    developer_files = [p for f in (*DEVELOPER_FOLDERS, *WHEEL_ONLY_FOLDERS) for p in _repo_files(f)]
    assert developer_files, "benchmarks/, tools/, images/ and onebox/ exist"
    sent = [p for p in developer_files if in_build_context(p, rules)]
    # images/wheels/: the wheel folder a local build may fill (TORCH_FIND_LINKS), README only in the repository
    assert sent == [
        p
        for p in _repo_files("images")
        if p.endswith(".in")
        or p in ("images/check_pins.py", "images/tfdv_bytecode.py")
        or p.startswith("images/wheels/")
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=os.path.basename)
def test_no_dockerfile_copies_benchmarks_tools_onebox_or_the_whole_context(dockerfile):
    with open(dockerfile, encoding="utf-8") as fh:
        text = fh.read().replace("\\\n", " ")
    copies = [line.split()[1:] for line in text.splitlines() if line.strip().upper().startswith(("COPY ", "ADD "))]
    sources = [w for words in copies if not any(w.startswith("--from") for w in words) for w in words[:-1]]
    sources = [s for s in sources if not s.startswith("--")]

    assert {"cli/", "components/", "core/", "pipelines/", "serving/"} <= set(sources)
    from_developer_folders = [s for s in sources if s.rstrip("/").split("/")[0] in (*DEVELOPER_FOLDERS, ".", "*")]
    assert [
        s
        for s in from_developer_folders
        if not re.fullmatch(r"images/(\w+\.in|check_pins\.py|tfdv_bytecode\.py|wheels/)", s)
    ] == []
    assert [s for s in sources if s.rstrip("/").split("/")[0] in WHEEL_ONLY_FOLDERS] == []
