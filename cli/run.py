"""``kfpkit run PIPELINE``: run a registered pipeline on this machine with kfp.local.

    kfpkit run training [--params-file FILE] [--<parameter> VALUE ...] [--pipeline-root DIR]
                        [--summary-json PATH] [--runner {subprocess,docker}] [--tfdv-python PY] [--verbose]

``--runner subprocess`` (the default) runs every task as a subprocess of this interpreter; ``--runner
docker`` runs every task in its image with kfp.local's ``DockerRunner``, as a cluster does (the images must
be on the engine ``DOCKER_HOST`` names: ``make docker-engine``, ``make images-local``; see
:mod:`kfpkit.pipelines.local_docker`). ``--tfdv-python`` applies to the subprocess runner only.

The flags of each pipeline are built from its declared inputs (the pipeline's component spec, i.e. its
signature and the ``Args:`` of its docstring): every parameter ``some_name`` is ``--some-name``, with
the parameter's type, its description as the help text and its default shown there; a flag left out
takes the pipeline's own default. Booleans are ``--name`` / ``--no-name``; list and dict parameters take
JSON. :data:`FLAG_ALIASES` keeps the short spellings the CLI had before (``--registry``).

``--params-file FILE`` reads parameters from a YAML or JSON mapping of parameter names to values; a flag
overrides the file's value. The file and the flags are checked as ``kfpkit submit`` checks them
(:func:`kfpkit.pipelines.parameters.resolve_parameters`): an unknown name, a wrong type or a required
parameter given neither way is refused (exit status 2) before anything runs, and a file's error names
the file and the key.

Prints one line when each task starts and one when it ends, then the run summary; kfp.local's full logs
go to the run log (see :mod:`kfpkit.pipelines.local`), ``--verbose`` streams them as well.

Exit status: 0 the pipeline finished (blessed or not), 1 a task failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Callable, Dict, Tuple

from kfpkit.pipelines import registry
from kfpkit.pipelines.local import RUNNERS
from kfpkit.pipelines.parameters import Parameter, ParameterError, pipeline_parameters, resolve_parameters

# Extra spellings of pipeline parameters' flags (the first is the one shown in the usage line).
FLAG_ALIASES: Dict[str, Tuple[str, ...]] = {"registry_root": ("--registry",)}
# Parameters holding a registry root or folder: a local relative path is made absolute before the run,
# so that model URIs in the registry and the summary do not depend on the working directory.
LOCAL_PATH_PARAMETERS = ("registry_root",)
PARAMS_FILE_HELP = (
    "YAML or JSON file mapping this pipeline's parameter names to values (e.g. 'source: data.csv'); a flag "
    "overrides the file's value; an unknown name or a wrong type is refused before anything runs"
)

# parameterType -> (argparse type, metavar)
_FLAG_TYPES: Dict[str, Tuple[Callable[[str], Any], str]] = {
    "STRING": (str, "STRING"),
    "NUMBER_INTEGER": (int, "INTEGER"),
    "NUMBER_DOUBLE": (float, "FLOAT"),
    "LIST": (json.loads, "JSON"),
    "STRUCT": (json.loads, "JSON"),
}


def parameter_flags(parameter: Parameter) -> Tuple[str, ...]:
    """The flags of ``parameter``: its aliases (:data:`FLAG_ALIASES`), then ``--<name-with-dashes>``."""
    return (*FLAG_ALIASES.get(parameter.name, ()), "--" + parameter.name.replace("_", "-"))


def _help(parameter: Parameter) -> str:
    text = parameter.description or parameter.name.replace("_", " ")
    if parameter.required:
        text += " (required: this flag or --params-file)"
    elif parameter.default not in (None, ""):
        shown = json.dumps(parameter.default) if parameter.type in ("LIST", "STRUCT") else parameter.default
        text += f" [default: {shown}]"
    return text.replace("%", "%%")


def add_pipeline_arguments(parser: argparse.ArgumentParser, pipeline: Any) -> Dict[str, Parameter]:
    """Adds ``--params-file`` and one flag per declared input of ``pipeline`` to ``parser``.

    A required parameter's flag is optional to argparse: the parameter may come from the params file
    instead, and :func:`pipeline_arguments` refuses a run that has it from neither.

    Returns:
        The pipeline's parameters, by name.
    """
    parameters = pipeline_parameters(pipeline)
    parser.add_argument("--params-file", default=None, metavar="FILE", help=PARAMS_FILE_HELP)
    group = parser.add_argument_group("pipeline parameters")
    for parameter in parameters.values():
        flags = parameter_flags(parameter)
        common: Dict[str, Any] = dict(dest=parameter.name, default=None, help=_help(parameter))
        if parameter.type == "BOOLEAN":
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, **common)
        else:
            kind, metavar = _FLAG_TYPES[parameter.type]
            group.add_argument(*flags, type=kind, metavar=metavar, **common)
    return parameters


def _description(pipeline: Any) -> str:
    text = pipeline.pipeline_spec.pipeline_info.description or pipeline.description or ""
    return " ".join(text.split())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one sub-parser per registered pipeline, each with ``kfpkit run``'s and the pipeline's flags."""
    from kfpkit.cli.main import HelpFormatter
    from kfpkit.pipelines.local import build_pipeline

    pipelines = parser.add_subparsers(dest="pipeline", required=True, metavar="PIPELINE")
    for name in registry.pipeline_names():
        pipeline = build_pipeline(name)
        description = _description(pipeline)
        sub = pipelines.add_parser(
            name, help=re.split(r"(?<=\.) ", description)[0], description=description, formatter_class=HelpFormatter
        )
        sub.add_argument("--pipeline-root", default="./local_outputs", help="where kfp.local writes task outputs")
        sub.add_argument("--summary-json", default=None, help="write the machine-readable run summary here")
        sub.add_argument(
            "--runner",
            choices=RUNNERS,
            default="subprocess",
            help="subprocess: every task as a subprocess of this interpreter (default); docker: every task in "
            "its image, with kfp.local's DockerRunner (needs a Docker engine and the images: make images-local)",
        )
        sub.add_argument(
            "--tfdv-python", default=None, help="interpreter of the TFDV environment (--runner subprocess only)"
        )
        sub.add_argument("--verbose", action="store_true", help="stream kfp.local's full logs, not only progress")
        add_pipeline_arguments(sub, pipeline)


