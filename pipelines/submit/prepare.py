"""Compile a pipeline for a target and check one run's parameters against the compiled spec.

:func:`prepare` is the step between the command line and a service: it compiles the registered pipeline
(:func:`kfpkit.pipelines.targets.compile_pipeline`), reads the run's parameters from a params file and
``--param`` values (:func:`kfpkit.pipelines.parameters.resolve_parameters`, against the compiled spec's
``root.inputDefinitions.parameters``), checks that the registry root suits the target, and optionally
rewrites every task's caching option. Nothing is sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

import yaml

from kfpkit.pipelines import registry
from kfpkit.pipelines.parameters import resolve_parameters, spec_parameters
from kfpkit.pipelines.platforms import TARGETS
from kfpkit.pipelines.submit.errors import SubmitError


def check_pipeline(name: str) -> None:
    """Raises SubmitError unless ``name`` is in :func:`kfpkit.pipelines.registry.pipeline_names`."""
    if name not in registry.pipeline_names():
        raise SubmitError(f"unknown pipeline {name!r}; expected one of {', '.join(registry.pipeline_names())}")


def check_registry_root(target: str, values: Mapping[str, Any]) -> None:
    """On a cluster the model registry must be an object store: a local path would vanish with the pod.

    Raises:
        SubmitError: Vertex AI without a ``gs://`` root, or Kubeflow with a local path.
    """
    root = values.get("registry_root")
    if root is None:
        return
    if target == "vertex" and not str(root).startswith("gs://"):
        raise SubmitError(f"registry_root {root!r}: Vertex AI runs need a gs:// registry root")
    if target == "kubeflow" and "://" not in str(root):
        raise SubmitError(
            f"registry_root {root!r}: Kubeflow runs need an object-store registry root (gs://, s3://, ...); "
            "a local path lives only as long as the task's pod"
        )


def set_caching(pipeline_spec: Dict[str, Any], enabled: bool) -> int:
    """Sets ``cachingOptions.enableCache`` on every task of every DAG; returns how many tasks."""
    dags = [pipeline_spec.get("root", {}), *pipeline_spec.get("components", {}).values()]
    changed = 0
    for component in dags:
        for task in component.get("dag", {}).get("tasks", {}).values():
            task.setdefault("cachingOptions", {})["enableCache"] = enabled
            changed += 1
    return changed


@dataclass
class Prepared:
    """A compiled, checked submission: the package to send and the typed parameter values."""

    pipeline: str
    target: str
    package_path: str
    pipeline_spec: Dict[str, Any]
    parameter_values: Dict[str, Any]

    @property
    def pipeline_name(self) -> str:
        """``pipelineInfo.name`` of the spec (the KFP pipeline's display name)."""
        return self.pipeline_spec["pipelineInfo"]["name"]

    @property
    def digest(self) -> str:
        """The sha256 of the compiled package file (hex)."""
        with open(self.package_path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()

    def check_target(self, target: str) -> None:
        """Raises SubmitError unless the package was compiled for ``target``."""
        if self.target != target:
            raise SubmitError(f"{self.package_path} was compiled for {self.target}, not {target}")


def _compile(pipeline: str, target: str, out_dir: str, **options: Optional[str]) -> str:
    from kfpkit.pipelines.targets import compile_pipeline

    check_pipeline(pipeline)
    if target not in TARGETS:
        raise SubmitError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    try:
        return compile_pipeline(pipeline, target, out_dir, **options)
    except ValueError as exc:
        raise SubmitError(str(exc)) from None


def prepare(
    pipeline: str,
    target: str,
    out_dir: str,
    params: Optional[Mapping[str, Any]] = None,
    *,
    params_file: Optional[str] = None,
    enable_caching: Optional[bool] = None,
    image_registry: Optional[str] = None,
    accelerator_type: Optional[str] = None,
) -> Prepared:
    """Compiles ``pipeline`` for ``target`` into ``out_dir`` and checks the run's parameters against its spec.

    Args:
        pipeline: A registered pipeline name.
        target: ``kubeflow`` or ``vertex``.
        out_dir: Where the compiled package is written.
        params: Parameter values (``--param`` text or typed values); they override ``params_file``'s.
        params_file: A YAML or JSON mapping of parameter names to values (``None``: none).
        enable_caching: Rewrite every task's caching option (``None``: as compiled).
        image_registry: Registry prefix replacing ``ghcr.io/kfpkit`` in the task images.
        accelerator_type: Vertex accelerator name of the training task.

    Raises:
        SubmitError: unknown pipeline or target, a bad compile option, or a registry root that does not
            suit the target.
        ParameterError: a parameter problem (see :func:`kfpkit.pipelines.parameters.resolve_parameters`).
    """
    path = _compile(pipeline, target, out_dir, image_registry=image_registry, accelerator_type=accelerator_type)
    with open(path, encoding="utf-8") as fh:
        documents = [d for d in yaml.safe_load_all(fh) if d is not None]
    values = resolve_parameters(spec_parameters(documents[0]), pipeline, dict(params or {}), params_file=params_file)
    check_registry_root(target, values)
    if enable_caching is not None:
        set_caching(documents[0], enable_caching)
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump_all(documents, fh, sort_keys=True)
    return Prepared(pipeline, target, path, documents[0], values)
