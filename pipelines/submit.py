"""``kfpkit submit``: compile a pipeline and run or schedule it on Kubeflow Pipelines or Vertex AI.

    kfpkit submit PIPELINE --target kubeflow [--host URL] [--existing-token T | --kube-context C]
                  [--namespace NS] [--experiment NAME] [--param k=v ...] [--run-name NAME]
                  [--enable-caching | --no-caching] [--service-account SA]
                  [--schedule 'SEC MIN HOUR DOM MON DOW'] [--wait]
    kfpkit submit PIPELINE --target vertex --project P [--location us-central1] --pipeline-root gs://...
                  [--service-account SA] [--param k=v ...] [--labels k=v,...] [--run-name NAME]
                  [--enable-caching | --no-caching] [--schedule 'MIN HOUR DOM MON DOW'] [--wait]

Every check that needs no service runs first: the pipeline name, the cron expression, the labels, and
each ``--param`` against the compiled pipeline spec (``root.inputDefinitions.parameters``: unknown name,
wrong type, a required parameter such as ``registry_root`` left out). Only then is anything sent.

**Kubeflow.** The compiled package is uploaded once per distinct content: pipeline ``<pipelineInfo.name>``
(created on first use), version ``<kfpkit version>-<sha256[:12] of the package>`` (reused when it exists).
A run (or, with ``--schedule``, a recurring run: KFP's 6-field cron, seconds first, no catch-up, one run
at a time) is created from that version in the experiment (created when missing). Auth is kfp.Client's:
with ``--host``, the bearer token ``--existing-token`` or the token of kubeconfig context
``--kube-context``; without ``--host``, the in-cluster service-account token or the kube API server proxy
of the current (or ``--kube-context``) kubeconfig context.

**Vertex AI.** A ``PipelineJob`` from the single-document Vertex compile, through aiplatform's
``aiplatform_v1`` clients; ``--schedule`` creates a ``Schedule`` of it (a PipelineJobSchedule: 5-field
cron, optional ``TZ=Area/City`` prefix) instead of a run. ``--api-endpoint`` replaces the regional
endpoint ``<location>-aiplatform.googleapis.com`` (e.g. a Private Service Connect address; an
``http(s)://`` URL selects the REST transport). Credentials: Application Default Credentials.

Both print the run (or schedule) ID and URL; ``--wait`` follows a run to its end with one progress line
per change of the run's or a task's state. Exit status: 0 submitted (or, with ``--wait``, succeeded), 1 the
run did not succeed or the service refused the request, 2 bad input (nothing was sent).

Only the argument checks live at module level; kfp, kfp.Client and aiplatform are imported inside the
functions that use them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from kfpkit.components import __version__
from kfpkit.pipelines import registry
from kfpkit.pipelines.platforms import TARGETS

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "kfpkit"
DEFAULT_VERTEX_LOCATION = "us-central1"
# States after which a run does not change any more (KFP V2beta1RuntimeState, Vertex PipelineState).
KUBEFLOW_FINAL_STATES = ("SUCCEEDED", "SKIPPED", "FAILED", "CANCELED")
VERTEX_FINAL_STATES = (
    "PIPELINE_STATE_SUCCEEDED",
    "PIPELINE_STATE_FAILED",
    "PIPELINE_STATE_CANCELLED",
)
SUCCEEDED_STATES = ("SUCCEEDED", "PIPELINE_STATE_SUCCEEDED")


class SubmitError(ValueError):
    """Bad input to ``kfpkit submit``, found before anything was sent."""


# ---------------------------------------------------------------------------------------------------
# Argument checks (no kfp, no network)
# ---------------------------------------------------------------------------------------------------


def check_pipeline(name: str) -> None:
    """Raises SubmitError unless ``name`` is in :func:`kfpkit.pipelines.registry.pipeline_names`."""
    if name not in registry.pipeline_names():
        raise SubmitError(f"unknown pipeline {name!r}; expected one of {', '.join(registry.pipeline_names())}")


def parse_assignments(items: Sequence[str], flag: str = "--param") -> Dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; a missing ``=`` or a repeated name is an error."""
    values: Dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SubmitError(f"{flag} {item!r}: expected NAME=VALUE")
        if name in values:
            raise SubmitError(f"{flag} {name} given twice")
        values[name] = value
    return values


