"""The deployment pipeline: deploy (a pushed version as an ISVC or its canary) → rollout (canary analysis).

Platform-neutral like the training pipeline: :func:`build_deployment_pipeline` binds
:func:`deployment_pipeline` to a :class:`~kfpkit.pipelines.platforms.Platform` for Kubeflow- or
Vertex-only task settings. The rollout runs only when deploy left a canary (a first deploy creates the ISVC
and has nothing to analyse).
"""

from typing import Any, Callable, Optional

from kfp import dsl

from kfpkit.components.deploy.component import deploy
from kfpkit.components.rollout.component import rollout
from kfpkit.pipelines.platforms import LocalPlatform, Platform, platform_pipeline

PIPELINE_NAME = "kfpkit-deployment"
DESCRIPTION = (
    "Deploy a pushed model version to KServe (new InferenceService or canary) and analyse the "
    "canary from Prometheus metrics, promoting or rolling it back."
)
# A task of the pipeline being built (kfp's PipelineTask); pipeline parameters are kfp PipelineChannels.
Task = Any


def build_deployment_pipeline(platform: Optional[Platform] = None) -> Any:
    """Returns the deployment pipeline (a KFP ``GraphComponent``) configured for ``platform``."""
    return platform_pipeline(
        deployment_pipeline, platform or LocalPlatform(), name=PIPELINE_NAME, description=DESCRIPTION
    )


def deployment_pipeline(
    platform: Platform,
    model_uri: str,
    content_sha256: str,
    prometheus_url: str,
    isvc_name: str,
    model_version: int = 0,
    namespace: str = "kfpkit",
    mode: str = "Serverless",
    predictor_image: str = "",
    service_account: str = "",
    canary_percent: int = 10,
    min_replicas: int = 1,
    max_replicas: int = 1,
    logger_url: str = "",
    interval_seconds: float = 60.0,
    min_requests: int = 50,
    max_inconclusive: int = 3,
    timeout_seconds: float = 600.0,
) -> None:
    """Deploys and rolls out one model version.

    Args:
        platform: The target platform's task settings (bound by :func:`build_deployment_pipeline`; not a
            pipeline parameter).
        model_uri: Registry version URI (push's model_uri), the KServe storageUri.
        content_sha256: The version's content digest (push's content_sha256), pinned on the predictor.
        prometheus_url: Prometheus that scrapes the predictors.
        isvc_name: InferenceService name (the registry's model name).
        model_version: Registry version number (push's version); 0: the version that model_uri names
            (a model_uri that is not a registry version URI then fails, naming this parameter).
        namespace: Namespace of the InferenceService.
        mode: Serverless or Standard (RawDeployment).
        predictor_image: Predictor image (empty: kfpkit's serving image).
        service_account: Service account with the storage credentials.
        canary_percent: First traffic share of a new version (the rollout's steps take it from there).
        min_replicas: Minimum predictor replicas.
        max_replicas: Maximum predictor replicas.
        logger_url: KServe payload-logger sink URL (empty: none).
        interval_seconds: Seconds of traffic analysed per rollout step.
        min_requests: Canary requests a step needs to be judged.
        max_inconclusive: Inconclusive intervals before a rollback.
        timeout_seconds: Readiness timeout of each change.
    """
    deploy_task = deploy_version(
        platform,
        isvc_name=isvc_name,
        namespace=namespace,
        model_uri=model_uri,
        model_version=model_version,
        content_sha256=content_sha256,
        mode=mode,
        predictor_image=predictor_image,
        service_account=service_account,
        canary_percent=canary_percent,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        logger_url=logger_url,
        timeout_seconds=timeout_seconds,
    )
    roll_out_canary(
        platform,
        deploy_task,
        isvc_name=isvc_name,
        namespace=namespace,
        model_uri=model_uri,
        prometheus_url=prometheus_url,
        interval_seconds=interval_seconds,
        min_requests=min_requests,
        max_inconclusive=max_inconclusive,
        timeout_seconds=timeout_seconds,
    )


def deploy_version(platform: Platform, **parameters: Any) -> Task:
    """Step 1: create the InferenceService, or add the version to it as a canary.

    Args:
        platform: Adds the platform's settings to the task.
        **parameters: deploy's parameters (the ISVC, the version, its predictor and the first canary share).
    """
    deploy_task = deploy(**parameters)
    platform.configure_task(deploy_task)
    return deploy_task


def roll_out_canary(
    platform: Platform, deploy_task: Task, after_rollout: Optional[Callable[[Task], None]] = None, **parameters: Any
) -> None:
    """Step 2, when deploy left a canary: analyse it step by step, then promote it or roll it back.

    Args:
        platform: Adds the platform's settings to the task.
        deploy_task: The deploy task; its ``canary_version`` output is empty when there is no canary.
        after_rollout: Called with the rollout task inside the same condition (e.g. to alert on its decision).
        **parameters: rollout's parameters (the ISVC, Prometheus, the step length and thresholds).
    """
    with dsl.If(deploy_task.outputs["canary_version"] != "", name="has-canary"):
        rollout_task = rollout(**parameters)
        rollout_task.after(deploy_task)
        platform.configure_task(rollout_task)
        if after_rollout is not None:
            after_rollout(rollout_task)
