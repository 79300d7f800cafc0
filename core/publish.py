"""Atomic publishing, written once: a reader sees the old file (or folder) or the complete new one.

Use it where atomicity buys something -- a registry version or pointer that other processes read while it
is written, a checkpoint that a retried task resumes from, a set of outputs that must appear together --
and plain writes everywhere else (a KFP output artifact is not consumed when its task fails).

* :func:`atomic_path` -- the one primitive: yields a temporary path beside ``path``; the caller writes it
  however it likes (``torch.save``, Parquet, JSON) and on success it is renamed into place (after an
  ``fsync`` when asked); on any error it is removed and ``path`` is untouched.
* :func:`publish_bytes` / :func:`publish_json` -- :func:`atomic_path` for bytes or a JSON document.
* :func:`publish_together` -- several files that must appear all or not at all.
* :func:`publish_directory` -- a finished staging folder renamed over a final folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from typing import Any, Iterator, List, Sequence, Tuple


@contextlib.contextmanager
def atomic_path(path: str, fsync: bool = False) -> Iterator[str]:
    """Yields a temporary path beside ``path`` and renames it to ``path`` when the block succeeds.

    Args:
        path: The final file. Its folder is created when missing.
        fsync: Flush the file and its folder to stable storage (for state other processes rely on after a
            crash, such as a registry pointer).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def publish_bytes(path: str, data: bytes, fsync: bool = False) -> None:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "wb") as fh:
        fh.write(memoryview(data))


def publish_json(path: str, document: Any, fsync: bool = False) -> None:
    """Writes ``document`` as indented, key-sorted JSON to ``path`` atomically."""
    publish_bytes(path, json.dumps(document, indent=2, sort_keys=True).encode("utf-8"), fsync=fsync)


def publish_together(outputs: Sequence[Tuple[str, bytes]]) -> None:
    """Writes every ``(path, bytes)`` beside its target, then renames them all: all files or none.

    On any error the temporary files, the files already renamed and the folders this call created are
    removed.
    """
    temps: List[str] = []
    replaced: List[str] = []
    created: List[str] = []
    try:
        for path, data in outputs:
            directory = os.path.dirname(os.path.abspath(path))
            created.extend(_make_dirs(directory))
            fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
            temps.append(temp)
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o644)
                handle.write(memoryview(data))
        for (path, _), temp in zip(outputs, temps, strict=True):
            os.replace(temp, path)
            replaced.append(path)
    except BaseException:
        for leftover in [*temps, *replaced]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)
        for directory in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        raise


def staging_directory(final: str) -> str:
    """A new empty folder beside ``final`` to build it in, for :func:`publish_directory`.

    Its mode is the one ``os.makedirs`` gives (``0o777`` less the umask), not ``mkdtemp``'s ``0o700``: the
    published folder is an output that other users read (the host user reads what a container's uid 1000
    wrote under ``kfpkit run --runner docker``; a serving process reads a model folder).
    """
    final = os.path.abspath(final)
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(final)}.tmp-{uuid.uuid4().hex}")
    os.mkdir(staging)
    return staging


def publish_directory(staging: str, final: str) -> None:
    """Renames the finished ``staging`` folder to ``final``, replacing a folder already there.

    ``staging`` must be on the same file system (use :func:`staging_directory`). The previous ``final`` is
    moved aside first and removed only after the rename succeeded.
    """
    if os.path.lexists(final) and not os.path.isdir(final):
        raise NotADirectoryError(f"{final} exists and is not a directory")
    previous = None
    if os.path.isdir(final):
        previous = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.old-", dir=os.path.dirname(staging))
        os.rmdir(previous)
        os.replace(final, previous)
    try:
        os.replace(staging, final)
    except BaseException:
        if previous:
            os.replace(previous, final)
        raise
    if previous:
        shutil.rmtree(previous, ignore_errors=True)


def _make_dirs(directory: str) -> List[str]:
    """Creates ``directory`` and its missing parents; returns the ones created, outermost first."""
    missing: List[str] = []
    current = directory
    while current and not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    os.makedirs(directory, exist_ok=True)
    return list(reversed(missing))


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
