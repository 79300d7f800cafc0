"""A local stand-in for the pinned ``python:3.11-slim-bookworm`` base image, made from Debian's packages.

    python -m images.local_base [--tag T] [--mirror URL] [--force]

Machines that reach Debian's package archive but no container registry cannot pull the pinned
``PYTHON_IMAGE`` of the Dockerfiles. This tool builds its equivalent as root with
``debootstrap --variant=minbase bookworm`` plus Debian's Python 3.11 (``python3``, ``python3-venv`` for the
Dockerfiles' ``python -m venv``, ``python-is-python3`` so that ``python`` is on ``PATH``, and
``libpython3.11-dev`` for the headers that the upstream image has too) and ``ca-certificates`` overlaid
with the host's CA bundle (pip inside ``docker build`` must trust what the host trusts to reach the package
index), then ``docker import``\\ s it with the environment of the upstream image (``LANG=C.UTF-8``,
``CMD ["python3"]``) as :data:`LOCAL_PYTHON_IMAGE`. As the upstream image (Debian's -slim), it has no
translations, manuals or documentation but the copyright files, and its dpkg configuration keeps them out
of what the Dockerfiles install later (:data:`PATH_EXCLUDES`). The builds use it through the
Dockerfiles' ``PYTHON_IMAGE`` build argument (``images/local_build.py``); the default for users stays the
pinned upstream image.

Cached: nothing is done when the tag exists (``--force`` rebuilds). Not shipped.

Differences from the upstream image, none of which the Dockerfiles rely on: Debian's Python (3.11.2, in
``/usr/bin``) instead of python.org's 3.11.x built into ``/usr/local``; the venv's pip is Debian's pip 23.0.1.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Sequence

LOCAL_PYTHON_IMAGE = "kfpkit-local/python:3.11-slim-bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# libpython3.11-dev: the headers (Python.h), which the upstream image has too; the tfdv builder compiles two
# source-only C/C++ packages against them
PACKAGES = ("python3", "python3-venv", "python-is-python3", "libpython3.11-dev", "ca-certificates")
# the static libpython of libpython3.11-dev, which nothing links against here
STATIC_LIBS = ("usr/lib/x86_64-linux-gnu/libpython3.11*.a", "usr/lib/python3.11/config-3.11-x86_64-linux-gnu/*.a")
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# What Debian's -slim images leave out (debuerreotype's slimify: /etc/dpkg/dpkg.cfg.d/docker): translations,
# manuals, info pages and documentation except each package's copyright file. Written into the image, so
# that packages installed later (the Dockerfiles' apt-get install) leave them out too, and removed from
# what debootstrap installed.
DPKG_EXCLUDES_FILE = "etc/dpkg/dpkg.cfg.d/docker"
PATH_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/groff/*",
    "/usr/share/info/*",
    "/usr/share/linda/*",
    "/usr/share/lintian/overrides/*",
    "/usr/share/locale/*",
    "/usr/share/man/*",
)
PATH_INCLUDES = ("/usr/share/doc/*/copyright",)
# what `docker import` sets, as the upstream image's config does
IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)


class LocalBaseError(RuntimeError):
    """The local base image cannot be built here (not root, no debootstrap, a failed step)."""


def image_exists(reference: str, docker: str = "docker") -> bool:
    """Whether the engine holds ``reference`` (``docker image inspect``)."""
    result = subprocess.run([docker, "image", "inspect", reference], capture_output=True, check=False)
    return result.returncode == 0


def sources_list(mirror: str) -> str:
    """The apt sources of the image: the suite, its updates and its security archive, as the upstream image."""
    security = mirror.rsplit("/debian", 1)[0] + "/debian-security" if mirror.endswith("/debian") else None
    lines = [f"deb {mirror} {SUITE} main", f"deb {mirror} {SUITE}-updates main"]
    if security:
        lines.append(f"deb {security} {SUITE}-security main")
    return "\n".join(lines) + "\n"


def _run(argv: List[str], **kwargs: object) -> None:
    print("+ " + " ".join(argv), flush=True)
    status = subprocess.call(argv, **kwargs)  # type: ignore[call-overload]
    if status != 0:
        raise LocalBaseError(f"command failed with exit status {status}: {' '.join(argv)}")


def make_rootfs(rootfs: str, mirror: str) -> None:
    """debootstrap minbase + Python into ``rootfs``; the host CA bundle; apt lists, caches and docs removed."""
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.access(debootstrap, os.X_OK):
        raise LocalBaseError("debootstrap is missing: apt-get install debootstrap (make system-packages)")
    _run([debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, rootfs, mirror])
    with open(os.path.join(rootfs, "etc/apt/sources.list"), "w") as handle:
        handle.write(sources_list(mirror))
    if os.path.isfile(HOST_CA_BUNDLE):
        shutil.copyfile(HOST_CA_BUNDLE, os.path.join(rootfs, "etc/ssl/certs/ca-certificates.crt"))
    for sub in ("var/lib/apt/lists", "var/cache/apt/archives"):
        path = os.path.join(rootfs, sub)
        for name in os.listdir(path) if os.path.isdir(path) else ():
            target = os.path.join(path, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            elif name != "lock":
                os.unlink(target)
    slim(rootfs)
    for pattern in STATIC_LIBS:
        for path in glob.glob(os.path.join(rootfs, pattern)):
            os.unlink(path)
    # no /dev nodes, /proc or /sys contents in an image: the engine provides them
    for sub in ("dev", "proc", "sys"):
        path = os.path.join(rootfs, sub)
        subprocess.call(["umount", "-R", path], stderr=subprocess.DEVNULL)


def dpkg_excludes() -> str:
    """The dpkg configuration of Debian's -slim images: ``path-exclude`` lines, then ``path-include`` lines."""
    lines = [f"path-exclude {pattern}" for pattern in PATH_EXCLUDES]
    lines += [f"path-include {pattern}" for pattern in PATH_INCLUDES]
    return "# as Debian's -slim images (kfpkit images/local_base.py)\n" + "\n".join(lines) + "\n"


