"""The deployment pipeline: deploy (a pushed version as an ISVC or its canary) → rollout (canary analysis).

Platform-neutral like the training pipeline: :func:`build_deployment_pipeline` takes a
:class:`~kfpkit.pipelines.platforms.Platform` for Kubeflow- or Vertex-only task settings. The rollout runs
only when deploy left a canary (a first deploy creates the ISVC and has nothing to analyse).
"""

from typing import Optional

from kfp import dsl

from kfpkit.components.deploy.component import deploy
from kfpkit.components.rollout.component import rollout
from kfpkit.pipelines.platforms import LocalPlatform, Platform

PIPELINE_NAME = "kfpkit-deployment"


def build_deployment_pipeline(platform: Optional[Platform] = None):
    """Returns the deployment pipeline (a KFP ``GraphComponent``) configured for ``platform``."""
    platform = platform or LocalPlatform()

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Deploy a pushed model version to KServe (new InferenceService or canary) and analyse the "
        "canary from Prometheus metrics, promoting or rolling it back.",
    )
    def deployment_pipeline(
        model_uri: str,
        model_version: str,
        content_sha256: str,
        prometheus_url: str,
        isvc_name: str,
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
    ):
        """Deploys and rolls out one model version.

        Args:
            model_uri: Registry version URI (push's model_uri), the KServe storageUri.
            model_version: Registry version number (push's version).
            content_sha256: The version's content digest (push's content_sha256), pinned on the predictor.
            prometheus_url: Prometheus that scrapes the predictors.
            isvc_name: InferenceService name (the registry's model name).
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
        deploy_task = deploy(
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
        platform.configure_task(deploy_task)
        with dsl.If(deploy_task.outputs["canary_version"] != "", name="has-canary"):
            rollout_task = rollout(
                isvc_name=isvc_name,
                namespace=namespace,
                prometheus_url=prometheus_url,
                interval_seconds=interval_seconds,
                min_requests=min_requests,
                max_inconclusive=max_inconclusive,
                timeout_seconds=timeout_seconds,
            )
            rollout_task.after(deploy_task)
            platform.configure_task(rollout_task)

    return deployment_pipeline
