"""The continuous-training pipeline: the training pipeline's tasks, then, for a new version, deploy → rollout.

::

    ingest → validate ─valid→ train → evaluate ─blessed─┐
                                    └→ infra_validate ─serves─┴→ push ─created→ deploy ─canary→ rollout
                                                                                               └→ alert

* **Only a new version is delivered.** push is idempotent: a model that an existing registry version already
  holds creates nothing and reports ``created`` false, and the run stops there (``dsl.If`` on push's
  ``created`` output). A scheduled run over unchanged data therefore changes nothing on the cluster.
  ``deploy_new_version`` false stops every run after push (where no cluster is reachable).
* **deploy takes push's typed output**, the ``pushed_model`` artifact (a
  :class:`kfpkit.core.registry.PushedModel`: URI, version, content digest), not strings copied from a
  finished run. The InferenceService is named after the registry's model (``model_name``). The first
  version creates it; a later one becomes its canary at ``canary_percent``.
* **rollout** runs when deploy left a canary: the canary analysis steps its traffic up and promotes it or
  rolls it back (:mod:`kfpkit.components.rollout`); with ``alert_webhook_url`` set, the drift_alert
  component then POSTs which (``kfpkit.canary_promoted`` / ``kfpkit.canary_rolled_back``).

Platform-neutral like the training pipeline (:func:`build_continuous_training_pipeline`); the platform's
traffic backend (:attr:`~kfpkit.pipelines.platforms.Platform.traffic_backend`) is deploy's and rollout's
``backend``. On Kubeflow (and kfp.local) it is KServe: the run's service account needs the Role of
``manifests/pipeline-runner`` in the InferenceService's namespace, and the analysis reads Prometheus. On
Vertex AI it is a Vertex AI Endpoint: the version is uploaded to the Vertex Model Registry and deployed
beside the stable one at the first canary share, the analysis reads Cloud Monitoring and the payload log
(``vertex_project`` and ``payload_log`` are then required; the KServe parameters are unused).
The monitoring pipeline retrains through this pipeline (:mod:`kfpkit.pipelines.monitoring`).
"""

import inspect
from typing import Any, Dict, Optional

from kfp import dsl

from kfpkit.components.drift_alert.component import drift_alert
from kfpkit.pipelines.deployment import deploy_version, roll_out_canary
from kfpkit.pipelines.platforms import LocalPlatform, Platform, platform_pipeline
from kfpkit.pipelines.training import train_and_push, training_pipeline

PIPELINE_NAME = "kfpkit-continuous-training"
DESCRIPTION = (
    "Train, gate and push a binary classifier like the training pipeline; when push created a new "
    "registry version, deploy it to KServe (a new InferenceService, or a canary of the existing one) and "
    "let the canary analysis promote it or roll it back."
)
# A task of the pipeline being built (kfp's PipelineTask); pipeline parameters are kfp PipelineChannels.
Task = Any
# The training pipeline's parameters, which this pipeline takes with the same names, defaults and descriptions
TRAINING_PARAMETERS = tuple(inspect.signature(training_pipeline).parameters)[1:]  # all but the platform


def build_continuous_training_pipeline(platform: Optional[Platform] = None) -> Any:
    """Returns the continuous-training pipeline (a KFP ``GraphComponent``) configured for ``platform``.

    Raises:
        TypeError: :func:`continuous_training_pipeline` lacks a parameter of the training pipeline.
    """
    missing = [p for p in TRAINING_PARAMETERS if p not in inspect.signature(continuous_training_pipeline).parameters]
    if missing:
        raise TypeError(
            f"continuous_training_pipeline lacks the training pipeline's parameters {missing}: add them with the "
            "training pipeline's defaults and descriptions"
        )
    return platform_pipeline(
        continuous_training_pipeline, platform or LocalPlatform(), name=PIPELINE_NAME, description=DESCRIPTION
    )


