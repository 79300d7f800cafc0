"""Target platforms: the thin layer that adds platform-only settings to platform-neutral pipelines.

A pipeline definition in :mod:`kfpkit.pipelines` never names a platform. It calls
``platform.configure_training(task)`` on the tasks that need hardware, and the platform object decides
what that means:

* :class:`LocalPlatform` -- nothing (kfp.local ignores resources).
* :class:`KubeflowPlatform` -- ``nvidia.com/gpu`` accelerator, GPU toleration and node selector through
  kfp-kubernetes, cpu/memory requests and limits.
* :class:`VertexPlatform` -- a Vertex accelerator name (``NVIDIA_L4``, ``NVIDIA_TESLA_T4``, ...),
  cpu/memory limits, no Kubernetes platform spec (Vertex rejects the two-document YAML that
  kfp-kubernetes produces), and a Vertex AI Endpoint as the traffic backend of deploy and rollout.

Only :class:`KubeflowPlatform` imports ``kfp.kubernetes``, and only when it configures a task.

:func:`platform_pipeline` turns a module-level pipeline function whose first parameter is the platform
into the KFP pipeline for one platform.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

# Vertex AI custom-job accelerator names (aiplatform.gapic.AcceleratorType), for a clear error on typos.
VERTEX_ACCELERATORS = (
    "NVIDIA_L4",
    "NVIDIA_TESLA_T4",
    "NVIDIA_TESLA_V100",
    "NVIDIA_TESLA_P4",
    "NVIDIA_TESLA_P100",
    "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB",
    "NVIDIA_H100_80GB",
    "NVIDIA_H100_MEGA_80GB",
    "NVIDIA_H200_141GB",
    "NVIDIA_B200",
)


@dataclass(frozen=True)
class Resources:
    """CPU/memory for a task, as Kubernetes quantities (``"4"``, ``"16G"``)."""

    cpu_request: Optional[str] = None
    cpu_limit: Optional[str] = None
    memory_request: Optional[str] = None
    memory_limit: Optional[str] = None

    def apply(self, task) -> None:
        """Sets each request and limit that is given on ``task``; the others stay unset."""
        if self.cpu_request:
            task.set_cpu_request(self.cpu_request)
        if self.cpu_limit:
            task.set_cpu_limit(self.cpu_limit)
        if self.memory_request:
            task.set_memory_request(self.memory_request)
        if self.memory_limit:
            task.set_memory_limit(self.memory_limit)


TRAIN_RESOURCES = Resources(cpu_request="4", cpu_limit="8", memory_request="16G", memory_limit="32G")


class Platform:
    """Base class: the hooks a pipeline calls. The default does nothing (platform-neutral).

    ``traffic_backend`` is where a pipeline that deploys serves its model: ``kserve`` (an InferenceService;
    Kubeflow, and kfp.local runs against a cluster) or ``vertex`` (a Vertex AI Endpoint), the ``backend``
    of the deploy and rollout components.
    """

    name = "neutral"
    traffic_backend = "kserve"

    def configure_training(self, task) -> None:
        """Called on the GPU training task."""

    def configure_task(self, task) -> None:
        """Called on every other task."""


class LocalPlatform(Platform):
    """kfp.local: resources and accelerators are ignored, so nothing is set."""

    name = "local"


@dataclass
class KubeflowPlatform(Platform):
    """Kubeflow Pipelines on a Kubernetes cluster with NVIDIA GPU nodes.

    Args:
        gpus: GPUs for the training task (``nvidia.com/gpu`` limit).
        gpu_toleration_key: Taint key of the GPU node pool tolerated by the training task.
        gpu_node_selector: Optional node labels for the training task (e.g.
            ``{"nvidia.com/gpu.product": "NVIDIA-L4"}``).
        train_resources: cpu/memory of the training task.
        image_pull_secret: Optional secret for a private image registry, on every task.
    """

    gpus: int = 1
    gpu_toleration_key: str = "nvidia.com/gpu"
    gpu_node_selector: Optional[Dict[str, str]] = None
    train_resources: Resources = TRAIN_RESOURCES
    image_pull_secret: Optional[str] = None
    name = "kubeflow"

    def configure_training(self, task) -> None:
        """Puts the task on a GPU node: accelerator limit, toleration, node selector and cpu/memory."""
        from kfp import kubernetes

        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(self.gpus)
        self.train_resources.apply(task)
        kubernetes.add_toleration(task, key=self.gpu_toleration_key, operator="Exists", effect="NoSchedule")
        for label, value in sorted((self.gpu_node_selector or {}).items()):
            kubernetes.add_node_selector(task, label_key=label, label_value=value)
        self.configure_task(task)

    def configure_task(self, task) -> None:
        """Adds the image pull secret, when one is set."""
        if self.image_pull_secret:
            from kfp import kubernetes

            kubernetes.set_image_pull_secrets(task, [self.image_pull_secret])


@dataclass
class VertexPlatform(Platform):
    """Vertex AI Pipelines.

    Args:
        accelerator_type: Vertex accelerator name for the training task (default ``NVIDIA_L4``).
        gpus: Accelerator count.
        train_resources: cpu/memory limits of the training task (Vertex picks a machine type that fits).
    """

    accelerator_type: str = "NVIDIA_L4"
    gpus: int = 1
    train_resources: Resources = Resources(cpu_limit="8", memory_limit="32G")
    name = "vertex"
    traffic_backend = "vertex"

    def __post_init__(self) -> None:
        if self.accelerator_type not in VERTEX_ACCELERATORS:
            known = ", ".join(VERTEX_ACCELERATORS)
            raise ValueError(f"unknown Vertex accelerator {self.accelerator_type!r}; expected one of {known}")

    def configure_training(self, task) -> None:
        """Sets the Vertex accelerator, its count and the cpu/memory limits of the training task."""
        task.set_accelerator_type(self.accelerator_type).set_accelerator_limit(self.gpus)
        self.train_resources.apply(task)


TARGETS = ("kubeflow", "vertex")


def platform_for(target: str, accelerator_type: Optional[str] = None) -> Platform:
    """The platform object of a ``kfpkit compile --target`` value (or ``local``)."""
    if target == "kubeflow":
        return KubeflowPlatform()
    if target == "vertex":
        return VertexPlatform(accelerator_type=accelerator_type or "NVIDIA_L4")
    if target == "local":
        return LocalPlatform()
    raise ValueError(f"unknown target {target!r}; expected one of {', '.join((*TARGETS, 'local'))}")


def platform_pipeline(function: Callable[..., None], *bound: Any, name: str, description: str) -> Any:
    """The KFP pipeline (a ``GraphComponent``) of ``function`` with its first arguments bound to ``bound``.

    A kfpkit pipeline function takes what configures it first (the :class:`Platform`, and for a pipeline
    that nests another, that pipeline) and then the pipeline's parameters. KFP builds a pipeline from a
    function's signature and docstring, so the function is bound to ``bound`` first: its remaining
    parameters are the pipeline's, and its docstring's ``Args:`` describe them (an entry for a bound
    argument is not a pipeline input and is ignored by KFP).

    Args:
        function: The pipeline function, e.g. :func:`kfpkit.pipelines.training.training_pipeline`.
        *bound: Its first arguments: the platform, then any nested pipelines.
        name: The pipeline's name (``pipelineInfo.name``).
        description: The pipeline's description.
    """
    from kfp import dsl

    bound_function = functools.partial(function, *bound)
    # KFP reads the name and the parameter descriptions from the function itself
    bound_function.__name__ = function.__name__  # type: ignore[attr-defined]
    bound_function.__doc__ = function.__doc__
    return dsl.pipeline(name=name, description=description)(bound_function)
