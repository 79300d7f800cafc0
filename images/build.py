"""Builds, and optionally pushes, the kfpkit images: ``make images`` runs this.

    python -m images.build [GROUP ...] [--registry R] [--tag T] [--push]
        [--tool auto|docker|buildah|podman] [--isolation chroot] [--platform P] [--build-arg K=V ...]
        [--context DIR] [--dry-run]

Each group (default: all of :data:`kfpkit.components.images.IMAGE_NAMES`) is built from
``images/<group>.Dockerfile`` with the repository root (``--context``, default ``.``) as build
context and tagged :func:`kfpkit.components.images.image_for` ``(group, registry, tag)``, e.g.
``ghcr.io/kfpkit/kfpkit-base:0.1.0``. The tfdv group also builds its ``dataflow`` target, tagged
``<image>:<tag>-dataflow`` (the Beam SDK container for Dataflow workers; README.md).

The tool is docker when its engine answers (``docker info``), else buildah, else podman; ``--tool`` picks
one. Every command is printed before it runs; ``--dry-run`` only prints them. The first failing command
stops the build with exit status 1 and names the image.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from kfpkit.components.images import DEFAULT_REGISTRY, IMAGE_NAMES, image_for
from kfpkit.core._version import __version__

TOOLS = ("docker", "buildah", "podman")
DOCKERFILE_DIR = "images"
# Build targets besides the default (last) stage, with the tag suffix of their image.
EXTRA_TARGETS = {"tfdv": (("dataflow", "-dataflow"),)}
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_BUILD_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=.*$", re.DOTALL)


class BuildError(RuntimeError):
    """The images cannot be built as asked (bad arguments, no tool, a failed command)."""


@dataclass(frozen=True)
class ImageBuild:
    """One image to build: its group, Dockerfile (relative to the context), stage and reference."""

    group: str
    dockerfile: str
    reference: str
    target: Optional[str] = None


def dockerfile_path(group: str) -> str:
    """``images/<group>.Dockerfile`` (relative to the repository root)."""
    return os.path.join(DOCKERFILE_DIR, f"{group}.Dockerfile")


def plan(groups: Sequence[str], registry: str, tag: str) -> List[ImageBuild]:
    """The images to build for ``groups``, in order, with their references.

    Raises:
        BuildError: an unknown group, an empty registry or a tag that is not a valid image tag.
    """
    unknown = [g for g in groups if g not in IMAGE_NAMES]
    if unknown:
        raise BuildError(f"unknown image group(s) {unknown}; known groups: {list(IMAGE_NAMES)}")
    if not registry.strip("/"):
        raise BuildError("--registry must not be empty (e.g. ghcr.io/kfpkit)")
    if not _TAG.match(tag):
        raise BuildError(f"--tag {tag!r} is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})")
    builds: List[ImageBuild] = []
    for group in groups:
        reference = image_for(group, registry=registry, tag=tag)
        builds.append(ImageBuild(group, dockerfile_path(group), reference))
        for target, suffix in EXTRA_TARGETS.get(group, ()):
            builds.append(ImageBuild(group, dockerfile_path(group), reference + suffix, target))
    return builds


def build_command(
    tool: str,
    build: ImageBuild,
    context: str,
    version: str,
    build_args: Sequence[str] = (),
    platform: Optional[str] = None,
    isolation: Optional[str] = None,
) -> List[str]:
    """The argv that builds ``build`` with ``tool`` (``VERSION`` build argument: the image label's version)."""
    if tool == "docker":
        argv = ["docker", "build"]
    elif tool in ("buildah", "podman"):
        # docker format: OCI image configs have no SHELL, which the builder stages use for pipefail
        argv = [tool, "build", "--layers", "--format", "docker"]
    else:
        raise BuildError(f"unknown build tool {tool!r}; use one of {list(TOOLS)}")
    argv += ["--file", os.path.join(context, build.dockerfile), "--tag", build.reference]
    if build.target:
        argv += ["--target", build.target]
    if platform:
        argv += ["--platform", platform]
    if isolation:
        argv += ["--isolation", isolation]
    for arg in [f"VERSION={version}", *build_args]:
        argv += ["--build-arg", arg]
    argv.append(context)
    return argv


def push_command(tool: str, build: ImageBuild) -> List[str]:
    """The argv that pushes ``build.reference`` to its registry."""
    return [tool, "push", build.reference]


def docker_engine_answers() -> bool:
    """Whether ``docker info`` reaches an engine (a docker client alone cannot build)."""
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], check=False, capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def detect_tool(
    which: Callable[[str], Optional[str]] = shutil.which,
    docker_ok: Callable[[], bool] = docker_engine_answers,
) -> str:
    """docker when its engine answers, else buildah, else podman.

    Raises:
        BuildError: none of them can build here; the message says what was found.
    """
    docker_found = which("docker") is not None
    if docker_found and docker_ok():
        return "docker"
    for tool in ("buildah", "podman"):
        if which(tool):
            return tool
    found = "docker is installed but its engine does not answer (`docker info` failed)" if docker_found else ""
    raise BuildError(
        "no container build tool can build here: install docker (with a running engine), buildah or podman"
        + (f"; {found}" if found else "")
    )


