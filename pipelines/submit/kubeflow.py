"""Kubeflow Pipelines: upload a compiled package once per distinct content, then a run or a recurring run.

The pipeline ``<pipelineInfo.name>`` is created on first use; its versions are named
``<kfpkit version>-<sha256[:12] of the package>`` and reused when they exist. A run (or, with a schedule, a
recurring run: KFP's 6-field cron, seconds first, no catch-up, one run at a time) is created from that
version in the experiment (created when missing).

Auth is kfp.Client's: with ``host``, the bearer token ``existing_token`` or the token of kubeconfig context
``kube_context``; without ``host``, the in-cluster service-account token or the kube API server proxy of the
current (or ``kube_context``) kubeconfig context.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from typing import Any, Dict, Iterator, Optional, Tuple

from kfpkit.components import __version__
from kfpkit.pipelines.submit.cron import check_kubeflow_cron
from kfpkit.pipelines.submit.errors import SubmitError
from kfpkit.pipelines.submit.follow import follow
from kfpkit.pipelines.submit.prepare import Prepared
from kfpkit.pipelines.submit.submission import Submission, default_run_name

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "kfpkit"
# States after which a run does not change any more (KFP V2beta1RuntimeState).
KUBEFLOW_FINAL_STATES = ("SUCCEEDED", "SKIPPED", "FAILED", "CANCELED")


@contextlib.contextmanager
def _quiet_client_output() -> Iterator[None]:
    """kfp.Client prints its own "... details: URL" lines; kfpkit prints one summary, so log theirs."""
    captured = io.StringIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"kfp\.client")
        with contextlib.redirect_stdout(captured):
            yield
    for line in captured.getvalue().splitlines():
        log.info("kfp.Client: %s", line)


def kube_context_token(context: Optional[str] = None) -> str:
    """The bearer token of kubeconfig context ``context`` (default: the current one).

    The kubeconfig is kubectl's: ``$KUBECONFIG`` (read now, a ``:``-separated list is merged) or
    ``~/.kube/config``.

    Raises:
        SubmitError: no kubeconfig, no such context, or a context without a token.
    """
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG") or None, context=context, client_configuration=configuration
        )
    except Exception as exc:  # kubernetes raises ConfigException, FileNotFoundError, ...
        raise SubmitError(f"cannot read kubeconfig context {context or '(current)'}: {exc}") from None
    token = configuration.api_key.get("authorization", "")
    if not token:
        raise SubmitError(f"kubeconfig context {context or '(current)'} has no bearer token; pass --existing-token")
    return token[len("Bearer ") :] if token.startswith("Bearer ") else token


def kubeflow_client(
    host: Optional[str] = None,
    *,
    existing_token: Optional[str] = None,
    kube_context: Optional[str] = None,
    namespace: Optional[str] = None,
    ui_host: Optional[str] = None,
):
    """A ``kfp.Client`` with kfpkit submit's auth rules (see the module docstring)."""
    import kfp

    if host and not existing_token and kube_context:
        existing_token = kube_context_token(kube_context)
    with _quiet_client_output():
        return kfp.Client(
            host=host,
            existing_token=existing_token,
            kube_context=None if host else kube_context,
            namespace=namespace or "kubeflow",
            ui_host=ui_host,
        )


