"""Build-time check that an image's Python environment holds exactly the versions its lock files pin.

    python images/check_pins.py requirements/main.lock [LOCK ...] [--ignore NAME]
        [--accept-requirements-of DIST]

Run by every Dockerfile right after the dependencies are installed (before kfpkit itself), with the
interpreter of the environment being checked. Every installed distribution must be pinned by one of the
lock files at the installed version (a local label such as ``+cpu`` is ignored when the pin has none:
``torch==2.13.0`` matches the CPU wheel ``2.13.0+cpu``). ``pip``, ``setuptools`` and ``wheel`` (what
``python -m venv`` bootstraps) are checked only when a lock lists them. Anything pip resolved freely -- a
dependency the locks lack -- fails the build with one line per offender, so the locks stay the single
source of truth for what an image contains.

Standard library only: it runs before anything else is importable.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence

BOOTSTRAP_TOOLS = ("pip", "setuptools", "wheel")

_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


class LockFileError(ValueError):
    """A lock file line is not ``name==version``."""


def normalize(name: str) -> str:
    """The PEP 503 normalized form of a distribution name (``PyYAML`` → ``pyyaml``, ``a_b.c`` → ``a-b-c``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def public_version(version: str) -> str:
    """``version`` without its local label (``2.13.0+cpu`` → ``2.13.0``)."""
    return version.split("+", 1)[0]


def versions_match(installed: str, pinned: str) -> bool:
    """Whether ``installed`` satisfies ``==pinned`` (a pin without a local label ignores the installed one's)."""
    return installed == pinned or ("+" not in pinned and public_version(installed) == pinned)


def read_lock(path: str) -> Dict[str, str]:
    """``{normalized name: version}`` of a lock file of ``name==version`` lines (comments and blanks skipped).

    Raises:
        LockFileError: a line is something else (an option, a URL, a range), naming the file and line.
    """
    pins: Dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            match = _LOCK_LINE.match(line)
            if not match:
                raise LockFileError(f"{path}:{number}: expected 'name==version', got {raw.strip()!r}")
            pins[normalize(match.group(1))] = match.group(2)
    return pins


def read_locks(paths: Sequence[str]) -> Dict[str, str]:
    """The pins of several lock files together.

    Raises:
        LockFileError: a malformed line, or two files pinning one package at different versions.
    """
    pins: Dict[str, str] = {}
    origin: Dict[str, str] = {}
    for path in paths:
        for name, version in read_lock(path).items():
            if name in pins and pins[name] != version:
                raise LockFileError(f"{path} pins {name}=={version} but {origin[name]} pins {name}=={pins[name]}")
            pins[name], origin[name] = version, path
    return pins


def find_unpinned(installed: Mapping[str, str], lock: Mapping[str, str], ignore: Iterable[str] = ()) -> List[str]:
    """One message per installed distribution that the lock does not pin at its installed version.

    Args:
        installed: The environment, ``{name: version}``.
        lock: ``read_locks`` of the lock files.
        ignore: Names not to check (e.g. a distribution installed on purpose without a pin).
    """
    skipped = {normalize(name) for name in ignore}
    problems: List[str] = []
    for name, version in sorted((normalize(n), v) for n, v in installed.items()):
        if name in skipped or (name in BOOTSTRAP_TOOLS and name not in lock):
            continue
        if name not in lock:
            problems.append(f"{name}=={version} is installed but not pinned by the lock")
        elif not versions_match(version, lock[name]):
            problems.append(f"{name}=={version} is installed but the lock pins {name}=={lock[name]}")
    return problems


_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def _installed_requires(dist: str) -> Optional[List[str]]:
    from importlib import metadata

    try:
        return metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return None


def requirement_names(dist: str, requires: Callable[[str], Optional[List[str]]] = _installed_requires) -> List[str]:
    """Normalized names of what an installed distribution requires, transitively (its release pins them).

    torch's CUDA wheels are a tree: torch requires ``cuda-toolkit[cublas,...]`` and ``cuda-bindings``, which
    require ``nvidia-cublas``, ``cuda-pathfinder``, ... So the requirements of every installed requirement
    are followed too, with the extras it was required with (``extra == "..."`` entries only for those).
    Requirements that are not installed end the walk there.

    Args:
        dist: The distribution whose requirements are accepted (e.g. ``torch``).
        requires: ``Requires-Dist`` entries of an installed distribution, ``None`` when not installed.
    """
    names: List[str] = []
    seen = set()
    todo = [(normalize(dist), frozenset())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for requirement in requires(name) or []:
            match = _REQUIREMENT.match(requirement)
            if not match:
                continue
            marker = requirement.split(";", 1)[1] if ";" in requirement else ""
            needed = {normalize(e) for e in _EXTRA_MARKER.findall(marker)}
            if needed and not needed & extras:
                continue
            dep = normalize(match.group(1))
            dep_extras = frozenset(normalize(e) for e in (match.group(2) or "").split(",") if e.strip())
            if dep not in names:
                names.append(dep)
            if requires(dep) is not None:
                todo.append((dep, dep_extras))
    return names


def installed_distributions() -> Dict[str, str]:
    """``{normalized name: version}`` of this interpreter's environment (first one wins on duplicates)."""
    from importlib import metadata

    out: Dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and normalize(name) not in out:
            out[normalize(name)] = dist.version
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Checks this interpreter's environment against the lock files; returns 0, or 1 listing the offenders."""
    parser = argparse.ArgumentParser(prog="check_pins", description=__doc__.split("\n\n")[0])
    parser.add_argument("locks", nargs="+", metavar="LOCK", help="lock files of name==version lines (requirements/)")
    parser.add_argument("--ignore", action="append", default=[], metavar="NAME", help="distribution not to check")
    parser.add_argument(
        "--accept-requirements-of",
        action="append",
        default=[],
        metavar="DIST",
        help="accept what DIST requires, transitively, without a lock pin (its own release fixes those versions)",
    )
    args = parser.parse_args(argv)
    try:
        lock = read_locks(args.locks)
    except (OSError, LockFileError) as exc:
        print(f"check_pins: {exc}", file=sys.stderr)
        return 1
    installed = installed_distributions()
    ignore = list(args.ignore)
    for dist in args.accept_requirements_of:
        ignore += [name for name in requirement_names(dist) if name not in lock]
    problems = find_unpinned(installed, lock, ignore)
    if problems:
        print(
            f"check_pins: the environment of {sys.executable} does not match {' '.join(args.locks)}:", file=sys.stderr
        )
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print("Add the missing pins to the lock file (see requirements/ and 'make lock').", file=sys.stderr)
        return 1
    print(f"check_pins: {len(installed)} distributions, all pinned by {' '.join(args.locks)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