def run_commands(commands: Sequence[List[str]], dry_run: bool, runner: Callable[..., int] = subprocess.call) -> None:
    """Prints each command (``+ ...``) and runs it unless ``dry_run``.

    Raises:
        BuildError: a command failed or its program is missing; the message names the command.
    """
    for argv in commands:
        print("+ " + shlex.join(argv), flush=True)
        if dry_run:
            continue
        try:
            status = runner(argv)
        except OSError as exc:
            raise BuildError(f"cannot run {argv[0]}: {exc}") from None
        if status != 0:
            raise BuildError(f"command failed with exit status {status}: {shlex.join(argv)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m images.build",
        description="Build (and push) the kfpkit images from images/<group>.Dockerfile.",
    )
    parser.add_argument(
        "groups", nargs="*", metavar="GROUP", help=f"image groups (default: all of {list(IMAGE_NAMES)})"
    )
    parser.add_argument("--registry", default=DEFAULT_REGISTRY, help="registry prefix of the image references")
    parser.add_argument("--tag", default=__version__, help="image tag (default: the kfpkit version)")
    parser.add_argument("--push", action="store_true", help="push each image after building it")
    parser.add_argument("--tool", choices=("auto", *TOOLS), default="auto", help="build tool (default: detect)")
    parser.add_argument("--isolation", default=None, help="buildah/podman --isolation (e.g. chroot in a container)")
    parser.add_argument("--platform", default=None, help="target platform, e.g. linux/amd64")
    parser.add_argument(
        "--build-arg", dest="build_args", action="append", default=[], metavar="KEY=VALUE", help="Dockerfile ARG"
    )
    parser.add_argument("--context", default=".", help="build context: the repository root (default: .)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Builds (and pushes) the images; returns 0, or 1 after one ``error:`` line on stderr."""
    args = build_parser().parse_args(argv)
    try:
        builds = plan(args.groups or list(IMAGE_NAMES), args.registry, args.tag)
        bad_args = [a for a in args.build_args if not _BUILD_ARG.match(a)]
        if bad_args:
            raise BuildError(f"--build-arg must be KEY=VALUE, got {bad_args}")
        missing = [b.dockerfile for b in builds if not os.path.isfile(os.path.join(args.context, b.dockerfile))]
        if missing:
            raise BuildError(
                f"{sorted(set(missing))} not found under --context {args.context!r}: "
                "run from the repository root of a kfpkit checkout, or pass --context"
            )
        tool = args.tool
        if tool == "auto":
            try:
                tool = detect_tool()
            except BuildError as exc:
                if not args.dry_run:
                    raise
                print(f"note: {exc}; showing docker commands", file=sys.stderr)
                tool = "docker"
        if args.isolation and tool == "docker":
            raise BuildError("--isolation applies to buildah and podman, not docker")
        for build in builds:
            commands = [
                build_command(tool, build, args.context, args.tag, args.build_args, args.platform, args.isolation)
            ]
            if args.push:
                commands.append(push_command(tool, build))
            try:
                run_commands(commands, args.dry_run)
            except BuildError as exc:
                raise BuildError(f"{build.reference} ({build.dockerfile}): {exc}") from None
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.dry_run:
        print("built: " + ", ".join(b.reference for b in builds) + (" (pushed)" if args.push else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