_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def parse_labels(text: Optional[str]) -> Dict[str, str]:
    """``"team=fraud,env=prod"`` -> a dict, checked against Vertex AI's label rules."""
    if not text:
        return {}
    labels = parse_assignments([part for part in text.split(",") if part.strip()], flag="--labels")
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


_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
# field name, lowest, highest, names, whether '?' is allowed
_KFP_FIELDS = (
    ("seconds", 0, 59, {}, False),
    ("minutes", 0, 59, {}, False),
    ("hours", 0, 23, {}, False),
    ("day of month", 1, 31, {}, True),
    ("month", 1, 12, _MONTHS, False),
    ("day of week", 0, 6, _DAYS, True),
)
_VERTEX_FIELDS = (
    ("minute", 0, 59, {}, False),
    ("hour", 0, 23, {}, False),
    ("day of month", 1, 31, {}, False),
    ("month", 1, 12, _MONTHS, False),
    ("day of week", 0, 7, _DAYS, False),
)
_KFP_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _check_cron_field(text: str, spec: tuple) -> Optional[str]:
    """Returns why ``text`` is not a valid cron field of ``spec``, or None."""
    name, low, high, names, question = spec
    if text == "?" and question:
        return None

    def number(token: str) -> Optional[int]:
        if token.upper() in names:
            return names[token.upper()]
        return int(token) if token.isdigit() else None

    for part in text.split(","):
        base, slash, step = part.partition("/")
        if slash and not (step.isdigit() and int(step) > 0):
            return f"{name} step {step!r} is not a positive number"
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        start, end = number(first), number(last) if dash else number(first)
        if start is None or end is None:
            return f"{name} {part!r} is not a number, range, list or step"
        if not (low <= start <= high and low <= end <= high):
            return f"{name} {part!r} is outside {low}-{high}"
        if start > end:
            return f"{name} range {base!r} runs backwards"
    return None


def _check_cron(expression: str, fields: List[str], specs: tuple, layout: str, hint: str) -> str:
    """Checks ``fields`` against ``specs``; ``layout`` names the dialect, ``hint`` follows a count error."""
    if len(fields) != len(specs):
        raise SubmitError(f"--schedule {expression!r}: {layout}; {hint}")
    for text, spec in zip(fields, specs, strict=True):
        problem = _check_cron_field(text, spec)
        if problem:
            raise SubmitError(f"--schedule {expression!r}: {problem}; {layout}")
    return expression


def check_kubeflow_cron(expression: str) -> str:
    """Checks a KFP recurring-run cron: 6 fields, **seconds first** (``"0 0 3 * * *"`` = 03:00 daily).

    KFP's scheduler (robfig/cron) also takes the descriptors @hourly, @daily, ... and ``@every 1h30m``.

    Returns:
        The expression, stripped.

    Raises:
        SubmitError: naming the field at fault; a 5-field (Unix) cron gets the 6-field spelling offered.
    """
    expression = expression.strip()
    if expression in _KFP_DESCRIPTORS or re.fullmatch(r"@every (\d+(ns|us|µs|ms|s|m|h))+", expression):
        return expression
    fields = expression.split()
    hint = f"did you mean '0 {expression}'?" if len(fields) == 5 else f"e.g. '0 0 3 * * *'; got {len(fields)} fields"
    return _check_cron(
        expression, fields, _KFP_FIELDS, "KFP cron has 6 fields with seconds first (SEC MIN HOUR DOM MON DOW)", hint
    )


def check_vertex_cron(expression: str) -> str:
    """Checks a Vertex AI schedule cron: 5 Unix fields, optionally prefixed by ``TZ=`` or ``CRON_TZ=``.

    Raises:
        SubmitError: naming the field at fault or the unknown time zone.
    """
    expression = expression.strip()
    body = expression
    match = re.match(r"^(CRON_TZ|TZ)=(\S+)\s+(.*)$", expression)
    if match:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(match.group(2))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SubmitError(f"--schedule {expression!r}: unknown time zone {match.group(2)!r}") from None
        body = match.group(3)
    fields = body.split()
    hint = (
        f"did you mean {' '.join(fields[1:])!r}?" if len(fields) == 6 else f"e.g. '0 3 * * *'; got {len(fields)} fields"
    )
    return _check_cron(
        expression, fields, _VERTEX_FIELDS, "Vertex AI cron has 5 fields (MIN HOUR DOM MON DOW), no seconds", hint
    )