def slim(rootfs: str) -> None:
    """Writes :func:`dpkg_excludes` into ``rootfs`` and removes what it excludes, keeping what it includes.

    Files only: the directories stay (as dpkg leaves them), emptied.
    """
    os.makedirs(os.path.dirname(os.path.join(rootfs, DPKG_EXCLUDES_FILE)), exist_ok=True)
    with open(os.path.join(rootfs, DPKG_EXCLUDES_FILE), "w") as handle:
        handle.write(dpkg_excludes())
    for pattern in PATH_EXCLUDES:
        top = os.path.join(rootfs, os.path.dirname(pattern).lstrip("/"))
        for folder, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(folder, name)
                image_path = "/" + os.path.relpath(path, rootfs)
                if not any(fnmatch.fnmatch(image_path, keep) for keep in PATH_INCLUDES):
                    os.unlink(path)


def import_rootfs(rootfs: str, reference: str, docker: str = "docker") -> None:
    """``tar -C rootfs . | docker import`` with the upstream image's ENV and CMD, tagged ``reference``."""
    argv = [docker, "import"]
    for change in IMAGE_CHANGES:
        argv += ["--change", change]
    argv += ["-", reference]
    print(
        "+ tar -C <rootfs> --numeric-owner -c --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* . | "
        + " ".join(argv),
        flush=True,
    )
    tar = subprocess.Popen(
        [
            "tar",
            "-C",
            rootfs,
            "--numeric-owner",
            "-c",
            "--exclude=./dev/*",
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            ".",
        ],
        stdout=subprocess.PIPE,
    )
    status = subprocess.call(argv, stdin=tar.stdout, stdout=subprocess.DEVNULL)
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() != 0 or status != 0:
        raise LocalBaseError(f"docker import of {rootfs} as {reference} failed")


def ensure_local_base(
    reference: str = LOCAL_PYTHON_IMAGE, mirror: str = DEFAULT_MIRROR, force: bool = False, docker: str = "docker"
) -> bool:
    """Builds and tags the local Python base image unless it exists; True when it was built now.

    Raises:
        LocalBaseError: not root, debootstrap missing, or a step failed (the message names it).
    """
    if not force and image_exists(reference, docker):
        return False
    if os.geteuid() != 0:
        raise LocalBaseError(f"{reference} is missing and only root can debootstrap it")
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="kfpkit-rootfs-", dir=os.environ.get("TMPDIR", "/var/tmp"))
    try:
        rootfs = os.path.join(workdir, "rootfs")
        make_rootfs(rootfs, mirror)
        import_rootfs(rootfs, reference, docker)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"built {reference} in {time.monotonic() - started:.0f} s", flush=True)
    return True


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Builds the local base image unless it exists; 0, or 1 after one ``error:`` line."""
    parser = argparse.ArgumentParser(prog="python -m images.local_base", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tag", default=LOCAL_PYTHON_IMAGE, help=f"image reference (default {LOCAL_PYTHON_IMAGE})")
    parser.add_argument("--mirror", default=DEFAULT_MIRROR, help=f"Debian mirror (default {DEFAULT_MIRROR})")
    parser.add_argument("--force", action="store_true", help="rebuild even when the tag exists")
    args = parser.parse_args(argv)
    try:
        built = ensure_local_base(args.tag, args.mirror, args.force)
    except LocalBaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not built:
        print(f"{args.tag} exists (--force rebuilds it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
