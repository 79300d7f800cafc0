"""kfp-free logic of the push component: a thin layer over :mod:`kfpkit.core.registry`."""

from __future__ import annotations

import os
from typing import Optional

from kfpkit.core import model_dir as md
from kfpkit.core.records import write_record
from kfpkit.core.registry import PushedModel, push_version


def run_push(
    model_dir: str,
    registry_root: str,
    model_name: str,
    baseline_path: Optional[str] = None,
    pointer_path: Optional[str] = None,
) -> PushedModel:
    """Pushes a model directory (plus an optional TFDV baseline) and describes the resulting version.

    A version that already holds the same content (equal ``identity_sha256``: timestamps, run ids,
    durations and serialization noise aside, see :mod:`kfpkit.core.registry`) is not pushed again: the
    result names it, with ``created=False``, and a line on stdout says so.

    Args:
        model_dir: Local model directory written by train.
        registry_root: Registry root (local path, ``gs://``, ``s3://`` or any fsspec URL).
        model_name: Model name in the registry (a DNS-1035 label; it also names the InferenceService).
        baseline_path: Local directory or file with the TFDV training statistics and schema; stored under
            ``baseline/`` in the version and covered by its manifest.
        pointer_path: When given, the returned record is written there as JSON (the KFP output artifact;
            the registry's own pointer is published atomically by the registry).

    Returns:
        The :class:`~kfpkit.core.registry.PushedModel` record.

    Raises:
        kfpkit.core.registry.RegistryError: bad model name, model directory or baseline.
    """
    extra_dirs = {md.BASELINE_DIR: baseline_path} if baseline_path else None
    pushed = push_version(model_dir, registry_root, model_name, extra_dirs=extra_dirs)
    if pushed.created:
        print(f"push: created version {pushed.version} at {pushed.model_uri}")
    else:
        print(
            f"push: version {pushed.version} already holds this model (same identity_sha256); "
            f"nothing pushed, {pushed.model_uri} reused"
        )
    if pointer_path:
        os.makedirs(os.path.dirname(os.path.abspath(pointer_path)), exist_ok=True)
        write_record(pointer_path, pushed)
    return pushed
