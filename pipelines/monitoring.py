"""The monitoring pipeline: monitor (+ performance) → retrain_decision → continuous training (nested) + alert.

::

    monitor ──drift_detected─────────────────────────────┐
    retrain_on != drift: performance ──degraded──┐        ├→ retrain_decision ─retrain→ continuous training
    retrain_on == drift: performance_skipped ────┴OneOf──┘                      └→ alert (which check)

Platform-neutral like the training pipeline: :func:`build_monitoring_pipeline` binds
:func:`monitoring_pipeline` to a :class:`~kfpkit.pipelines.platforms.Platform` and to the
continuous-training pipeline built for the same platform, so its GPU settings apply inside the monitoring
run too.

``retrain_on`` chooses the checks that retrain: ``drift`` (the default, the monitor alone; the performance
check does not run, so a live window without scores or timestamps still works), ``performance`` (the
performance component's degraded cohorts: delayed labels on matured cohorts, estimates from the calibrated
scores before them; it sees concept drift, which leaves the inputs unchanged) or ``either``. The monitor
runs in every case and its report is kept; with ``performance``, drift alone does not retrain. The
performance check runs only when ``retrain_on`` lets it trigger (``performance_labels`` empty: estimates
only). retrain_decision (:mod:`kfpkit.components.retrain_decision`) combines the verdicts; its output, the
checks that triggered (empty: none), gates the retrain and goes into the alert. (kfp.local 2.17 cannot branch on a
``dsl.OneOf`` directly, hence one decision task after it; where the check does not run,
performance_skipped gives ``degraded`` false to the ``OneOf``.)

A retrain goes through the same steps as every continuous-training run: train, gate, push, and for a new
version deploy and the canary analysis, so it ends in a canary that is promoted or rolled back. With
``alert_webhook_url`` set, one alert says which check triggered the retrain (``kfpkit.drift_detected`` or
``kfpkit.performance_degraded``, with ``triggered_by``) and, once the canary is decided, a second says
whether it was promoted or rolled back. Schedule it (``kfpkit submit``, a recurring run) over a sliding
payload-log window, e.g. the last 24 hours for drift (``since``) and the last 60 days for performance
(``performance_since``).
"""

from typing import Any, Optional

from kfp import dsl

from kfpkit.components.drift_alert.component import drift_alert
from kfpkit.components.monitor.component import monitor
from kfpkit.components.performance.component import performance
from kfpkit.components.performance_skipped.component import performance_skipped
from kfpkit.components.retrain_decision.component import retrain_decision
from kfpkit.pipelines.platforms import LocalPlatform, Platform, platform_pipeline

PIPELINE_NAME = "kfpkit-monitoring"
DESCRIPTION = (
    "Compare a live window (payload log or table) with the model version's training baseline; "
    "optionally judge its accuracy from delayed labels; when drift or degraded performance is detected "
    "(retrain_on chooses), retrain through the continuous-training pipeline and optionally POST an alert."
)
# A task of the pipeline being built (kfp's PipelineTask); pipeline parameters are kfp PipelineChannels.
Task = Any
# The performance component's parameters that the pipeline takes as performance_<name>
PERFORMANCE_PARAMETERS = ("labels", "key_columns", "cohort", "maturity", "min_labelled_share", "as_of", "since")
# The continuous-training parameters that the pipeline passes down under their own names (and retrain_source)
RETRAIN_PARAMETERS = (
    "registry_root",
    "label_column",
    "model_name",
    "framework",
    "epochs",
    "min_pr_auc_lift",
    "min_pr_auc",
    "prometheus_url",
    "deploy_new_version",
    "namespace",
    "mode",
    "predictor_service_account",
    "canary_percent",
    "interval_seconds",
    "min_requests",
    "max_inconclusive",
    "rollout_thresholds",
    "alert_webhook_url",
    "vertex_project",
    "vertex_location",
    "vertex_endpoint",
    "payload_log",
)


def build_monitoring_pipeline(platform: Optional[Platform] = None) -> Any:
    """Returns the monitoring pipeline (a KFP ``GraphComponent``) configured for ``platform``."""
    from kfpkit.pipelines.continuous_training import build_continuous_training_pipeline

    platform = platform or LocalPlatform()
    training = build_continuous_training_pipeline(platform)
    return platform_pipeline(monitoring_pipeline, platform, training, name=PIPELINE_NAME, description=DESCRIPTION)