@dataclass(frozen=True)
class Parameter:
    """One pipeline input parameter, as the compiled spec declares it."""

    name: str
    type: str  # STRING, NUMBER_INTEGER, NUMBER_DOUBLE, BOOLEAN, LIST, STRUCT
    required: bool
    default: Any = None
    description: str = ""


def spec_parameters(pipeline_spec: Mapping[str, Any]) -> Dict[str, Parameter]:
    """The ``root.inputDefinitions.parameters`` of a compiled pipeline spec, by name."""
    declared = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    parameters = {}
    for name, spec in declared.items():
        parameters[name] = Parameter(
            name=name,
            type=spec.get("parameterType", "STRING"),
            required=not spec.get("isOptional", False) and "defaultValue" not in spec,
            default=spec.get("defaultValue"),
            description=spec.get("description", ""),
        )
    return parameters


def _coerce(parameter: Parameter, value: Any) -> Any:
    kind = parameter.type
    where = f"parameter {parameter.name} ({kind})"
    if isinstance(value, str) and kind != "STRING":
        text = value.strip()
        if kind == "NUMBER_INTEGER":
            if not re.fullmatch(r"[-+]?\d+", text):
                raise SubmitError(f"{where}: {value!r} is not an integer")
            return int(text)
        if kind == "NUMBER_DOUBLE":
            try:
                number = float(text)
            except ValueError:
                raise SubmitError(f"{where}: {value!r} is not a number") from None
            if not math.isfinite(number):
                raise SubmitError(f"{where}: {value!r} is not a finite number")
            return number
        if kind == "BOOLEAN":
            if text.lower() not in ("true", "false"):
                raise SubmitError(f"{where}: {value!r} is not true or false")
            return text.lower() == "true"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SubmitError(f"{where}: {value!r} is not JSON ({exc.msg})") from None
    expected = {
        "STRING": (str,),
        "NUMBER_INTEGER": (int,),
        "NUMBER_DOUBLE": (int, float),
        "BOOLEAN": (bool,),
        "LIST": (list,),
        "STRUCT": (dict,),
    }.get(kind)
    if expected is None:
        raise SubmitError(f"{where}: kfpkit submit cannot set parameters of type {kind}")
    if (isinstance(value, bool) and kind != "BOOLEAN") or not isinstance(value, expected):
        raise SubmitError(f"{where}: {value!r} is a {type(value).__name__}")
    return float(value) if kind == "NUMBER_DOUBLE" else value


def check_parameters(parameters: Mapping[str, Parameter], values: Mapping[str, Any], pipeline: str) -> Dict[str, Any]:
    """Coerces ``values`` (strings from ``--param`` or typed Python values) to the declared types.

    Raises:
        SubmitError: an unknown parameter, a value of the wrong type, or a required parameter missing.
    """
    unknown = sorted(set(values) - set(parameters))
    if unknown:
        raise SubmitError(
            f"pipeline {pipeline} has no parameter {', '.join(unknown)}; "
            f"its parameters: {', '.join(sorted(parameters))}"
        )
    missing = sorted(name for name, p in parameters.items() if p.required and name not in values)
    if missing:
        hint = " ".join(f"--param {name}=..." for name in missing)
        raise SubmitError(f"pipeline {pipeline} needs {', '.join(missing)} ({hint})")
    return {name: _coerce(parameters[name], value) for name, value in values.items()}


def check_registry_root(target: str, values: Mapping[str, Any]) -> None:
    """On a cluster the model registry must be an object store: a local path would vanish with the pod."""
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


def check_vertex_target(project: Optional[str], pipeline_root: Optional[str]) -> None:
    """Vertex AI needs a project and a ``gs://`` pipeline root."""
    if not project:
        raise SubmitError("--project is required for the vertex target")
    if not (pipeline_root or "").startswith("gs://"):
        raise SubmitError(f"--pipeline-root {pipeline_root!r}: Vertex AI needs a gs:// pipeline root")


