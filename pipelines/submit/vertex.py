"""Vertex AI Pipelines: a ``PipelineJob`` from the single-document Vertex compile, or a ``Schedule`` of it.

The requests go through aiplatform's ``aiplatform_v1`` clients; a schedule is a PipelineJobSchedule (5-field
cron, optional ``TZ=Area/City`` prefix, one run at a time). ``api_endpoint`` replaces the regional endpoint
``<location>-aiplatform.googleapis.com`` (e.g. a Private Service Connect address; an ``http(s)://`` URL
selects the REST transport). Credentials: Application Default Credentials unless given.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, Optional, Tuple

from kfpkit.pipelines.parameters import ParameterError, parse_assignments
from kfpkit.pipelines.submit.cron import check_vertex_cron
from kfpkit.pipelines.submit.errors import SubmitError
from kfpkit.pipelines.submit.follow import follow
from kfpkit.pipelines.submit.prepare import Prepared
from kfpkit.pipelines.submit.submission import Submission, default_run_name

DEFAULT_VERTEX_LOCATION = "us-central1"
# States after which a PipelineJob does not change any more (Vertex PipelineState).
VERTEX_FINAL_STATES = (
    "PIPELINE_STATE_SUCCEEDED",
    "PIPELINE_STATE_FAILED",
    "PIPELINE_STATE_CANCELLED",
)
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def parse_labels(text: Optional[str]) -> Dict[str, str]:
    """``"team=fraud,env=prod"`` -> a dict, checked against Vertex AI's label rules.

    Raises:
        SubmitError: an item without ``=``, a repeated key, or a key or value Vertex AI refuses.
    """
    if not text:
        return {}
    try:
        labels = parse_assignments([part for part in text.split(",") if part.strip()], flag="--labels")
    except ParameterError as exc:
        raise SubmitError(str(exc)) from None
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise SubmitError(
                f"--labels: key {key!r} must start with a lowercase letter and hold at most 63 lowercase "
                "letters, digits, '_' or '-'"
            )
        if not _LABEL_VALUE.match(value):
            raise SubmitError(
                f"--labels: value {value!r} of {key} may hold at most 63 lowercase letters, digits, '_' or '-'"
            )
    return labels


def check_vertex_target(project: Optional[str], pipeline_root: Optional[str]) -> None:
    """Vertex AI needs a project and a ``gs://`` pipeline root."""
    if not project:
        raise SubmitError("--project is required for the vertex target")
    if not (pipeline_root or "").startswith("gs://"):
        raise SubmitError(f"--pipeline-root {pipeline_root!r}: Vertex AI needs a gs:// pipeline root")


def vertex_clients(location: str = DEFAULT_VERTEX_LOCATION, api_endpoint: Optional[str] = None, credentials=None):
    """The aiplatform_v1 ``(PipelineServiceClient, ScheduleServiceClient)`` of ``location``.

    ``api_endpoint`` defaults to ``<location>-aiplatform.googleapis.com`` (gRPC); an ``http(s)://`` URL
    selects the REST transport. ``credentials`` default to Application Default Credentials.
    """
    from google.cloud import aiplatform_v1

    endpoint = api_endpoint or f"{location}-aiplatform.googleapis.com"
    transport = "rest" if endpoint.startswith(("http://", "https://")) else None
    options = {"api_endpoint": endpoint}
    return (
        aiplatform_v1.PipelineServiceClient(credentials=credentials, client_options=options, transport=transport),
        aiplatform_v1.ScheduleServiceClient(credentials=credentials, client_options=options, transport=transport),
    )