def _equals_filter(display_name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": display_name}]})


def upload_kubeflow_pipeline(client, prepared: Prepared, namespace: Optional[str] = None) -> Tuple[str, str, str]:
    """Uploads the package once per distinct content; returns (pipeline ID, version ID, version name).

    The pipeline ``prepared.pipeline_name`` is created on first use; its versions are named
    ``<kfpkit version>-<sha256[:12]>``, so resubmitting an unchanged pipeline reuses its version.
    """
    name = prepared.pipeline_name
    version_name = f"{__version__}-{prepared.digest[:12]}"
    with _quiet_client_output():
        found = client.list_pipelines(filter=_equals_filter(name), namespace=namespace, page_size=2).pipelines or []
        if found:
            pipeline_id = found[0].pipeline_id
        else:
            from kfp_server_api import V2beta1Pipeline

            description = prepared.pipeline_spec["pipelineInfo"].get("description", "")
            created = client.pipelines.pipeline_service_create_pipeline(
                pipeline=V2beta1Pipeline(display_name=name, description=description, namespace=namespace)
            )
            pipeline_id = created.pipeline_id
        versions = client.list_pipeline_versions(pipeline_id, filter=_equals_filter(version_name), page_size=2)
        if versions.pipeline_versions:
            return pipeline_id, versions.pipeline_versions[0].pipeline_version_id, version_name
        version = client.upload_pipeline_version(
            prepared.package_path,
            pipeline_version_name=version_name,
            pipeline_id=pipeline_id,
            description=f"kfpkit {__version__}, {prepared.pipeline} compiled for Kubeflow, sha256 {prepared.digest}",
        )
    return pipeline_id, version.pipeline_version_id, version_name


def submit_kubeflow(
    prepared: Prepared,
    *,
    host: Optional[str] = None,
    existing_token: Optional[str] = None,
    kube_context: Optional[str] = None,
    namespace: Optional[str] = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: Optional[str] = None,
    schedule: Optional[str] = None,
    service_account: Optional[str] = None,
    ui_host: Optional[str] = None,
    client=None,
) -> Tuple[Submission, Any]:
    """Uploads ``prepared`` and creates a run, or with ``schedule`` a recurring run; returns (it, client)."""
    prepared.check_target("kubeflow")
    if schedule:
        schedule = check_kubeflow_cron(schedule)
    client = client or kubeflow_client(
        host, existing_token=existing_token, kube_context=kube_context, namespace=namespace, ui_host=ui_host
    )
    pipeline_id, version_id, version_name = upload_kubeflow_pipeline(client, prepared, namespace)
    run_name = run_name or default_run_name(prepared.pipeline)
    with _quiet_client_output():
        experiment_id = client.create_experiment(name=experiment, namespace=namespace).experiment_id
        common = dict(
            experiment_id=experiment_id,
            job_name=run_name,
            params=prepared.parameter_values,
            pipeline_id=pipeline_id,
            version_id=version_id,
            service_account=service_account,
        )
        if schedule:
            created = client.create_recurring_run(
                cron_expression=schedule, max_concurrency=1, no_catchup=True, enabled=True, **common
            )
            kind, identifier, route = "schedule", created.recurring_run_id, "recurringrun"
        else:
            created = client.run_pipeline(**common)
            kind, identifier, route = "run", created.run_id, "runs"
    ui = (ui_host or host or "").rstrip("/")
    details = {"pipeline": f"{prepared.pipeline_name} ({pipeline_id})", "version": f"{version_name} ({version_id})"}
    details["experiment"] = f"{experiment} ({experiment_id})"
    if schedule:
        details["cron"] = schedule
    url = f"{ui}/#/{route}/details/{identifier}" if ui else None
    return Submission("kubeflow", kind, identifier, url, run_name, details), client


def follow_kubeflow_run(client, run_id: str, **kwargs: Any) -> Tuple[str, Optional[str]]:
    """:func:`follow` for a KFP run: ``client.get_run`` with its task details."""

    def fetch() -> Tuple[str, Dict[str, str], Optional[str]]:
        run = client.get_run(run_id)
        tasks = {}
        for task in (run.run_details.task_details if run.run_details else None) or []:
            if task.display_name and not task.display_name.startswith(("root", "condition-", "exit-handler-")):
                tasks[task.display_name] = str(task.state or "PENDING")
        error = run.error.message if run.error and run.error.message else None
        return str(run.state or "PENDING"), tasks, error

    return follow(fetch, KUBEFLOW_FINAL_STATES, **kwargs)