def continuous_training_pipeline(
    platform: Platform,
    registry_root: str,
    source: str,
    label_column: str,
    model_name: str,
    prometheus_url: str,
    eval_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_key_column: str = "",
    framework: str = "pytorch",
    epochs: int = 0,
    batch_size: int = 0,
    ensemble_members: int = 0,
    learning_rate: float = 0.005,
    weight_decay: float = 0.0001,
    patience: int = 2,
    seed: int = 0,
    checkpoint_dir: str = "",
    min_pr_auc_lift: float = 5.0,
    min_pr_auc: float = 0.0,
    max_regression: float = 0.01,
    max_ece: float = 0.0,
    slice_column: str = "",
    fail_on_anomalies: bool = False,
    curated_schema_uri: str = "",
    infra_latency_budget_ms: float = 50.0,
    deploy_new_version: bool = True,
    namespace: str = "kfpkit",
    mode: str = "Serverless",
    predictor_image: str = "",
    predictor_service_account: str = "",
    canary_percent: int = 10,
    analyse_canary: bool = True,
    min_replicas: int = 1,
    max_replicas: int = 1,
    logger_url: str = "",
    interval_seconds: float = 60.0,
    min_requests: int = 50,
    max_inconclusive: int = 3,
    rollout_thresholds: dict = {},  # noqa: B006  (KFP reads it as the STRUCT default {}; kfp.local needs a default)
    timeout_seconds: float = 600.0,
    alert_webhook_url: str = "",
    vertex_project: str = "",
    vertex_location: str = "us-central1",
    vertex_endpoint: str = "",
    payload_log: str = "",
    machine_type: str = "n1-standard-2",
    metrics_delay_seconds: float = 0.0,
) -> None:
    """Trains, gates and pushes a binary classifier; deploys a new version as a canary and rolls it out.

    Args:
        platform: The target platform's task settings (bound by :func:`build_continuous_training_pipeline`;
            not a pipeline parameter).
        registry_root: Model registry root (gs://, s3://, or a local path for local runs); versions go to
            <registry_root>/<model_name>/<version>/.
        source: Data source: synthetic://fraud?rows=N&seed=S&fraud_rate=R&drift=D, a local path,
            file://, gs://, s3:// or http(s):// URI of a CSV, Parquet or JSON Lines file.
        label_column: Binary label column (0/1).
        model_name: Model name in the registry, and the name of its KServe InferenceService (lowercase,
            digits and '-').
        prometheus_url: Prometheus that scrapes the predictors (the canary analysis reads it; unused on the
            Vertex AI target, whose analysis reads Cloud Monitoring).
        eval_fraction: Fraction of rows hashed into the eval split (train's early stopping, calibration
            and decision threshold).
        test_fraction: Fraction of rows hashed into the test split (evaluate's metrics and blessing gate
            only; never given to train); train gets the rest.
        split_key_column: Column whose hash decides the split (empty: the row number).
        framework: 'pytorch' (GPU-capable MLP with embeddings) or 'sklearn' (HistGradientBoosting baseline).
        epochs: Maximum training epochs (PyTorch); 0: chosen from the number of training rows.
        batch_size: Training batch size (PyTorch); 0: chosen from the number of training rows.
        ensemble_members: Networks averaged in the exported model (PyTorch); 0: chosen from the number of
            training rows (5 on small tables, 1 above 13,333 rows).
        learning_rate: AdamW learning rate (PyTorch).
        weight_decay: AdamW weight decay (PyTorch).
        patience: Epochs without a lower eval log loss before early stopping (PyTorch).
        seed: Random seed of the split-independent training randomness.
        checkpoint_dir: Durable folder for per-epoch checkpoints; a retried task resumes from it
            (empty: a temporary folder, so a retry starts over).
        min_pr_auc_lift: Blessing floor relative to chance: the candidate's PR-AUC on the test split must
            reach this multiple of the split's positive rate (at most a tenth of the way from chance to 1).
        min_pr_auc: Blessing: an absolute PR-AUC floor on top of the relative one (0: none).
        max_regression: Blessing: largest allowed PR-AUC drop against the latest blessed model, both
            scored on the test split (a paired bootstrap must show a larger drop with 95% confidence).
        max_ece: ECE ceiling of the blessing gate, on the test split; 0 disables.
        slice_column: Categorical column whose values slice the test-split evaluation report (empty: no
            slices).
        fail_on_anomalies: Fail the run on data anomalies instead of skipping training.
        curated_schema_uri: TFDV schema (text proto) to validate against instead of inferring one
            from the train split (empty: infer).
        infra_latency_budget_ms: p99 latency budget of the candidate in the real KServe server.
        deploy_new_version: Deploy a new version and roll out its canary (false: stop after push, as the
            training pipeline does, e.g. where no cluster is reachable).
        namespace: Namespace of the InferenceService (the run's service account needs the
            kfpkit-pipeline-runner Role there).
        mode: Serverless (Knative revisions) or Standard (RawDeployment, Gateway API weights).
        predictor_image: Predictor image (empty: kfpkit's serving image of this kfpkit version).
        predictor_service_account: Service account of the predictor pods, with read access to the
            registry (empty: the namespace default).
        canary_percent: First traffic share of a new version (the rollout's steps take it from there).
        analyse_canary: Run the canary analysis on a new canary (false: the canary stays at canary_percent
            for a person to promote or roll back, e.g. with kfpkit rollout).
        min_replicas: Minimum predictor replicas.
        max_replicas: Maximum predictor replicas.
        logger_url: KServe payload-logger sink URL (empty: none).
        interval_seconds: Seconds of traffic analysed per rollout step.
        min_requests: Canary requests a rollout step needs to be judged.
        max_inconclusive: Inconclusive intervals before a rollback.
        rollout_thresholds: Overrides of the canary analysis limits by name (max_error_rate_increase,
            max_latency_ratio, min_latency_increase_seconds, max_score_js, max_score_psi, max_error_rate,
            max_p99_seconds, score_alpha); empty: the defaults.
        timeout_seconds: Readiness timeout of each change of the InferenceService.
        alert_webhook_url: URL that receives a JSON POST when a canary is promoted or rolled back (empty: no
            alert).
        vertex_project: Vertex AI target: the Google Cloud project of the Endpoint (required there; unused on
            Kubeflow).
        vertex_location: Vertex AI target: the Endpoint's region.
        vertex_endpoint: Vertex AI target: the Endpoint ID (empty: model_name); created when absent.
        payload_log: Vertex AI target: gs:// folder where the served versions log their payload records
            (required there: the rollout compares the versions' score distributions in it).
        machine_type: Vertex AI target: machine type of each replica.
        metrics_delay_seconds: Vertex AI target: how far each measured window lies in the past, for the
            minutes Cloud Monitoring takes to show a point.
    """
    parameters = dict(locals())  # every pipeline parameter by name (before any other local exists)
    train_and_push(
        platform,
        **{name: parameters[name] for name in TRAINING_PARAMETERS},
        after_push=lambda push_task: deliver_new_version(
            platform,
            push_task,
            enabled=deploy_new_version,
            analyse=analyse_canary,
            isvc_name=model_name,
            namespace=namespace,
            mode=mode,
            predictor_image=predictor_image,
            service_account=predictor_service_account,
            canary_percent=canary_percent,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            logger_url=logger_url,
            prometheus_url=prometheus_url,
            interval_seconds=interval_seconds,
            min_requests=min_requests,
            max_inconclusive=max_inconclusive,
            thresholds=rollout_thresholds,
            timeout_seconds=timeout_seconds,
            alert_webhook_url=alert_webhook_url,
            vertex={name: parameters[name] for name in ("vertex_project", "vertex_location", "vertex_endpoint")},
            vertex_deploy={name: parameters[name] for name in ("payload_log", "machine_type")},
            vertex_rollout={"metrics_delay_seconds": metrics_delay_seconds},
        ),
    )


