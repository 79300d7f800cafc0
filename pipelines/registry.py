"""Every pipeline kfpkit ships, by name: the one list that compile, golden files and the CLI read.

Each entry maps a pipeline name to its builder, a function that takes a
:class:`~kfpkit.pipelines.platforms.Platform` (or ``None`` for local runs) and returns the KFP pipeline.
Builders are imported lazily so that importing this module stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Callable, Dict

# name -> "module:function" of its builder
_BUILDERS: Dict[str, str] = {
    "continuous-training": "kfpkit.pipelines.continuous_training:build_continuous_training_pipeline",
    "deployment": "kfpkit.pipelines.deployment:build_deployment_pipeline",
    "monitoring": "kfpkit.pipelines.monitoring:build_monitoring_pipeline",
    "training": "kfpkit.pipelines.training:build_training_pipeline",
}


def pipeline_names() -> list:
    """The names of every pipeline, sorted."""
    return sorted(_BUILDERS)


def pipeline_builder(name: str) -> Callable:
    """The builder of pipeline ``name``.

    Raises:
        ValueError: ``name`` is not a kfpkit pipeline (the message lists the known ones).
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown pipeline {name!r}; expected one of {', '.join(pipeline_names())}")
    module, function = _BUILDERS[name].split(":")
    return getattr(importlib.import_module(module), function)