def monitoring_pipeline(
    platform: Platform,
    training: Any,
    model_uri: str,
    live_source: str,
    registry_root: str,
    retrain_source: str,
    label_column: str,
    model_name: str,
    prometheus_url: str,
    since: str = "",
    until: str = "",
    alpha: float = 1e-06,
    score_drift_triggers: bool = True,
    retrain_on: str = "drift",
    performance_labels: list = [],  # noqa: B006  (KFP reads it as the LIST default []; kfp.local needs a default)
    performance_key_columns: list = [],  # noqa: B006  (as performance_labels)
    performance_cohort: str = "1d",
    performance_maturity: str = "30d",
    performance_min_labelled_share: float = 0.0,
    performance_as_of: str = "",
    performance_since: str = "",
    alert_webhook_url: str = "",
    framework: str = "pytorch",
    epochs: int = 0,
    min_pr_auc_lift: float = 5.0,
    min_pr_auc: float = 0.0,
    deploy_new_version: bool = True,
    namespace: str = "kfpkit",
    mode: str = "Serverless",
    predictor_service_account: str = "",
    canary_percent: int = 10,
    interval_seconds: float = 60.0,
    min_requests: int = 50,
    max_inconclusive: int = 3,
    rollout_thresholds: dict = {},  # noqa: B006  (KFP reads it as the STRUCT default {}; kfp.local needs a default)
    vertex_project: str = "",
    vertex_location: str = "us-central1",
    vertex_endpoint: str = "",
    payload_log: str = "",
) -> None:
    """Monitors one model version's drift (and accuracy) and retrains on drift or degradation (retrain_on).

    Args:
        platform: The target platform's task settings (bound by :func:`build_monitoring_pipeline`; not a
            pipeline parameter).
        training: The continuous-training pipeline built for ``platform`` (bound likewise; not a pipeline
            parameter).
        model_uri: Monitored model version (<registry_root>/<model_name>/<version>).
        live_source: Live window: payload-log URI or a CSV/Parquet/JSON Lines table of raw feature rows.
        registry_root: Registry root the retrained model is pushed to.
        retrain_source: Data source the training pipeline retrains on.
        label_column: Binary label column of the retraining data (and of the performance label tables).
        model_name: Model name in the registry for the retrained model, and its InferenceService.
        prometheus_url: Prometheus that scrapes the predictors (the retrained canary's analysis reads it).
        since: Start of the payload-log time range (ISO-8601; empty: no bound).
        until: End of the payload-log time range (ISO-8601, exclusive; empty: no bound).
        alpha: False-alarm probability per metric and feature of the monitor's noise floors.
        score_drift_triggers: Whether score drift alone triggers retraining.
        retrain_on: Which check retrains: drift, performance or either (drift: the performance check does
            not run).
        performance_labels: Delayed label tables of the performance check (empty: estimates only).
        performance_key_columns: Key of the live rows and label tables (empty: request_id, instance).
        performance_cohort: Cohort length of the performance check (e.g. 1d, 12h).
        performance_maturity: Label delay that matures a cohort (e.g. 30d; empty: no delay rule).
        performance_min_labelled_share: Labelled share that matures a cohort (0: no share rule).
        performance_as_of: The moment the performance check looks from (ISO-8601; empty: now).
        performance_since: Rows scored before it are not judged (ISO-8601; empty: no bound).
        alert_webhook_url: URL that receives a JSON POST when a check triggers a retrain (which one), and
            another when the retrained canary is promoted or rolled back (empty: no alert).
        framework: 'pytorch' or 'sklearn' for the retrained model.
        epochs: Maximum training epochs of the retrained model (PyTorch); 0: chosen from the training rows.
        min_pr_auc_lift: Blessing floor of the retrained model, as a multiple of the test split's positive
            rate (see the training pipeline).
        min_pr_auc: Absolute PR-AUC floor of the retrained model on top of the relative one (0: none).
        deploy_new_version: Deploy a retrained new version and roll out its canary (false: stop after push,
            e.g. where no cluster is reachable, as in the local demo).
        namespace: Namespace of the InferenceService.
        mode: Serverless or Standard (RawDeployment) for a new InferenceService.
        predictor_service_account: Service account of the predictor pods, with read access to the registry
            (empty: the namespace default).
        canary_percent: First traffic share of the retrained version.
        interval_seconds: Seconds of traffic analysed per rollout step.
        min_requests: Canary requests a rollout step needs to be judged.
        max_inconclusive: Inconclusive intervals before a rollback.
        rollout_thresholds: Overrides of the canary analysis limits by name (see the continuous-training
            pipeline); empty: the defaults.
        vertex_project: Vertex AI target: the Google Cloud project of the Endpoint (required there).
        vertex_location: Vertex AI target: the region of the Endpoint.
        vertex_endpoint: Vertex AI target: the Endpoint ID (empty: model_name).
        payload_log: Vertex AI target: gs:// payload log of the served versions (required there).
    """
    parameters = dict(locals())  # every pipeline parameter by name (before any other local exists)
    monitor_task = detect_drift(
        platform,
        model_uri=model_uri,
        live_source=live_source,
        since=since,
        until=until,
        alpha=alpha,
        score_drift_triggers=score_drift_triggers,
    )
    degraded = check_performance(
        platform,
        retrain_on,
        model_uri=model_uri,
        live_source=live_source,
        label_column=label_column,
        **{name: parameters[f"performance_{name}"] for name in PERFORMANCE_PARAMETERS},
    )
    decision = retrain_decision(
        drift_detected=monitor_task.outputs["Output"], degraded=degraded, retrain_on=retrain_on
    ).set_display_name("retrain-decision")
    platform.configure_task(decision)
    with dsl.If(decision.output != "", name="retrain-triggered"):
        retrain(
            training,
            source=retrain_source,
            **{name: parameters[name] for name in RETRAIN_PARAMETERS},
        )
        alert_when_configured(platform, monitor_task, decision, alert_webhook_url, model_uri)


