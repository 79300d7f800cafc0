"""kfp-free logic of the push component: a thin layer over :mod:`kfpkit.core.registry`."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

from kfpkit.core import model_dir as md
from kfpkit.core.registry import push_version


def run_push(
    model_dir: str,
    registry_root: str,
    model_name: str,
    baseline_path: Optional[str] = None,
    pointer_path: Optional[str] = None,
) -> Dict[str, Any]:
    """Pushes a model directory (plus an optional TFDV baseline) and describes the resulting version.

    Args:
        model_dir: Local model directory written by train.
        registry_root: Registry root (local path, ``gs://``, ``s3://`` or any fsspec URL).
        model_name: Model name in the registry (a DNS-1035 label; it also names the InferenceService).
        baseline_path: Local directory or file with the TFDV training statistics and schema; stored under
            ``baseline/`` in the version and covered by its manifest.
        pointer_path: When given, a JSON file with the returned dict is written there (the KFP output
            artifact; the registry's own pointer is published atomically by the registry).

    Returns:
        ``{"model_uri", "version", "content_sha256", "created", "model_name", "registry_root"}``.

    Raises:
        kfpkit.core.registry.RegistryError: bad model name, model directory or baseline.
    """
    extra_dirs = {md.BASELINE_DIR: baseline_path} if baseline_path else None
    result = push_version(model_dir, registry_root, model_name, extra_dirs=extra_dirs)
    summary: Dict[str, Any] = {
        "model_uri": result.uri,
        "version": result.version,
        "content_sha256": result.content_sha256,
        "created": result.created,
        "model_name": model_name,
        "registry_root": registry_root,
    }
    if pointer_path:
        os.makedirs(os.path.dirname(os.path.abspath(pointer_path)), exist_ok=True)
        with open(pointer_path, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2, sort_keys=True)
    return summary