def set_caching(pipeline_spec: Dict[str, Any], enabled: bool) -> int:
    """Sets ``cachingOptions.enableCache`` on every task of every DAG; returns how many tasks."""
    dags = [pipeline_spec.get("root", {}), *pipeline_spec.get("components", {}).values()]
    changed = 0
    for component in dags:
        for task in component.get("dag", {}).get("tasks", {}).values():
            task.setdefault("cachingOptions", {})["enableCache"] = enabled
            changed += 1
    return changed


# ---------------------------------------------------------------------------------------------------
# Compile
# ---------------------------------------------------------------------------------------------------


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
        with open(self.package_path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()


def prepare(
    pipeline: str,
    target: str,
    out_dir: str,
    params: Optional[Mapping[str, Any]] = None,
    *,
    enable_caching: Optional[bool] = None,
    image_registry: Optional[str] = None,
    accelerator_type: Optional[str] = None,
) -> Prepared:
    """Compiles ``pipeline`` for ``target`` into ``out_dir`` and checks ``params`` against its spec.

    Raises:
        SubmitError: unknown pipeline or target, or a parameter problem (see :func:`check_parameters`).
    """
    from kfpkit.pipelines.targets import compile_pipeline

    check_pipeline(pipeline)
    if target not in TARGETS:
        raise SubmitError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    try:
        path = compile_pipeline(
            pipeline, target, out_dir, image_registry=image_registry, accelerator_type=accelerator_type
        )
    except ValueError as exc:
        raise SubmitError(str(exc)) from None
    with open(path, encoding="utf-8") as fh:
        documents = [d for d in yaml.safe_load_all(fh) if d is not None]
    values = check_parameters(spec_parameters(documents[0]), dict(params or {}), pipeline)
    check_registry_root(target, values)
    if enable_caching is not None:
        set_caching(documents[0], enable_caching)
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump_all(documents, fh, sort_keys=True)
    return Prepared(pipeline, target, path, documents[0], values)


# ---------------------------------------------------------------------------------------------------
# Results and progress
# ---------------------------------------------------------------------------------------------------


@dataclass
class Submission:
    """What was created: a run or a schedule, its ID and where to look at it."""

    target: str
    kind: str  # "run" or "schedule"
    id: str
    url: Optional[str]
    name: str
    details: Dict[str, str] = field(default_factory=dict)
    state: Optional[str] = None  # the final state, after follow()

    @property
    def succeeded(self) -> bool:
        return self.state in SUCCEEDED_STATES

    def lines(self) -> List[str]:
        """The lines ``kfpkit submit`` prints."""
        what = "recurring run" if self.kind == "schedule" and self.target == "kubeflow" else self.kind
        out = [f"{self.target} {what} {self.name!r} created", f"  id:  {self.id}"]
        out.append(f"  url: {self.url}" if self.url else "  url: (open the Kubeflow UI: Runs / Recurring Runs)")
        out += [f"  {key}: {value}" for key, value in self.details.items()]
        return out


def follow(
    fetch: Callable[[], Tuple[str, Dict[str, str], Optional[str]]],
    final_states: Sequence[str],
    *,
    poll_interval: float = 10.0,
    timeout: Optional[float] = None,
    out: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> Tuple[str, Optional[str]]:
    """Polls ``fetch() -> (run state, {task: state}, error)`` until a final state; returns (state, error).

    Prints one line per change of the run's state or of a task's state, with the elapsed time.

    Raises:
        TimeoutError: the run was not finished after ``timeout`` seconds.
    """
    start = clock()
    seen_state: Optional[str] = None
    seen_tasks: Dict[str, str] = {}
    while True:
        state, tasks, error = fetch()
        elapsed = clock() - start
        stamp = f"[{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}]"
        if state != seen_state:
            done = sum(1 for s in tasks.values() if s.endswith("SUCCEEDED") or s.endswith("SKIPPED"))
            out(f"{stamp} run {state} ({done}/{len(tasks)} tasks done)")
            seen_state = state
        for task in sorted(tasks):
            if seen_tasks.get(task) != tasks[task]:
                out(f"{stamp}   {task}: {tasks[task]}")
        seen_tasks = dict(tasks)
        if state in final_states:
            return state, error
        if timeout is not None and elapsed >= timeout:
            raise TimeoutError(f"run still {state} after {int(elapsed)} s")
        time.sleep(poll_interval)


@contextlib.contextmanager
def _quiet_client_output():
    """kfp.Client prints its own "... details: URL" lines; kfpkit prints one summary, so log theirs."""
    captured = io.StringIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"kfp\.client")
        with contextlib.redirect_stdout(captured):
            yield
    for line in captured.getvalue().splitlines():
        log.info("kfp.Client: %s", line)


def _check_compiled_for(prepared: Prepared, target: str) -> None:
    if prepared.target != target:
        raise SubmitError(f"{prepared.package_path} was compiled for {prepared.target}, not {target}")


def _default_run_name(pipeline: str) -> str:
    return f"{pipeline}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"


# ---------------------------------------------------------------------------------------------------
# Kubeflow Pipelines
# ---------------------------------------------------------------------------------------------------


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
    _check_compiled_for(prepared, "kubeflow")
    if schedule:
        schedule = check_kubeflow_cron(schedule)
    client = client or kubeflow_client(
        host, existing_token=existing_token, kube_context=kube_context, namespace=namespace, ui_host=ui_host
    )
    pipeline_id, version_id, version_name = upload_kubeflow_pipeline(client, prepared, namespace)
    run_name = run_name or _default_run_name(prepared.pipeline)
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


# ---------------------------------------------------------------------------------------------------
# Vertex AI Pipelines
# ---------------------------------------------------------------------------------------------------


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
        display_name=run_name or _default_run_name(prepared.pipeline),
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

    _check_compiled_for(prepared, "vertex")
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


# ---------------------------------------------------------------------------------------------------
# The subcommand
# ---------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", help=f"pipeline to submit ({', '.join(registry.pipeline_names())})")
    parser.add_argument("--target", required=True, choices=list(TARGETS))
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter (repeatable); registry_root is required, e.g. --param registry_root=gs://b/models",
    )
    parser.add_argument(
        "--run-name", default=None, help="display name of the run or schedule (default PIPELINE-UTCTIME)"
    )
    caching = parser.add_mutually_exclusive_group()
    caching.add_argument(
        "--enable-caching", dest="enable_caching", action="store_true", default=None, help="reuse cached task results"
    )
    caching.add_argument(
        "--no-caching", dest="enable_caching", action="store_false", help="run every task anew (default: as compiled)"
    )
    parser.add_argument(
        "--schedule",
        default=None,
        metavar="CRON",
        help="create a schedule instead of a run: Kubeflow 6 fields, seconds first ('0 0 3 * * *'); "
        "Vertex 5 fields ('0 3 * * *', optional TZ=Area/City prefix)",
    )
    parser.add_argument("--service-account", default=None, help="Kubernetes (Kubeflow) or Google (Vertex) account")
    parser.add_argument("--wait", action="store_true", help="follow the run to its end with progress lines")
    parser.add_argument("--poll-interval", type=float, default=10.0, help="seconds between --wait polls")
    parser.add_argument("--timeout", type=float, default=None, help="stop --wait after this many seconds")
    parser.add_argument("--out", default=None, help="keep the compiled package in this folder")
    parser.add_argument("--image-registry", default=None, help="registry prefix replacing ghcr.io/kfpkit")
    parser.add_argument("--accelerator-type", default=None, help="Vertex accelerator name (default NVIDIA_L4)")
    kubeflow = parser.add_argument_group("kubeflow")
    kubeflow.add_argument("--host", default=None, help="KFP API endpoint, e.g. https://kubeflow.example.com/pipeline")
    kubeflow.add_argument("--existing-token", default=None, help="bearer token for --host")
    kubeflow.add_argument("--kube-context", default=None, help="kubeconfig context whose token (or API proxy) to use")
    kubeflow.add_argument("--namespace", default=None, help="Kubeflow profile namespace (multi-user)")
    kubeflow.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="experiment (created when missing)")
    kubeflow.add_argument("--ui-host", default=None, help="Kubeflow UI base URL for links (default --host)")
    vertex = parser.add_argument_group("vertex")
    vertex.add_argument("--project", default=None, help="Google Cloud project")
    vertex.add_argument("--location", default=DEFAULT_VERTEX_LOCATION, help="region (default us-central1)")
    vertex.add_argument("--pipeline-root", default=None, help="gs:// folder for the run's artifacts")
    vertex.add_argument("--labels", default=None, metavar="K=V,...", help="labels of the PipelineJob")
    vertex.add_argument("--api-endpoint", default=None, help="Vertex AI API endpoint (default: the regional one)")