def detect_drift(platform: Platform, **parameters: Any) -> Task:
    """Step 1: compare the live window with the model version's baseline; ``Output`` is drift_detected.

    Args:
        platform: Adds the platform's settings to the task.
        **parameters: monitor's ``model_uri``, ``live_source``, time range and noise-floor parameters.
    """
    monitor_task = monitor(**parameters)
    platform.configure_task(monitor_task)
    return monitor_task


def check_performance(platform: Platform, retrain_on: Any, **parameters: Any) -> Any:
    """Step 2: the performance check where ``retrain_on`` lets it retrain; its ``degraded`` (false otherwise).

    Args:
        platform: Adds the platform's settings to the tasks.
        retrain_on: The ``retrain_on`` pipeline parameter.
        **parameters: The performance component's parameters.

    Returns:
        A ``dsl.OneOf`` of the performance task's ``degraded`` and performance_skipped's false.
    """
    with dsl.If(retrain_on != "drift", name="check-performance"):
        checked = performance(**parameters)
        platform.configure_task(checked)
    with dsl.Else(name="drift-only"):
        skipped = performance_skipped(retrain_on=retrain_on)
        platform.configure_task(skipped)
    return dsl.OneOf(checked.outputs["Output"], skipped.output)


def retrain(training: Any, **parameters: Any) -> Task:
    """Step 3 (when retrain_decision says so): the continuous-training pipeline as a nested task, shown as ``retrain``.

    Args:
        training: The continuous-training pipeline (its tasks carry the platform's settings already).
        **parameters: The continuous-training pipeline's parameters.
    """
    return training(**parameters).set_display_name("retrain")


def alert_when_configured(
    platform: Platform, monitor_task: Task, decision: Task, webhook_url: Any, model_uri: Any
) -> None:
    """Step 4 (with the retrain): POST which check triggered it, and the drift, to ``webhook_url`` unless empty."""
    with dsl.If(webhook_url != "", name="alert-configured"):
        alert_task = drift_alert(
            webhook_url=webhook_url,
            model_uri=model_uri,
            drift=monitor_task.outputs["drift"],
            report=monitor_task.outputs["report"],
            pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            triggered_by=decision.output,
        )
        platform.configure_task(alert_task)
