"""Compile kfpkit pipelines for a target platform (Kubeflow Pipelines or Vertex AI Pipelines).

``compile_pipeline("training", "kubeflow", "build/")`` writes ``build/training.kubeflow.yaml``:

* **kubeflow** -- the pipeline spec plus, as a second YAML document, the kfp-kubernetes platform spec
  (GPU toleration, node selectors, image pull secrets). Upload it in the Kubeflow UI or with
  ``kfp.Client().upload_pipeline``.
* **vertex** -- a single YAML document (``aiplatform.PipelineJob`` rejects the two-document form), with a
  Vertex accelerator name on the training task.

Images are those of :mod:`kfpkit.components.images`; ``image_registry`` rewrites their registry prefix in
the compiled spec (so a private mirror needs no code change).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List, Optional

import yaml

from kfpkit.components import images
from kfpkit.pipelines import registry
from kfpkit.pipelines.platforms import TARGETS, platform_for


def pipeline_names() -> List[str]:
    """The names of every registered pipeline, sorted (:func:`kfpkit.pipelines.registry.pipeline_names`)."""
    return registry.pipeline_names()


def output_path(out_dir: str, pipeline: str, target: str) -> str:
    """Where :func:`compile_pipeline` writes a pipeline for a target: ``<out_dir>/<pipeline>.<target>.yaml``."""
    return os.path.join(out_dir, f"{pipeline}.{target}.yaml")


def compile_pipeline(
    pipeline: str,
    target: str,
    out_dir: str,
    image_registry: Optional[str] = None,
    accelerator_type: Optional[str] = None,
) -> str:
    """Compiles one pipeline for one target and returns the written path.

    Args:
        pipeline: A name from :func:`pipeline_names` (e.g. ``training``).
        target: ``kubeflow`` or ``vertex``.
        out_dir: Folder for ``<pipeline>.<target>.yaml`` (created if missing).
        image_registry: Registry prefix replacing ``ghcr.io/kfpkit`` in every task image.
        accelerator_type: Vertex accelerator name (default ``NVIDIA_L4``); Kubeflow always uses
            ``nvidia.com/gpu``.

    Raises:
        ValueError: unknown pipeline or target, or a Vertex compile that produced more than one YAML
            document.
    """
    from kfp import compiler

    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    builder = registry.pipeline_builder(pipeline)
    if accelerator_type and target != "vertex":
        raise ValueError("--accelerator-type applies to the vertex target only (Kubeflow uses nvidia.com/gpu)")
    graph = builder(platform_for(target, accelerator_type))
    os.makedirs(out_dir, exist_ok=True)
    path = output_path(out_dir, pipeline, target)
    fd, tmp = tempfile.mkstemp(prefix=f".{pipeline}.{target}.", suffix=".yaml", dir=out_dir)
    os.close(fd)
    try:
        compiler.Compiler().compile(pipeline_func=graph, package_path=tmp)
        with open(tmp, encoding="utf-8") as fh:
            documents = [d for d in yaml.safe_load_all(fh) if d is not None]
        if target == "vertex" and len(documents) != 1:
            raise ValueError(f"vertex target produced {len(documents)} YAML documents; Vertex AI accepts exactly one")
        if image_registry:
            rewrite_image_registry(documents[0], image_registry)
            with open(tmp, "w", encoding="utf-8") as fh:
                yaml.safe_dump_all(documents, fh, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def rewrite_image_registry(pipeline_spec: Dict[str, Any], registry: str) -> int:
    """Replaces the default registry prefix of every executor image; returns how many were changed."""
    changed = 0
    prefix = images.DEFAULT_REGISTRY + "/"
    for executor in pipeline_spec.get("deploymentSpec", {}).get("executors", {}).values():
        container = executor.get("container")
        if container and container.get("image", "").startswith(prefix):
            container["image"] = registry.rstrip("/") + "/" + container["image"][len(prefix) :]
            changed += 1
    return changed


def compile_all(out_dir: str, targets: Optional[List[str]] = None, **kwargs: Any) -> List[str]:
    """Compiles every pipeline for each target (default: all targets)."""
    return [compile_pipeline(p, t, out_dir, **kwargs) for p in pipeline_names() for t in (targets or TARGETS)]
