"""The model registry: versioned, content-addressed copies of blessed model directories.

Layout (local paths and object stores alike, through fsspec)::

    <root>/<model_name>/
      1/                       a complete version: the model directory + MANIFEST.json (+ baseline/)
      2/
      LATEST_BLESSED.json      a PushedModel record: the version the last push created or found
      .claims/<N>.json         who claimed version number N (created exclusively; never removed)
      .rollbacks/<N>.json      a RolledBackVersion record: version N's canary was rolled back
      .staging/<uuid>/         local roots only: a push in progress (or killed); never read

Rules (see ``components/push/README.md`` for the reasoning):

* Versions are the integers ``1, 2, ...``; a version URI is ``<root>/<model_name>/<version>``, and
  :func:`parse_version_uri` is the one function that splits it (into a :class:`VersionUri`, version an int).
* A pusher *claims* a number by creating ``.claims/<N>.json``
  with a conditional create that fails when the file exists: ``O_CREAT | O_EXCL`` on a local disk,
  ``ifGenerationMatch=0`` on GCS and ``If-None-Match: *`` on S3 (fsspec's ``pipe_file(mode="create")``;
  for ``memory://``, which lives in one process, a process-wide lock makes it atomic). The first
  candidate is one more than the highest number claimed or present as a directory; a pusher whose
  create fails takes the next number. Only the claim's owner writes ``<N>/``, so numbers only grow and
  concurrent pushers never share a version.
* A version is *complete* when its ``MANIFEST.json`` exists. The manifest is written last, so readers
  (:func:`list_versions`, :func:`latest_blessed`, :func:`materialize`) never see half a version.
  On a local filesystem the whole version is assembled under ``.staging/`` and published with one
  ``os.rename``; on object stores (no rename) the files are uploaded first and the manifest last.
* A push that fails after its claim removes only what it wrote (its staging folder, or the objects it
  uploaded) and keeps the claim, so the number is skipped, never reused.
* **Idempotence.** Pushing what an existing complete version already holds copies nothing and returns
  that version (the newest such) with ``created=False``. "Already holds" means an equal
  ``identity_sha256`` (or, for versions pushed before it existed, an equal ``content_sha256``).
* ``LATEST_BLESSED.json`` names the version the last push created or found.
* **Rollbacks.** When a canary rollout rolls version N back, :func:`record_rollback` writes
  ``.rollbacks/<N>.json`` and, when the pointer names N, points it at the newest complete version that was
  not rolled back (the one still serving), so the next evaluation compares against that, not against the
  model the rollout refused. The fallback of :func:`latest_blessed` skips rolled-back versions too, and a
  later push of the same content finds the rolled-back version (``created=False``, so nothing is deployed)
  without moving the pointer: that model was refused once already.

**Two digests.** ``content_sha256`` (the manifest's; deploy pins it, serving checks it) covers every byte
of every file. ``identity_sha256`` (:func:`identity_sha256`, also stored in the manifest) covers what
determines the model's behaviour, and decides idempotence: two training runs with the same data, code and
parameters write different bytes, and none of the differences changes a prediction. The identity is the
sha256 of the sorted ``relative path  digest`` lines, where each file's digest is the sha256 of its bytes
except for (rules version :data:`IDENTITY_RULES`):

* ``model_card.json``: its JSON without the facts of the run -- ``created_at``, ``pipeline_run``, the
  ``training`` section (device, durations, per-epoch history, resumed epoch) and the throughput
  ``rows_per_second`` of each split's metrics -- serialized with sorted keys;
* ``monitoring_baseline.json``: its JSON without ``created_at`` and ``identity`` (the sha256 of the model
  files, which are in the identity themselves);
* ``model.pt`` (TorchScript, a zip): its members' contents by name, without ``.data/serialization_id``
  (random at every ``torch.jit.save``) and with the generated code's ``Final`` constant declarations in
  sorted order (TorchScript writes them in the order of a Python set, which depends on the hash seed);
  the weights (``data/*``, ``data.pkl``) and the source (``*.debug_pkl``) as they are;
* ``model.skops`` (a zip): ``schema.json`` with its ``__id__`` numbers (object addresses) renumbered in
  document order and each array file name replaced by the sha256 of that file, plus every array file by
  content (their names are object addresses too);
* ``baseline/*_stats.pb`` (TFDV statistics) is left out: TFDV orders equal counts in its rank histograms
  arbitrarily, and the statistics are a function of the train split, whose sha256 the model card's data
  lineage records, and of the TFDV version, which the card's ``versions`` record.

A file that does not parse as its format expects falls back to the sha256 of its bytes.

Only fsspec is imported at module level (and numpy through ``kfpkit.core.model_dir``); object-store
backends (gcsfs, s3fs) are loaded by fsspec on use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any, Callable, ClassVar, Dict, Iterable, List, Mapping, NamedTuple, Optional

import fsspec.core
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from kfpkit.core import model_dir as md
from kfpkit.core.monitoring_baseline import BASELINE_FILE as MONITORING_BASELINE_FILE
from kfpkit.core.publish import publish_bytes
from kfpkit.core.records import Record, RecordError

POINTER_FILE = "LATEST_BLESSED.json"
STAGING_DIR = ".staging"
CLAIMS_DIR = ".claims"
ROLLBACKS_DIR = ".rollbacks"
MAX_MODEL_NAME_LENGTH = 63
_MODEL_NAME_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_VERSION_RE = re.compile(r"[1-9][0-9]*")
_NUMBERED_FILE_RE = re.compile(r"([1-9][0-9]*)\.json")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MAX_PUBLISH_ATTEMPTS = 1000
IDENTITY_RULES = 1
log = logging.getLogger(__name__)
# memory:// is one dict per process, and its exclusive create checks, then writes: threads serialize here.
_MEMORY_CLAIM_LOCK = threading.Lock()


class RegistryError(ValueError):
    """Bad push input (model name, model directory, extra dirs) or a registry location that cannot be used."""


@dataclass
class RegistryEntry:
    """A complete version in the registry.

    Attributes:
        version: The version number (``1, 2, ...``).
        uri: Where the version lives: an absolute local path for local roots, else ``<protocol>://...``.
            Usable as a KServe ``storageUri`` (see the push README for PVC roots).
        content_sha256: ``content_sha256`` of the version's ``MANIFEST.json``.
        identity_sha256: ``identity_sha256`` of the manifest (see the module docstring); ``None`` for a
            version pushed before the registry recorded it.
    """

    version: int
    uri: str
    content_sha256: str
    identity_sha256: Optional[str] = None


@dataclass
class PushedModel(Record):
    """What a push produced: push's ``pushed_model`` output, and the registry's ``LATEST_BLESSED.json``.

    Attributes:
        model_uri: The version's URI, ``<registry_root>/<model_name>/<version>`` (an absolute path for local
            roots), usable as KServe ``storageUri``.
        version: The version number (``1, 2, ...``).
        content_sha256: ``content_sha256`` of the version's manifest (deploy pins it, serving checks it).
        created: ``True`` when this push created the version; ``False`` when the version already held
            the same content (equal ``identity_sha256``) and nothing was copied.
        model_name: The model's name in the registry.
        registry_root: The registry root as the pusher gave it.
    """

    KIND: ClassVar[str] = "pushed model"
    VERSION: ClassVar[int] = 1

    model_uri: str
    version: int
    content_sha256: str
    created: bool
    model_name: str
    registry_root: str

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise RecordError(f"version must be an integer >= 1, got {self.version!r}")
        if not isinstance(self.content_sha256, str) or not _SHA256_RE.fullmatch(self.content_sha256):
            raise RecordError(f"content_sha256 must be 64 lowercase hex digits, got {self.content_sha256!r}")
        try:
            parsed = parse_version_uri(self.model_uri)
        except RegistryError as exc:
            raise RecordError(f"model_uri: {exc}") from None
        if (parsed.model_name, parsed.version) != (self.model_name, self.version):
            raise RecordError(
                f"model_uri {self.model_uri!r} does not end in /{self.model_name}/{self.version} "
                "(model_name and version)"
            )


@dataclass
class RolledBackVersion(Record):
    """``.rollbacks/<version>.json``: a version whose canary rollout was rolled back.

    Attributes:
        version: The version number.
        rolled_back_at: When the rollback was recorded (ISO 8601, UTC).
        reason: Why (the rollout record's reason).
    """

    KIND: ClassVar[str] = "rolled-back version"
    VERSION: ClassVar[int] = 1

    version: int
    rolled_back_at: str
    reason: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise RecordError(f"version must be an integer >= 1, got {self.version!r}")


class VersionUri(NamedTuple):
    """A registry version URI split by :func:`parse_version_uri`."""

    root: str
    model_name: str
    version: int


def parse_version_uri(uri: str) -> VersionUri:
    """Splits a registry version URI ``<root>/<model_name>/<version>`` into its parts.

    Args:
        uri: A version URI as push writes it: a local path, ``file://``, ``gs://``, ``s3://`` or any fsspec
            URL; a trailing ``/`` is ignored.

    Returns:
        ``(root, model_name, version)``; ``version`` is an ``int``.

    Raises:
        RegistryError: ``uri`` does not end in ``/<model_name>/<version>`` with a model name that
            :func:`validate_model_name` accepts and a version ``1, 2, ...``, or has no root before them.
    """
    text = os.fspath(uri) if isinstance(uri, (str, os.PathLike)) else ""
    parts = text.rstrip("/").rsplit("/", 2)
    if (
        len(parts) != 3
        or not parts[0].rstrip("/")
        or parts[0].endswith(":/")
        or not _MODEL_NAME_RE.fullmatch(parts[1])
        or len(parts[1]) > MAX_MODEL_NAME_LENGTH
        or not _VERSION_RE.fullmatch(parts[2])
    ):
        raise RegistryError(
            f"{uri!r} is not a registry version URI: expected <root>/<model_name>/<version>, "
            "e.g. gs://bucket/models/fraud-detector/3"
        )
    return VersionUri(root=parts[0], model_name=parts[1], version=int(parts[2]))


def validate_model_name(model_name: str) -> None:
    """Checks that ``model_name`` can name a registry folder and a KServe InferenceService.

    Raises:
        RegistryError: the name is not 1-63 characters of lowercase letters, digits and '-', starting with a
            letter and ending with a letter or digit (a DNS-1035 label, as Kubernetes requires).
    """
    if (
        not isinstance(model_name, str)
        or len(model_name) > MAX_MODEL_NAME_LENGTH
        or not _MODEL_NAME_RE.fullmatch(model_name)
    ):
        raise RegistryError(
            f"model_name {model_name!r} is invalid: use 1-{MAX_MODEL_NAME_LENGTH} lowercase letters, digits and "
            "'-', starting with a letter and ending with a letter or digit (it names the KServe "
            "InferenceService), e.g. 'fraud-detector'"
        )


class _ModelLocation:
    """``<root>/<model_name>`` on some fsspec filesystem, with a fast path for local disks."""

    def __init__(self, root: str, model_name: str) -> None:
        validate_model_name(model_name)
        root = os.fspath(root)
        if not root:
            raise RegistryError("registry root is empty; give a local path or a gs:// / s3:// URI")
        try:
            self.fs, root_path = fsspec.core.url_to_fs(root)
        except (ImportError, ValueError) as exc:
            raise RegistryError(f"registry root {root!r} cannot be opened: {exc}") from exc
        self.local = isinstance(self.fs, LocalFileSystem)
        if self.local:
            root_path = os.path.abspath(root_path)
        self.path = posixpath.join(root_path.rstrip("/") or "/", model_name)

    def join(self, *parts: str) -> str:
        return posixpath.join(self.path, *parts)

    def version_path(self, version: int) -> str:
        return self.join(str(version))

    def uri(self, version: int) -> str:
        path = self.version_path(version)
        return path if self.local else self.fs.unstrip_protocol(path)

    def refresh(self) -> None:
        if not self.local:
            self.fs.invalidate_cache()

    def version_numbers(self) -> List[int]:
        """Every integer-named directory (complete or not), ascending."""
        if self.local:
            try:
                names = [n for n in os.listdir(self.path) if os.path.isdir(os.path.join(self.path, n))]
            except FileNotFoundError:
                return []
        else:
            if not self.fs.exists(self.path):
                return []
            names = [
                posixpath.basename(info["name"].rstrip("/"))
                for info in self.fs.ls(self.path, detail=True)
                if info.get("type") == "directory"
            ]
        return sorted(int(n) for n in names if _VERSION_RE.fullmatch(n))

    def claimed_numbers(self) -> List[int]:
        """Every version number with a claim file, ascending."""
        return self._numbered_files(CLAIMS_DIR)

    def _numbered_files(self, folder: str) -> List[int]:
        """The ``N`` of every ``<folder>/<N>.json``, ascending."""
        path = self.join(folder)
        if self.local:
            try:
                names = os.listdir(path)
            except FileNotFoundError:
                return []
        else:
            if not self.fs.exists(path):
                return []
            names = [posixpath.basename(name.rstrip("/")) for name in self.fs.ls(path, detail=False)]
        return sorted(int(m.group(1)) for m in map(_NUMBERED_FILE_RE.fullmatch, names) if m)

    def rolled_back_numbers(self) -> List[int]:
        """Every version number with a rollback record, ascending."""
        return self._numbered_files(ROLLBACKS_DIR)

    def next_number(self) -> int:
        """The first number to try claiming: one more than the highest claimed or present one."""
        self.refresh()
        return max([0, *self.version_numbers(), *self.claimed_numbers()]) + 1

    def try_claim(self, version: int, claim: bytes) -> bool:
        """Creates ``.claims/<version>.json`` unless it exists (conditional create); True when this call created it.

        Raises:
            RegistryError: the store refused the write for another reason (permissions, network, ...).
        """
        path = self.join(CLAIMS_DIR, f"{version}.json")
        try:
            if self.local:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(claim)
                    fh.flush()
                    os.fsync(fh.fileno())
            elif isinstance(self.fs, MemoryFileSystem):
                with _MEMORY_CLAIM_LOCK:
                    self.fs.pipe_file(path, claim, mode="create")
            else:
                self.fs.pipe_file(path, claim, mode="create")  # gcsfs: ifGenerationMatch=0; s3fs: If-None-Match
        except FileExistsError:
            return False
        return True

    def has_files(self, version: int) -> bool:
        """Whether anything already exists at ``<version>/`` (left by a writer that did not claim it)."""
        path = self.version_path(version)
        if self.local:
            return os.path.lexists(path)
        self.refresh()
        return bool(self.fs.exists(path) and self.fs.find(path))

    def read_json(self, path: str) -> Optional[Dict[str, Any]]:
        """The JSON object at ``path``, or None when it is missing or not a readable JSON object."""
        try:
            if self.local:
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
            else:
                data = json.loads(self.fs.cat_file(path))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError):
            return None
        return data if isinstance(data, dict) else None

    def entry(self, version: int) -> Optional[RegistryEntry]:
        """The version as a :class:`RegistryEntry` when it is complete, else None."""
        manifest = self.read_json(posixpath.join(self.version_path(version), md.MANIFEST_FILE))
        if manifest is None or not isinstance(manifest.get("content_sha256"), str):
            return None
        identity = manifest.get("identity_sha256")
        return RegistryEntry(
            version=version,
            uri=self.uri(version),
            content_sha256=manifest["content_sha256"],
            identity_sha256=identity if isinstance(identity, str) else None,
        )

    def read_pointer(self) -> Optional[PushedModel]:
        """``LATEST_BLESSED.json``, or None when it is missing or not a pushed-model record (logged)."""
        path = self.join(POINTER_FILE)
        document = self.read_json(path)
        if document is None:
            return None
        try:
            return PushedModel.from_dict(document, where=path)
        except RecordError as exc:
            log.warning("ignoring the registry pointer: %s", exc)
            return None

    def remove_pointer(self) -> None:
        target = self.join(POINTER_FILE)
        if self.local:
            with contextlib.suppress(FileNotFoundError):
                os.remove(target)
        elif self.fs.exists(target):
            self.fs.rm_file(target)

    def write_pointer(self, pushed: PushedModel) -> None:
        data = pushed.to_json().encode()
        target = self.join(POINTER_FILE)
        if self.local:
            publish_bytes(target, data, fsync=True)
        else:
            self.fs.pipe_file(target, data)  # a single-object write: readers see the old or the new pointer


def list_versions(root: str, model_name: str) -> List[RegistryEntry]:
    """The complete versions of a model, ascending by version.

    Directories without ``MANIFEST.json`` (a push in progress or killed) and the staging area are ignored.

    Args:
        root: Registry root: local path, ``file://``, ``gs://``, ``s3://`` or any fsspec URL.
        model_name: The model's name (see :func:`validate_model_name`).
    """
    location = _ModelLocation(root, model_name)
    location.refresh()
    return _complete_entries(location)


def latest_blessed(root: str, model_name: str) -> Optional[RegistryEntry]:
    """The version ``LATEST_BLESSED.json`` names, or None when the model has no complete version.

    When the pointer is missing or names a version that is not complete (e.g. a push was killed between
    publishing and moving the pointer), the highest complete version is returned instead: only blessed
    models are pushed. The returned ``uri`` is built from ``root`` as given here, so it stays valid when
    the registry is reached under another path than the pusher used.
    """
    location = _ModelLocation(root, model_name)
    location.refresh()
    pointer = location.read_pointer()
    if pointer is not None:
        entry = location.entry(pointer.version)
        if entry is not None:
            return entry
    return _newest_not_rolled_back(location)


def rolled_back_versions(root: str, model_name: str) -> List[int]:
    """The versions whose canary was rolled back (``.rollbacks/<N>.json``), ascending."""
    location = _ModelLocation(root, model_name)
    location.refresh()
    return location.rolled_back_numbers()


def record_rollback(root: str, model_name: str, version: int, reason: str = "") -> Optional[RegistryEntry]:
    """Records that ``version``'s canary was rolled back, and moves ``LATEST_BLESSED.json`` off it.

    Writes ``.rollbacks/<version>.json`` (a :class:`RolledBackVersion`; written again when recorded
    twice). When the pointer names ``version``, it is pointed at the newest complete version that was not
    rolled back, or removed when there is none, so that the next evaluation's baseline is the model still
    serving.

    Args:
        root: Registry root: local path, ``file://``, ``gs://``, ``s3://`` or any fsspec URL.
        model_name: The model's name.
        version: The rolled-back version.
        reason: Why it was rolled back (kept in the record).

    Returns:
        The version ``LATEST_BLESSED.json`` names afterwards (None: no version left to name).

    Raises:
        RegistryError: bad model name or root, or ``version`` is not a complete version of the model.
    """
    location = _ModelLocation(root, model_name)
    location.refresh()
    if location.entry(version) is None:
        raise RegistryError(f"{location.uri(version)}: not a complete version of {model_name}; nothing to roll back")
    record = RolledBackVersion(
        version=version,
        rolled_back_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        reason=reason,
    )
    data = record.to_json().encode()
    target = location.join(ROLLBACKS_DIR, f"{version}.json")
    if location.local:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        publish_bytes(target, data, fsync=True)
    else:
        location.fs.pipe_file(target, data)
    pointer = location.read_pointer()
    if pointer is not None and pointer.version != version:
        return location.entry(pointer.version) or _newest_not_rolled_back(location)
    newest = _newest_not_rolled_back(location)
    if newest is None:
        location.remove_pointer()
    else:
        location.write_pointer(_pushed_model(newest, model_name, root, created=False))
    return newest


def materialize(uri: str, local_dir: str) -> str:
    """A local directory holding the model version at ``uri``.

    Local versions are used in place: the path itself is returned (nothing copied). Remote versions are
    downloaded into ``local_dir`` (created; must be missing or empty), checked against their manifest, and
    only then moved into place, so ``local_dir`` is either the complete version or untouched.

    Raises:
        RegistryError: the version does not exist, is incomplete (no ``MANIFEST.json``) or ``local_dir``
            is not empty.
        kfpkit.core.model_dir.ModelDirError: the downloaded files do not match the manifest.
    """
    try:
        fs, path = fsspec.core.url_to_fs(os.fspath(uri))
    except (ImportError, ValueError) as exc:
        raise RegistryError(f"model URI {uri!r} cannot be opened: {exc}") from exc
    if isinstance(fs, LocalFileSystem):
        path = os.path.abspath(path)
        if not os.path.isdir(path):
            raise RegistryError(f"model URI {uri!r}: no such directory")
        return path
    path = path.rstrip("/")
    fs.invalidate_cache()
    if not fs.exists(posixpath.join(path, md.MANIFEST_FILE)):
        raise RegistryError(f"model URI {uri!r}: no {md.MANIFEST_FILE}; the version does not exist or is incomplete")
    local_dir = os.path.abspath(os.fspath(local_dir))
    if os.path.exists(local_dir) and (not os.path.isdir(local_dir) or os.listdir(local_dir)):
        raise RegistryError(f"cannot materialize {uri!r} into {local_dir}: it exists and is not an empty directory")
    parent = os.path.dirname(local_dir)
    os.makedirs(parent, exist_ok=True)
    partial = tempfile.mkdtemp(prefix=f".{os.path.basename(local_dir)}.partial-", dir=parent)
    try:
        for remote_file in fs.find(path):
            rel = posixpath.relpath(remote_file, path)
            destination = os.path.join(partial, *rel.split("/"))
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            fs.get_file(remote_file, destination)
        md.verify_manifest(partial)
        if os.path.isdir(local_dir):
            os.rmdir(local_dir)
        os.rename(partial, local_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return local_dir


def push_version(
    local_model_dir: str,
    root: str,
    model_name: str,
    extra_dirs: Optional[Mapping[str, str]] = None,
) -> PushedModel:
    """Copies a model directory into the registry as a new version, unless a version already holds it.

    The version gets every file of ``local_model_dir`` (a ``MANIFEST.json`` at its top is not copied: the
    registry writes its own), each ``extra_dirs`` entry, and a fresh ``MANIFEST.json`` written last. When
    a complete version already holds the same content (equal ``identity_sha256``, see the module
    docstring), nothing is copied and that version is returned with ``created=False``. Either way
    ``LATEST_BLESSED.json`` is then pointed at the version.

    Args:
        local_model_dir: Local model directory (must hold ``model_card.json``).
        root: Registry root: local path, ``file://``, ``gs://``, ``s3://`` or any fsspec URL.
        model_name: The model's name (see :func:`validate_model_name`).
        extra_dirs: Relative directory name in the version (e.g. ``"baseline"``) → local source directory
            (its files are copied below that name) or file (copied as ``<name>/<file name>``).

    Returns:
        The version holding the content and whether this push created it.

    Raises:
        RegistryError: bad model name, not a model directory, bad ``extra_dirs``, an unusable root, or the
            source changed while it was being copied.
    """
    location = _ModelLocation(root, model_name)
    plan = _plan_files(local_model_dir, extra_dirs)
    content_sha256 = _content_sha256({rel: md.sha256_file(src) for rel, src in plan.items()})
    identity = identity_sha256(plan)

    def pushed(entry: RegistryEntry, created: bool) -> PushedModel:
        result = _pushed_model(entry, model_name, root, created)
        if not created and entry.version in location.rolled_back_numbers():
            log.warning(
                "version %s already holds this model, and its canary was rolled back: LATEST_BLESSED is not moved",
                entry.version,
            )
            return result
        location.write_pointer(result)
        return result

    location.refresh()
    for entry in reversed(_complete_entries(location)):
        if entry.identity_sha256 == identity or entry.content_sha256 == content_sha256:
            return pushed(entry, created=False)

    if location.local:
        version = _publish_local(location, plan, content_sha256, identity)
    else:
        version = _publish_remote(location, plan, content_sha256, identity)
    entry = RegistryEntry(version, location.uri(version), content_sha256, identity)
    return pushed(entry, created=True)


def identity_sha256(files: Mapping[str, str]) -> str:
    """The digest that decides whether two model versions are the same (rules: the module docstring).

    Args:
        files: Relative path in the version (``/``-separated) → local file, e.g. every file of a model
            directory but its ``MANIFEST.json``.

    Returns:
        64 hex digits; equal for two training runs that differ only in timestamps, run ids, durations and
        serialization noise.
    """
    lines = [f"kfpkit version identity {IDENTITY_RULES}\n"]
    for rel in sorted(files):
        digest = _identity_digest(rel, files[rel])
        if digest is not None:
            lines.append(f"{rel}  {digest}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# --------------------------------------------------------------------------------------------- identity
# Model card fields that describe the run rather than the model (the module docstring says why).
_CARD_RUN_FACTS = ("created_at", "pipeline_run", "training")
_METRIC_RUN_FACTS = ("rows_per_second",)
_BASELINE_RUN_FACTS = ("created_at", "identity")
_TORCHSCRIPT_NOISE = ".data/serialization_id"
_TORCHSCRIPT_FINAL = re.compile(rb"^\s+\w+ : Final\[")
_SKOPS_SCHEMA = "schema.json"


def _identity_digest(rel: str, path: str) -> Optional[str]:
    """The digest of one file in :func:`identity_sha256` (None: the file is left out)."""
    top_level = "/" not in rel
    name = posixpath.basename(rel)
    if rel.startswith(md.BASELINE_DIR + "/") and name.endswith("_stats.pb"):
        return None
    digest: Optional[str] = None
    if top_level and name == md.MODEL_CARD_FILE:
        digest = _json_digest(path, _card_without_run_facts)
    elif top_level and name == MONITORING_BASELINE_FILE:
        digest = _json_digest(path, lambda doc: _without(doc, _BASELINE_RUN_FACTS))
    elif top_level and name == md.TORCHSCRIPT_FILE:
        digest = _zip_digest(path, _torchscript_lines)
    elif top_level and name == md.SKOPS_FILE:
        digest = _zip_digest(path, _skops_lines)
    return digest or md.sha256_file(path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _without(document: Any, names: Iterable[str]) -> Any:
    return {k: v for k, v in document.items() if k not in names} if isinstance(document, dict) else document


def _card_without_run_facts(card: Any) -> Any:
    card = _without(card, _CARD_RUN_FACTS)
    if isinstance(card, dict) and isinstance(card.get("metrics"), dict):
        card["metrics"] = {split: _without(values, _METRIC_RUN_FACTS) for split, values in card["metrics"].items()}
    return card


def _json_digest(path: str, normalize: Callable[[Any], Any]) -> Optional[str]:
    """sha256 of the normalized JSON document with sorted keys; None when the file is not JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            document = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return _sha256(json.dumps(normalize(document), sort_keys=True, separators=(",", ":")).encode())


def _zip_digest(path: str, member_lines: Callable[[zipfile.ZipFile], List[str]]) -> Optional[str]:
    """sha256 of the sorted lines ``member_lines`` gives for the archive; None when it is not a zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            lines = member_lines(archive)
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError, RuntimeError, NotImplementedError):
        return None
    return _sha256("".join(sorted(lines)).encode())


def _stream_sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _sorted_final_declarations(code: bytes) -> bytes:
    """TorchScript code with each run of ``name : Final[...] = ...`` lines sorted (their order is a set's)."""
    out: List[bytes] = []
    run: List[bytes] = []
    for line in code.split(b"\n"):
        if _TORCHSCRIPT_FINAL.match(line):
            run.append(line)
            continue
        out += sorted(run)
        run = []
        out.append(line)
    return b"\n".join(out + sorted(run))


def _torchscript_lines(archive: zipfile.ZipFile) -> List[str]:
    lines = []
    for info in archive.infolist():
        name = info.filename.split("/", 1)[-1]  # the archive's top folder is named after the saved file
        if info.is_dir() or name == _TORCHSCRIPT_NOISE:
            continue
        if name.startswith("code/") and name.endswith(".py"):
            digest = _sha256(_sorted_final_declarations(archive.read(info)))
        else:
            with archive.open(info) as handle:
                digest = _stream_sha256(handle)
        lines.append(f"{name}  {digest}\n")
    return lines


def _skops_lines(archive: zipfile.ZipFile) -> List[str]:
    files = {}
    for info in archive.infolist():
        if not info.is_dir() and info.filename != _SKOPS_SCHEMA:
            with archive.open(info) as handle:
                files[info.filename] = _stream_sha256(handle)
    schema = json.loads(archive.read(_SKOPS_SCHEMA).decode("utf-8"))
    ids: Dict[Any, int] = {}

    def canonical(node: Any) -> Any:
        if isinstance(node, list):
            return [canonical(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: Dict[str, Any] = {}
        for key, value in node.items():
            if key == "__id__":
                out[key] = ids.setdefault(value, len(ids))  # object addresses, numbered in document order
            elif key == "file" and isinstance(value, str) and value in files:
                out[key] = files[value]  # array files are named after object addresses too
            else:
                out[key] = canonical(value)
        return out

    text = json.dumps(canonical(schema), sort_keys=True, separators=(",", ":"))
    return [f"{_SKOPS_SCHEMA}  {_sha256(text.encode())}\n", *(f"{d}\n" for d in files.values())]


# --------------------------------------------------------------------------------------------- internals


def _complete_entries(location: _ModelLocation) -> List[RegistryEntry]:
    entries = (location.entry(version) for version in location.version_numbers())
    return [entry for entry in entries if entry is not None]


def _pushed_model(entry: RegistryEntry, model_name: str, root: str, created: bool) -> PushedModel:
    return PushedModel(
        model_uri=entry.uri,
        version=entry.version,
        content_sha256=entry.content_sha256,
        created=created,
        model_name=model_name,
        registry_root=os.fspath(root),
    )


def _newest_not_rolled_back(location: _ModelLocation) -> Optional[RegistryEntry]:
    rolled_back = set(location.rolled_back_numbers())
    entries = [entry for entry in _complete_entries(location) if entry.version not in rolled_back]
    return entries[-1] if entries else None


def _plan_files(local_model_dir: str, extra_dirs: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """``{relative path in the version: local source file}`` after validating the inputs."""
    model_dir = os.path.abspath(os.fspath(local_model_dir))
    if not os.path.isdir(model_dir):
        raise RegistryError(f"{local_model_dir}: not a directory; push needs a model directory written by train")
    try:
        md.read_model_card(model_dir)  # validates the typed card: a field error names the field
    except md.ModelCardError as exc:
        if not os.path.isfile(os.path.join(model_dir, md.MODEL_CARD_FILE)):
            raise RegistryError(f"{model_dir} is not a model directory: no {md.MODEL_CARD_FILE}") from exc
        raise RegistryError(f"{model_dir} is not a model directory: {exc}") from exc

    plan = {rel: os.path.join(model_dir, *rel.split("/")) for rel in md.list_files(model_dir)}
    for name, given_source in (extra_dirs or {}).items():
        rel_dir = _check_extra_name(name)
        source = os.path.abspath(os.fspath(given_source))
        if os.path.isdir(source):
            files = _walk_files(source)
            if not files:
                raise RegistryError(f"extra_dirs[{name!r}]: {source} contains no files")
            extra = {f"{rel_dir}/{rel}": os.path.join(source, *rel.split("/")) for rel in files}
        elif os.path.isfile(source):
            extra = {f"{rel_dir}/{os.path.basename(source)}": source}
        else:
            raise RegistryError(f"extra_dirs[{name!r}]: {source} does not exist")
        clashes = sorted(rel for rel in extra if rel in plan)
        if clashes:
            raise RegistryError(
                f"extra_dirs[{name!r}] would overwrite {clashes[0]!r}, which the model directory "
                "(or another extra dir) already provides"
            )
        plan.update(extra)
    return plan


def _check_extra_name(name: str) -> str:
    normalized = posixpath.normpath(name) if isinstance(name, str) and name else ""
    if (
        not normalized
        or normalized in (".", md.MANIFEST_FILE)
        or normalized.startswith(("/", "../"))
        or normalized == ".."
        or "\\" in normalized
    ):
        raise RegistryError(f"extra_dirs key {name!r} must be a relative directory name such as 'baseline'")
    return normalized


def _walk_files(directory: str) -> List[str]:
    out = []
    for current, _dirs, files in os.walk(directory):
        for name in files:
            out.append(os.path.relpath(os.path.join(current, name), directory).replace(os.sep, "/"))
    return sorted(out)


def _content_sha256(files: Mapping[str, str]) -> str:
    """Same formula as ``model_dir.build_manifest`` (tests compare both on every push)."""
    lines = "".join(f"{rel}  {digest}\n" for rel, digest in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def _copy_file(source: str, destination: str) -> None:
    shutil.copyfile(source, destination)


def _upload_file(fs: Any, source: str, destination: str) -> None:
    fs.put_file(source, destination)


def _stage(plan: Mapping[str, str], staging: str, expected_sha256: str, identity: str) -> Dict[str, Any]:
    """Copies the planned files into ``staging`` and writes the manifest there, last.

    The manifest is ``model_dir.build_manifest``'s plus ``identity_sha256`` (see :func:`identity_sha256`).
    """
    for rel, source in sorted(plan.items()):
        destination = os.path.join(staging, *rel.split("/"))
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        _copy_file(source, destination)
    manifest = md.build_manifest(staging)
    if manifest["content_sha256"] != expected_sha256:
        raise RegistryError("the model directory changed while it was being pushed; push it again")
    manifest["identity_sha256"] = identity
    with open(os.path.join(staging, md.MANIFEST_FILE), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
    return manifest


def _claim_document(push_id: str, version: int) -> bytes:
    return json.dumps(
        {
            "version": version,
            "push_id": push_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "claimed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        sort_keys=True,
    ).encode()


def _publish_under_claim(location: _ModelLocation, publish: Callable[[int], bool]) -> int:
    """Claims the lowest free version number and calls ``publish(number)``; returns the number it published.

    ``publish`` returns False when it cannot use the number (``<N>/`` already holds files that no claim
    accounts for); that number stays claimed, hence skipped, and the next one is claimed. An exception in
    ``publish`` propagates (the claim stays too).

    Raises:
        RegistryError: no number could be claimed and published in ``_MAX_PUBLISH_ATTEMPTS`` tries.
    """
    push_id = uuid.uuid4().hex
    version = location.next_number()
    for _ in range(_MAX_PUBLISH_ATTEMPTS):
        if not location.try_claim(version, _claim_document(push_id, version)):
            # Another pusher holds this number: go past everything claimed or published by now.
            version = max(version + 1, location.next_number())
        elif publish(version):
            return version
        else:
            version += 1
    raise RegistryError(f"{location.path}: no free version number after {_MAX_PUBLISH_ATTEMPTS} attempts")


def _publish_local(location: _ModelLocation, plan: Mapping[str, str], content_sha256: str, identity: str) -> int:
    staging = location.join(STAGING_DIR, uuid.uuid4().hex)
    os.makedirs(staging)

    def rename_into(version: int) -> bool:
        target = location.version_path(version)
        if location.has_files(version):
            return False
        try:
            # One rename publishes the whole version. Not publish.publish_directory: that replaces an existing
            # folder, and a version is never replaced. The pointer write that follows fsyncs this folder.
            os.rename(staging, target)
        except OSError:
            if not os.path.lexists(target):
                raise
            return False  # a directory appeared there after the check: leave it alone
        return True

    try:
        _stage(plan, staging, content_sha256, identity)
        _fsync_tree(staging)
        return _publish_under_claim(location, rename_into)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # this push's own staging copy, nothing else
        raise


def _publish_remote(location: _ModelLocation, plan: Mapping[str, str], content_sha256: str, identity: str) -> int:
    fs = location.fs
    with tempfile.TemporaryDirectory(prefix="kfpkit-push-") as staging:
        manifest = _stage(plan, staging, content_sha256, identity)

        def upload_into(version: int) -> bool:
            if location.has_files(version):
                return False
            target = location.version_path(version)
            uploaded: List[str] = []
            try:
                for rel in [*sorted(manifest["files"]), md.MANIFEST_FILE]:
                    # The manifest goes last: from that write on, readers see the version as complete.
                    destination = posixpath.join(target, rel)
                    uploaded.append(destination)  # before the upload: a failed one may leave a partial object
                    _upload_file(fs, os.path.join(staging, *rel.split("/")), destination)
            except BaseException:
                _remove_uploaded(fs, uploaded)
                raise
            return True

        return _publish_under_claim(location, upload_into)


def _remove_uploaded(fs: Any, paths: List[str]) -> None:
    """Deletes the objects this push uploaded (never a whole folder); the version stays claimed and skipped."""
    for path in reversed(paths):
        try:
            fs.rm_file(path)
        except Exception:
            # never written, or the store is unreachable: without its manifest the version stays invisible
            pass


def _fsync_tree(directory: str) -> None:
    for current, _dirs, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(current, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
