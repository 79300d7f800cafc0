"""``kfpkit submit``: compile a pipeline and run or schedule it on Kubeflow Pipelines or Vertex AI.

    kfpkit submit PIPELINE --target kubeflow [--host URL] [--existing-token T | --kube-context C]
                  [--namespace NS] [--experiment NAME] [--params-file FILE] [--param k=v ...]
                  [--run-name NAME] [--enable-caching | --no-caching] [--service-account SA]
                  [--schedule 'SEC MIN HOUR DOM MON DOW'] [--wait]
    kfpkit submit PIPELINE --target vertex --project P [--location us-central1] --pipeline-root gs://...
                  [--service-account SA] [--params-file FILE] [--param k=v ...] [--labels k=v,...]
                  [--run-name NAME] [--enable-caching | --no-caching] [--schedule 'MIN HOUR DOM MON DOW'] [--wait]

Every check that needs no service runs first: the pipeline name, the cron expression, the labels, then
the run's parameters against the compiled pipeline spec (``root.inputDefinitions.parameters``): the
``--params-file`` (a YAML or JSON mapping of parameter names to values) overridden by each ``--param``;
an unknown name, a wrong type, a required parameter such as ``registry_root`` left out. Only then is
anything sent. How each target is addressed: :mod:`kfpkit.pipelines.submit`.

``kfpkit submit PIPELINE --help`` lists the flags, then every parameter of PIPELINE (its type, default and
description): the keys a ``--params-file`` may hold.

Both targets print the run (or schedule) ID and URL; ``--wait`` follows a run to its end with one progress
line per change of the run's or a task's state. Exit status: 0 submitted (or, with ``--wait``, succeeded),
1 the run did not succeed or the service refused the request, 2 bad input (nothing was sent).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import textwrap
from typing import Any, Dict, Optional, Tuple

from kfpkit.pipelines import registry
from kfpkit.pipelines.parameters import ParameterError, parse_assignments
from kfpkit.pipelines.platforms import TARGETS
from kfpkit.pipelines.submit.cron import check_kubeflow_cron, check_vertex_cron
from kfpkit.pipelines.submit.errors import SubmitError
from kfpkit.pipelines.submit.kubeflow import DEFAULT_EXPERIMENT
from kfpkit.pipelines.submit.prepare import Prepared, check_pipeline, prepare
from kfpkit.pipelines.submit.submission import Submission
from kfpkit.pipelines.submit.vertex import DEFAULT_VERTEX_LOCATION, check_vertex_target, parse_labels

PARAMS_FILE_HELP = (
    "YAML or JSON file mapping pipeline parameter names to values (e.g. 'source: gs://b/data.parquet'); "
    "--param overrides it; an unknown name or a wrong type is refused before anything is sent"
)


class PipelineName(argparse.Action):
    """The PIPELINE argument; naming it puts the pipeline's parameters into a ``--help`` that follows it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None):
        """Stores the name; for a registered pipeline, sets the help's epilog to its parameters."""
        setattr(namespace, self.dest, values)
        if values in registry.pipeline_names():
            parser.formatter_class = argparse.RawDescriptionHelpFormatter
            parser.epilog = parameters_help(values)


