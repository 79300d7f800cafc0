"""KFP component: push a blessed model into the versioned registry."""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def push(
    model: Input[Model],
    registry_root: str,
    model_name: str,
    pushed_model: Output[Model],
    baseline: Optional[Input[Artifact]] = None,
) -> NamedTuple("PushOutputs", [("model_uri", str), ("version", int), ("created", bool)]):  # type: ignore[valid-type]  # KFP reads the functional NamedTuple
    """Copies a blessed model into the registry as ``<registry_root>/<model_name>/<version>/``.

    The version holds the model directory, the TFDV baseline under ``baseline/`` (when given) and a
    ``MANIFEST.json`` with the sha256 of every file, written last: a version is complete or invisible.
    Pushing a model that an existing version already holds (equal ``identity_sha256``: timestamps, run ids,
    durations and serialization noise aside) creates nothing and returns that version, ``created`` false.
    ``<registry_root>/<model_name>/LATEST_BLESSED.json`` is then pointed at the version. The pipeline runs
    this component only for blessed models.

    Args:
        model: Model directory written by train (``model_card.json``, ``preprocessing.json``, model file).
        registry_root: Registry root: a local path (e.g. a mounted PVC), ``gs://bucket/prefix`` or
            ``s3://bucket/prefix``.
        model_name: Model name in the registry; lowercase letters, digits and '-', starting with a letter,
            at most 63 characters (it also names the KServe InferenceService).
        pushed_model: The ``PushedModel`` record (``kfpkit.core.registry``) as JSON: ``model_uri``,
            ``version``, ``content_sha256``, ``created``, ``model_name``, ``registry_root``; the same keys
            are set as its metadata.
        baseline: TFDV baseline (training statistics and schema), a directory or a file; stored under
            ``baseline/`` in the version and covered by its manifest.

    Returns:
        model_uri: URI of the registry version, usable as KServe ``storageUri`` (an absolute path for
            local roots, ``gs://...``/``s3://...`` for object stores).
        version: The version number (1, 2, ...).
        created: Whether this push created the version (false: an existing version already held the same
            model and nothing was copied); the continuous-training pipeline deploys only a new version.
    """
    import collections

    from kfpkit.components.push.logic import run_push

    pushed = run_push(
        model_dir=model.path,
        registry_root=registry_root,
        model_name=model_name,
        baseline_path=baseline.path if baseline is not None else None,
        pointer_path=pushed_model.path,
    )
    pushed_model.metadata.update(pushed.to_dict())
    PushOutputs = collections.namedtuple("PushOutputs", ["model_uri", "version", "created"])
    return PushOutputs(pushed.model_uri, pushed.version, pushed.created)