def pipeline_arguments(args: argparse.Namespace) -> Dict[str, Any]:
    """The run's pipeline parameters: ``--params-file``'s, overridden by the flags given, checked and typed.

    Parameters given neither way take the pipeline's defaults (they are left out of the result). A local
    relative path in :data:`LOCAL_PATH_PARAMETERS` is made absolute (relative to the current directory,
    whether it came from a flag or from the file).

    Raises:
        ParameterError: the params file is unreadable or not a mapping, a name is unknown, a value has the
            wrong type, or a required parameter was given neither way.
    """
    from kfpkit.pipelines.local import build_pipeline

    parameters = pipeline_parameters(build_pipeline(args.pipeline))
    flags = {name: getattr(args, name) for name in parameters if getattr(args, name, None) is not None}
    arguments = resolve_parameters(
        parameters,
        args.pipeline,
        flags,
        params_file=getattr(args, "params_file", None),
        how_to_set=lambda name: parameter_flags(parameters[name])[0] + " ...",
    )
    for name in LOCAL_PATH_PARAMETERS:
        value = arguments.get(name)
        if isinstance(value, str) and "://" not in value:
            arguments[name] = os.path.abspath(value)
    return arguments


def run(args: argparse.Namespace) -> int:
    """Runs the chosen pipeline locally (kfp.local), prints its summary and writes ``--summary-json``.

    Returns:
        0 when the run succeeded, 1 when it failed, 2 when its parameters are refused before it starts.
    """
    from kfpkit.core.records import write_record
    from kfpkit.pipelines.local import format_summary, run_pipeline_locally

    runner = getattr(args, "runner", "subprocess")
    if args.tfdv_python and runner != "subprocess":
        print(f"kfpkit run {args.pipeline}: --tfdv-python applies to --runner subprocess only; with --runner "
              f"{runner} validate runs in the tfdv image", file=sys.stderr)  # fmt: skip
        return 2
    try:
        arguments = pipeline_arguments(args)
    except ParameterError as exc:
        print(f"kfpkit run {args.pipeline}: {exc}", file=sys.stderr)
        return 2
    summary = run_pipeline_locally(
        args.pipeline,
        arguments,
        pipeline_root=args.pipeline_root,
        tfdv_python=args.tfdv_python,
        verbose=args.verbose,
        progress=sys.stdout,
        runner=runner,
    )
    print(format_summary(summary))
    if args.summary_json:
        write_record(os.path.abspath(args.summary_json), summary)
    return 0 if summary.succeeded else 1