_KUBEFLOW_ONLY = ("host", "existing_token", "kube_context", "namespace", "ui_host")
_VERTEX_ONLY = ("project", "pipeline_root", "labels", "api_endpoint")


def check_arguments(args: argparse.Namespace) -> Dict[str, str]:
    """Every check of the parsed flags that needs neither kfp nor a service; returns the raw --param values."""
    check_pipeline(args.pipeline)
    other = _VERTEX_ONLY if args.target == "kubeflow" else _KUBEFLOW_ONLY
    stray = [name for name in other if getattr(args, name, None)]
    if args.target == "vertex" and args.experiment != DEFAULT_EXPERIMENT:
        stray.append("experiment")
    if stray:
        flags = ", ".join("--" + name.replace("_", "-") for name in stray)
        raise SubmitError(f"{flags} do not apply to the {args.target} target")
    if args.schedule and args.wait:
        raise SubmitError("--wait follows one run; a --schedule starts runs later (drop --wait)")
    if args.schedule:
        (check_kubeflow_cron if args.target == "kubeflow" else check_vertex_cron)(args.schedule)
    if args.target == "vertex":
        check_vertex_target(args.project, args.pipeline_root)
        parse_labels(args.labels)
    if args.existing_token and args.kube_context and args.host:
        raise SubmitError("--existing-token and --kube-context both give a token for --host: pass one")
    return parse_assignments(args.param)