def backend_parameters(platform: Platform, *settings: Dict[str, Any]) -> Dict[str, Any]:
    """The ``backend`` of deploy or rollout (the platform's traffic backend) and, for Vertex AI, its settings."""
    out: Dict[str, Any] = {"backend": platform.traffic_backend}
    if platform.traffic_backend == "vertex":
        for part in settings:
            out.update(part)
    return out


def deliver_new_version(
    platform: Platform,
    push_task: Task,
    *,
    enabled: Any,
    analyse: Any,
    isvc_name: Any,
    namespace: Any,
    prometheus_url: Any,
    interval_seconds: Any,
    min_requests: Any,
    max_inconclusive: Any,
    thresholds: Any,
    timeout_seconds: Any,
    alert_webhook_url: Any,
    vertex: Dict[str, Any],
    vertex_deploy: Dict[str, Any],
    vertex_rollout: Dict[str, Any],
    **deploy_parameters: Any,
) -> None:
    """Step 5, when enabled and push created a new version: deploy it, roll out its canary, alert on the decision.

    Args:
        platform: Adds the platform's settings to every task.
        push_task: The push task; its ``created`` output says whether the version is new, its
            ``pushed_model`` artifact is what deploy serves.
        enabled: The ``deploy_new_version`` pipeline parameter.
        analyse: The ``analyse_canary`` pipeline parameter.
        isvc_name: The InferenceService (the registry's model name).
        namespace: Its namespace.
        prometheus_url: Prometheus of the canary analysis.
        interval_seconds: Seconds of traffic per rollout step.
        min_requests: Canary requests a step needs.
        max_inconclusive: Inconclusive intervals before a rollback.
        thresholds: The analysis limits to override (``None``: the defaults).
        timeout_seconds: Readiness timeout of each change (deploy and rollout).
        alert_webhook_url: Where the decision is POSTed (empty: nowhere).
        vertex: The Endpoint (project, location, ID) of deploy and rollout on the Vertex AI backend.
        vertex_deploy: deploy's other Vertex AI settings (payload log, machine type).
        vertex_rollout: rollout's other Vertex AI settings (metrics delay).
        **deploy_parameters: deploy's predictor settings (mode, image, replicas, first canary share, ...).
    """
    with dsl.If(enabled == True, name="deploy-enabled"):  # noqa: E712
        with dsl.If(push_task.outputs["created"] == True, name="new-version"):  # noqa: E712
            deploy_task = deploy_version(
                platform,
                isvc_name=isvc_name,
                namespace=namespace,
                pushed_model=push_task.outputs["pushed_model"],
                timeout_seconds=timeout_seconds,
                **backend_parameters(platform, vertex, vertex_deploy),
                **deploy_parameters,
            )

            def alert_on_decision(rollout_task: Task) -> None:
                with dsl.If(alert_webhook_url != "", name="alert-configured"):
                    alert_task = drift_alert(
                        webhook_url=alert_webhook_url,
                        model_uri=push_task.outputs["model_uri"],
                        rollout_record=rollout_task.outputs["record_json"],
                        pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                    )
                    platform.configure_task(alert_task)

            # a group on a pipeline parameter around the canary's condition: kfp.local (2.17) resolves a
            # condition's channel only when it is the group's input, not a sibling task's named output
            with dsl.If(analyse == True, name="analyse-canary"):  # noqa: E712
                roll_out_canary(
                    platform,
                    deploy_task,
                    after_rollout=alert_on_decision,
                    isvc_name=isvc_name,
                    namespace=namespace,
                    model_uri=push_task.outputs["model_uri"],
                    prometheus_url=prometheus_url,
                    interval_seconds=interval_seconds,
                    min_requests=min_requests,
                    max_inconclusive=max_inconclusive,
                    thresholds=thresholds,
                    timeout_seconds=timeout_seconds,
                    **backend_parameters(platform, vertex, vertex_rollout),
                )