def parameters_help(pipeline: str, width: int = 100) -> str:
    """Every parameter of ``pipeline``: name, type, required or default, description (the params file's keys)."""
    from kfpkit.pipelines.local import build_pipeline
    from kfpkit.pipelines.parameters import pipeline_parameters

    lines = [f"parameters of the {pipeline} pipeline (keys of --params-file, or --param NAME=VALUE):"]
    for parameter in pipeline_parameters(build_pipeline(pipeline)).values():
        kind = parameter.type.lower().replace("number_", "")
        if parameter.required:
            status = "required"
        else:
            default = json.dumps(parameter.default) if parameter.type in ("LIST", "STRUCT") else parameter.default
            status = f"default {default!r}" if parameter.type == "STRING" else f"default {default}"
        lines.append(f"  {parameter.name} ({kind}, {status})")
        text = parameter.description or parameter.name.replace("_", " ")
        lines += textwrap.wrap(text, width=width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of what is submitted: pipeline, target, parameters, name, caching, schedule, following."""
    parser.add_argument(
        "pipeline",
        action=PipelineName,
        help=f"pipeline to submit ({', '.join(registry.pipeline_names())}); continuous-training trains, pushes "
        "and, for a new version, deploys a KServe canary and rolls it out; 'kfpkit submit PIPELINE --help' also "
        "lists every parameter of PIPELINE",
    )
    parser.add_argument(
        "--target",
        required=True,
        choices=list(TARGETS),
        help="kubeflow: a Kubeflow Pipelines cluster (the kubeflow flags below); vertex: Vertex AI Pipelines "
        "(the vertex flags below)",
    )
    parser.add_argument("--params-file", default=None, metavar="FILE", help=PARAMS_FILE_HELP)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter (repeatable; overrides --params-file); the training pipeline needs "
        "registry_root, source, label_column and model_name, e.g. --param registry_root=gs://b/models",
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
    parser.add_argument(
        "--service-account",
        default=None,
        help="Kubernetes (Kubeflow) or Google (Vertex) account the run's tasks use; a Kubeflow run that deploys "
        "(continuous-training, monitoring) needs the Role of manifests/pipeline-runner, e.g. kfpkit-pipeline-runner",
    )
    parser.add_argument("--wait", action="store_true", help="follow the run to its end with progress lines")
    parser.add_argument("--poll-interval", type=float, default=10.0, help="seconds between --wait polls")
    parser.add_argument("--timeout", type=float, default=None, help="stop --wait after this many seconds")
    parser.add_argument("--out", default=None, help="keep the compiled package in this folder")
    parser.add_argument("--image-registry", default=None, help="registry prefix replacing ghcr.io/kfpkit")
    parser.add_argument("--accelerator-type", default=None, help="Vertex accelerator name (default NVIDIA_L4)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``kfpkit submit``'s flags: the run's, then the Kubeflow-only and the Vertex-only ones."""
    _add_run_arguments(parser)
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
    """Every check of the parsed flags that needs neither kfp nor a service; returns the raw --param values.

    Raises:
        SubmitError: a flag of the other target, a bad cron or label, a missing Vertex project or root.
        ParameterError: a ``--param`` without ``=`` or given twice.
    """
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


def _send(args: argparse.Namespace, prepared: Prepared, credentials: Any) -> Tuple[Submission, Any]:
    """Creates the run or schedule on ``args.target``; returns (it, the client that follows it)."""
    if args.target == "kubeflow":
        from kfpkit.pipelines.submit.kubeflow import submit_kubeflow

        return submit_kubeflow(
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
    from kfpkit.pipelines.submit.vertex import submit_vertex

    return submit_vertex(
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


def _follow(args: argparse.Namespace, submission: Submission, handle: Any) -> int:
    """Follows the created run to its end (``--wait``); returns the exit status."""
    follow_args: Dict[str, Any] = dict(poll_interval=args.poll_interval, timeout=args.timeout, out=_print_flush)
    try:
        if args.target == "kubeflow":
            from kfpkit.pipelines.submit.kubeflow import follow_kubeflow_run

            state, error = follow_kubeflow_run(handle, submission.id, **follow_args)
        else:
            from kfpkit.pipelines.submit.vertex import follow_vertex_job

            state, error = follow_vertex_job(handle, submission.details["resource"], **follow_args)
    except TimeoutError as exc:
        print(f"kfpkit submit: {exc}; follow it at {submission.url or submission.id}", file=sys.stderr)
        return 1
    submission.state = state
    print(f"run {submission.id} {state}" + (f": {error}" if error else ""))
    return 0 if submission.succeeded else 1


def run(args: argparse.Namespace, *, credentials: Any = None) -> int:
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
                params_file=args.params_file,
                enable_caching=args.enable_caching,
                image_registry=args.image_registry,
                accelerator_type=args.accelerator_type,
            )
            submission, handle = _send(args, prepared, credentials)
    except (SubmitError, ParameterError) as exc:
        print(f"kfpkit submit: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the service refused: kfp_server_api.ApiException, google.api_core errors
        print(f"kfpkit submit: {args.target} refused the request: {_service_message(exc)}", file=sys.stderr)
        return 1
    for line in submission.lines():
        print(line)
    return _follow(args, submission, handle) if args.wait else 0


def _print_flush(line: str) -> None:
    print(line, flush=True)


def _service_message(exc: Exception) -> str:
    body: Optional[str] = getattr(exc, "body", None)  # kfp_server_api.ApiException
    if body:
        try:
            return f"HTTP {getattr(exc, 'status', '?')}: {json.loads(body).get('message', body)}"
        except (ValueError, AttributeError):
            return f"HTTP {getattr(exc, 'status', '?')}: {body}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