def run(args: argparse.Namespace, *, credentials=None) -> int:
    """Runs ``kfpkit submit``; ``credentials`` (Vertex) default to Application Default Credentials."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        raw = check_arguments(args)
        with tempfile.TemporaryDirectory(prefix="kfpkit-submit-") as tmp:
            prepared = prepare(
                args.pipeline,
                args.target,
                args.out or tmp,
                raw,
                enable_caching=args.enable_caching,
                image_registry=args.image_registry,
                accelerator_type=args.accelerator_type,
            )
            if args.target == "kubeflow":
                submission, handle = submit_kubeflow(
                    prepared,
                    host=args.host,
                    existing_token=args.existing_token,
                    kube_context=args.kube_context,
                    namespace=args.namespace,
                    experiment=args.experiment,
                    run_name=args.run_name,
                    schedule=args.schedule,
                    service_account=args.service_account,
                    ui_host=args.ui_host,
                )
            else:
                submission, handle = submit_vertex(
                    prepared,
                    project=args.project,
                    location=args.location,
                    pipeline_root=args.pipeline_root,
                    service_account=args.service_account,
                    labels=parse_labels(args.labels),
                    run_name=args.run_name,
                    schedule=args.schedule,
                    api_endpoint=args.api_endpoint,
                    credentials=credentials,
                )
    except SubmitError as exc:
        print(f"kfpkit submit: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the service refused: kfp_server_api.ApiException, google.api_core errors
        print(f"kfpkit submit: {args.target} refused the request: {_service_message(exc)}", file=sys.stderr)
        return 1
    for line in submission.lines():
        print(line)
    if not args.wait:
        return 0
    follow_args = dict(poll_interval=args.poll_interval, timeout=args.timeout, out=_print_flush)
    try:
        if args.target == "kubeflow":
            state, error = follow_kubeflow_run(handle, submission.id, **follow_args)
        else:
            state, error = follow_vertex_job(handle, submission.details["resource"], **follow_args)
    except TimeoutError as exc:
        print(f"kfpkit submit: {exc}; follow it at {submission.url or submission.id}", file=sys.stderr)
        return 1
    submission.state = state
    print(f"run {submission.id} {state}" + (f": {error}" if error else ""))
    return 0 if submission.succeeded else 1


def _print_flush(line: str) -> None:
    print(line, flush=True)


def _service_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)  # kfp_server_api.ApiException
    if body:
        try:
            return f"HTTP {exc.status}: {json.loads(body).get('message', body)}"
        except (ValueError, AttributeError):
            return f"HTTP {getattr(exc, 'status', '?')}: {body}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m kfpkit.pipelines.submit ...`` (the same as ``kfpkit submit ...``)."""
    parser = argparse.ArgumentParser(prog="kfpkit submit", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
