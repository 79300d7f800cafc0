"""Builds the four images on this machine, tagged as the compiled pipelines name them: ``make images-local``.

    python -m images.local_build [GROUP ...] [--python-image REF] [--log FILE]

For a machine with a Docker engine (``DOCKER_HOST``; ``make docker-engine`` starts one) that reaches PyPI
and Debian's archive but maybe no container registry and no PyTorch wheel index:

* **base image**: the pinned ``PYTHON_IMAGE`` of the Dockerfiles when the engine has it or can pull it,
  else the local equivalent built from Debian's packages (``images/local_base.py``, cached);
* **torch**: the CPU wheel of the lock's version from pip's configured local wheel folder
  (``pip config list``: ``find-links``), linked into ``images/wheels/`` of the build context and installed
  with ``--build-arg TORCH_FIND_LINKS=images/wheels``; the **train** image gets that CPU build too
  (``TORCH_INDEX_URL`` set to the CPU index names the variant; README.md "train and CUDA" says what the
  CUDA build adds);
* **tfdv**: only the ``tfdv`` target, with BuildKit, which skips the unused ``beam_sdk`` stage (the
  ``dataflow`` target needs the Beam SDK image from a registry);
* every build uses BuildKit (``DOCKER_BUILDKIT=1`` with a client that has it: one with the buildx plugin,
  or Debian's ``docker.io`` 20.10 client) and ``--network host`` (the private engine has no bridge).

Every image is tagged :func:`kfpkit.components.images.image_for` ``(group)``, e.g.
``ghcr.io/kfpkit/kfpkit-base:0.1.0``. The builds always run: the layer cache makes an unchanged tree a
matter of seconds and keeps the images in step with the sources. Not shipped.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, TextIO

from images import build, local_base
from kfpkit.components.images import IMAGE_NAMES, image_for
from kfpkit.core._version import __version__

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEELS_DIR = os.path.join("images", "wheels")  # relative to the build context, as TORCH_FIND_LINKS names it
LOCK_FILE = os.path.join(os.environ.get("TMPDIR", "/tmp"), "kfpkit-image-build.lock")
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# What the TFDV lock (made for the pinned Python 3.11.10) lacks on Debian bookworm's Python 3.11.2: redis 5.3.1
# requires async-timeout below Python 3.11.3 (its environment marker), so pip check fails without it.
LOCAL_BASE_TFDV_EXTRAS = ("async-timeout==5.0.1",)
PINNED_PYTHON_IMAGE_ARG = re.compile(r"^ARG PYTHON_IMAGE=(\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class Client:
    """A docker client that builds with BuildKit: its path and the environment it needs."""

    path: str
    env: Dict[str, str]


def _client_version(path: str) -> Optional[int]:
    result = subprocess.run(
        [path, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True, check=False
    )
    match = re.match(r"(\d+)\.", result.stdout.strip())
    return int(match.group(1)) if match else None


def buildkit_client() -> Client:
    """A docker client that can build with BuildKit here.

    Docker clients from 23 on build with BuildKit only through the buildx plugin; older ones (Debian
    bookworm's ``docker.io`` 20.10) have it built in and use it with ``DOCKER_BUILDKIT=1``.

    Raises:
        build.BuildError: no such client; the message says what to install.
    """
    seen = []
    for path in [shutil.which("docker"), "/usr/bin/docker"]:
        if not path or path in seen or not os.access(path, os.X_OK):
            continue
        seen.append(path)
        if subprocess.run([path, "buildx", "version"], capture_output=True, check=False).returncode == 0:
            return Client(path, {"DOCKER_BUILDKIT": "1"})
        major = _client_version(path)
        if major is not None and major < 23:
            return Client(path, {"DOCKER_BUILDKIT": "1"})
    raise build.BuildError(
        f"no docker client with BuildKit among {seen or ['(none)']}: install the buildx plugin, or Debian's "
        "docker.io (its 20.10 client has BuildKit built in; make system-packages)"
    )


def pinned_python_image(repo: str = REPO) -> str:
    """The ``PYTHON_IMAGE`` default of ``images/base.Dockerfile`` (the one every Dockerfile pins)."""
    with open(os.path.join(repo, build.dockerfile_path("base")), encoding="utf-8") as handle:
        match = PINNED_PYTHON_IMAGE_ARG.search(handle.read())
    if not match:
        raise build.BuildError("images/base.Dockerfile has no ARG PYTHON_IMAGE=...")
    return match.group(1)


def choose_python_image(client: Client, repo: str = REPO, out: TextIO = sys.stdout) -> str:
    """The pinned upstream Python image when the engine has it or pulls it, else the local one (built if missing)."""
    pinned = pinned_python_image(repo)
    if local_base.image_exists(pinned, client.path):
        return pinned
    pulled = subprocess.run([client.path, "pull", pinned], capture_output=True, text=True, check=False)
    if pulled.returncode == 0:
        return pinned
    reason = (pulled.stderr.strip().splitlines() or ["pull failed"])[-1]
    print(f"{pinned} cannot be pulled ({reason}); using {local_base.LOCAL_PYTHON_IMAGE}", file=out, flush=True)
    local_base.ensure_local_base(docker=client.path)
    return local_base.LOCAL_PYTHON_IMAGE


def locked_torch_version(repo: str = REPO) -> str:
    """The torch version of ``requirements/main.lock``."""
    with open(os.path.join(repo, "requirements", "main.lock"), encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("torch=="):
                return line.split("==", 1)[1].strip()
    raise build.BuildError("requirements/main.lock pins no torch")


def pip_wheel_folders() -> List[str]:
    """The local folders pip is configured to find wheels in (``find-links`` of ``pip config``, ``PIP_FIND_LINKS``)."""
    folders = os.environ.get("PIP_FIND_LINKS", "").split()
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("find-links"):
            folders += value.strip().strip("'\"").split()
    paths = [f[len("file://") :] if f.startswith("file://") else f for f in folders]
    return list(dict.fromkeys(p for p in paths if os.path.isdir(p)))


def stage_cpu_torch_wheel(repo: str = REPO, folders: Optional[Sequence[str]] = None) -> Optional[str]:
    """Links the lock's CPU torch wheel (CPython 3.11, x86_64 Linux) from a local wheel folder into images/wheels/.

    Returns the wheel's name, or None when no folder has it (the builds then use ``TORCH_INDEX_URL``).
    Other torch wheels in images/wheels/ are removed, so that the folder holds exactly the one it names.
    """
    version = locked_torch_version(repo)
    pattern = f"torch-{version}+cpu-cp311-cp311-*linux*_x86_64.whl"
    found = next(
        (
            hit
            for folder in (folders if folders is not None else pip_wheel_folders())
            for hit in sorted(glob.glob(os.path.join(folder, pattern)))
        ),
        None,
    )
    target_dir = os.path.join(repo, WHEELS_DIR)
    for stale in glob.glob(os.path.join(target_dir, "torch-*.whl")):
        if not found or os.path.basename(stale) != os.path.basename(found):
            os.unlink(stale)
    if not found:
        return None
    target = os.path.join(target_dir, os.path.basename(found))
    if not os.path.exists(target):
        try:
            os.link(found, target)
        except OSError:  # another file system
            shutil.copy2(found, target)
    return os.path.basename(found)


def local_build_args(group: str, python_image: str, torch_wheel: Optional[str]) -> List[str]:
    """The build arguments of a local build of ``group``."""
    args = [f"PYTHON_IMAGE={python_image}"]
    if group != "tfdv" and torch_wheel:
        args.append(f"TORCH_FIND_LINKS={WHEELS_DIR}")
    if group == "train":
        args.append(f"TORCH_INDEX_URL={CPU_TORCH_INDEX}")  # the CPU build: no CUDA wheels from PyPI
    if group == "tfdv" and python_image == local_base.LOCAL_PYTHON_IMAGE:
        args.append(f"EXTRAS={' '.join(LOCAL_BASE_TFDV_EXTRAS)}")
    return args


def local_builds(groups: Sequence[str]) -> List[build.ImageBuild]:
    """The image builds of ``groups`` tagged as the compiled pipelines name them; tfdv's default target only."""
    return [
        b
        for b in build.plan(groups, "ghcr.io/kfpkit", __version__)
        if b.target is None and b.reference == image_for(b.group)
    ]


def run_build(argv: List[str], client: Client, log: Optional[TextIO]) -> None:
    """Runs one build command (printed first); its output goes to ``log`` or to this process's output.

    Raises:
        build.BuildError: it failed; the message names the command and quotes the end of its output.
    """
    print("+ " + " ".join(f"{k}={v}" for k, v in client.env.items()) + " " + shlex.join(argv), flush=True)
    env = {**os.environ, **client.env}
    if log is None:
        status = subprocess.call(argv, env=env)
        tail = ""
    else:
        result = subprocess.run(argv, check=False, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log.write(result.stdout)
        log.flush()
        status, tail = result.returncode, "\n".join(result.stdout.splitlines()[-25:])
    if status != 0:
        raise build.BuildError(f"exit status {status}: {shlex.join(argv)}" + (f"\n{tail}" if tail else ""))


def ensure_local_images(
    groups: Optional[Sequence[str]] = None,
    repo: str = REPO,
    python_image: Optional[str] = None,
    log: Optional[TextIO] = None,
) -> Dict[str, float]:
    """Builds the images of ``groups`` (default: all four) here, tagged as the compiled pipelines name them.

    Needs an engine that answers (``DOCKER_HOST``). Returns ``{image reference: build seconds}``. Concurrent
    callers (pytest workers, a test and a ``make images-local``) take turns on one lock file
    (:data:`LOCK_FILE`): the second finds the layers cached.

    Raises:
        build.BuildError: no BuildKit client, no base image, or a build failed (the message names it).
    """
    with open(LOCK_FILE, "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_all(list(groups or IMAGE_NAMES), repo, python_image, log)


def _build_all(groups: List[str], repo: str, python_image: Optional[str], log: Optional[TextIO]) -> Dict[str, float]:
    client = buildkit_client()
    python_image = python_image or choose_python_image(client, repo)
    torch_wheel = stage_cpu_torch_wheel(repo)
    if torch_wheel is None:
        print(f"no local CPU torch wheel found in {pip_wheel_folders()}: torch comes from TORCH_INDEX_URL", flush=True)
    seconds: Dict[str, float] = {}
    for image in local_builds(groups):
        argv = build.build_command(
            "docker", image, repo, __version__, local_build_args(image.group, python_image, torch_wheel)
        )
        argv[0] = client.path
        argv[2:2] = ["--network", "host", "--progress", "plain"]
        if image.group == "tfdv":
            argv[2:2] = ["--target", "tfdv"]
        started = time.monotonic()
        try:
            run_build(argv, client, log)
        except build.BuildError as exc:
            raise build.BuildError(f"{image.reference} ({image.dockerfile}): {exc}") from None
        seconds[image.reference] = time.monotonic() - started
        print(f"built {image.reference} in {seconds[image.reference]:.0f} s", flush=True)
    return seconds


def image_sizes(references: Sequence[str], client: Optional[Client] = None) -> Dict[str, int]:
    """``{reference: size in bytes}`` as the engine reports them (``docker image inspect``)."""
    docker = (client or buildkit_client()).path
    out = {}
    for reference in references:
        result = subprocess.run(
            [docker, "image", "inspect", "--format", "{{.Size}}", reference],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            out[reference] = int(result.stdout.strip())
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Builds the local images and prints each one's build time and size; 0, or 1 after an ``error:`` line."""
    parser = argparse.ArgumentParser(prog="python -m images.local_build", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "groups", nargs="*", metavar="GROUP", help=f"image groups (default: all of {list(IMAGE_NAMES)})"
    )
    parser.add_argument("--python-image", default=None, help="PYTHON_IMAGE to build on (default: pinned or local)")
    parser.add_argument("--log", default=None, help="write the build output to this file instead of the terminal")
    args = parser.parse_args(argv)
    try:
        if args.log:
            with open(args.log, "a", encoding="utf-8") as log:
                seconds = ensure_local_images(args.groups, python_image=args.python_image, log=log)
        else:
            seconds = ensure_local_images(args.groups, python_image=args.python_image)
        sizes = image_sizes(list(seconds))
    except (build.BuildError, local_base.LocalBaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for reference, took in seconds.items():
        print(f"{reference}: {took:.0f} s, {sizes.get(reference, 0) / 1e9:.2f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