def vertex_pipeline_job(
    prepared: Prepared,
    *,
    pipeline_root: str,
    labels: Optional[Mapping[str, str]] = None,
    run_name: Optional[str] = None,
    service_account: Optional[str] = None,
):
    """The ``aiplatform_v1.PipelineJob`` of ``prepared``: its spec, parameter values and output root.

    kfpkit builds the request itself rather than through ``aiplatform.PipelineJob.submit``, which would
    also look up (and possibly create, and grant IAM on) the pipeline-root bucket: kfpkit asks for an
    explicit ``gs://`` root and leaves buckets alone.
    """
    from google.cloud import aiplatform_v1

    return aiplatform_v1.PipelineJob(
        display_name=run_name or default_run_name(prepared.pipeline),
        pipeline_spec=prepared.pipeline_spec,
        runtime_config=aiplatform_v1.PipelineJob.RuntimeConfig(
            gcs_output_directory=pipeline_root, parameter_values=prepared.parameter_values
        ),
        labels=dict(labels or {}),
        service_account=service_account or "",
    )


def _vertex_job_id(prepared: Prepared) -> str:
    slug = re.sub(r"[^-0-9a-z]+", "-", prepared.pipeline_name.lower()).strip("-")
    return f"{slug}-{datetime.now(timezone.utc).strftime('%Y%m%d%H%M%S')}"


def _vertex_console(kind: str, resource_name: str) -> str:
    parts = resource_name.split("/")  # projects/P/locations/L/<pipelineJobs|schedules>/ID
    project, location, identifier = parts[1], parts[3], parts[5]
    path = "runs" if kind == "run" else "schedules"
    return f"https://console.cloud.google.com/vertex-ai/locations/{location}/pipelines/{path}/{identifier}?project={project}"


def submit_vertex(
    prepared: Prepared,
    *,
    project: str,
    location: str = DEFAULT_VERTEX_LOCATION,
    pipeline_root: str,
    service_account: Optional[str] = None,
    labels: Optional[Mapping[str, str]] = None,
    run_name: Optional[str] = None,
    schedule: Optional[str] = None,
    api_endpoint: Optional[str] = None,
    credentials=None,
) -> Tuple[Submission, Any]:
    """Creates a PipelineJob, or with ``schedule`` a Schedule of it; returns (it, the PipelineServiceClient)."""
    from google.cloud import aiplatform_v1

    prepared.check_target("vertex")
    check_vertex_target(project, pipeline_root)
    if schedule:
        schedule = check_vertex_cron(schedule)
    job = vertex_pipeline_job(
        prepared, pipeline_root=pipeline_root, labels=labels, run_name=run_name, service_account=service_account
    )
    pipelines, schedules = vertex_clients(location, api_endpoint, credentials)
    parent = f"projects/{project}/locations/{location}"
    details = {"project": project, "location": location, "pipeline root": pipeline_root}
    if schedule:
        created = schedules.create_schedule(
            parent=parent,
            schedule=aiplatform_v1.Schedule(
                display_name=job.display_name,
                cron=schedule,
                max_concurrent_run_count=1,
                create_pipeline_job_request=aiplatform_v1.CreatePipelineJobRequest(parent=parent, pipeline_job=job),
            ),
        )
        details["cron"] = schedule
        kind = "schedule"
    else:
        created = pipelines.create_pipeline_job(
            parent=parent, pipeline_job=job, pipeline_job_id=_vertex_job_id(prepared)
        )
        kind = "run"
    details["resource"] = created.name
    identifier = created.name.rsplit("/", 1)[-1]
    url = _vertex_console(kind, created.name)
    return Submission("vertex", kind, identifier, url, job.display_name, details), pipelines


def follow_vertex_job(pipelines, name: str, **kwargs: Any) -> Tuple[str, Optional[str]]:
    """:func:`follow` for a Vertex PipelineJob (resource ``name``): its state and task details."""

    def fetch() -> Tuple[str, Dict[str, str], Optional[str]]:
        job = pipelines.get_pipeline_job(name=name)
        root = job.pipeline_spec.get("pipelineInfo", {}).get("name", "")
        tasks = {
            t.task_name: t.state.name
            for t in job.job_detail.task_details
            if t.task_name and t.task_name != root and not t.task_name.startswith(("condition-", "exit-handler-"))
        }
        return job.state.name, tasks, job.error.message or None

    return follow(fetch, VERTEX_FINAL_STATES, **kwargs)
