"""``kfpkit run PIPELINE``: run a registered pipeline on this machine with kfp.local.

    kfpkit run training [--<parameter> VALUE ...] [--pipeline-root DIR] [--summary-json PATH]
                        [--tfdv-python PY] [--verbose]

The flags of each pipeline are built from its declared inputs (the pipeline's component spec, i.e. its
signature and the ``Args:`` of its docstring): every parameter ``some_name`` is ``--some-name``, with
the parameter's type, its description as the help text and its default shown there; a flag left out
takes the pipeline's own default. Booleans are ``--name`` / ``--no-name``; list and dict parameters take
JSON. :data:`FLAG_ALIASES` keeps the short spellings the CLI had before (``--registry``).

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
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple

from kfpkit.pipelines import registry

# Extra spellings of pipeline parameters' flags (the first is the one shown in the usage line).
FLAG_ALIASES: Dict[str, Tuple[str, ...]] = {"registry_root": ("--registry",)}
# Parameters holding a registry root or folder: a local relative path is made absolute before the run,
# so that model URIs in the registry and the summary do not depend on the working directory.
LOCAL_PATH_PARAMETERS = ("registry_root",)

_TYPES: Dict[str, Callable[[str], Any]] = {
    "String": str,
    "Integer": int,
    "Float": float,
    "List": json.loads,
    "Dict": json.loads,
}


@dataclass(frozen=True)
class PipelineParameter:
    """One declared input of a pipeline, as the CLI offers it."""

    name: str
    type: str  # kfp's parameter type name: String, Integer, Float, Boolean, List, Dict
    default: Any
    required: bool
    description: str

    @property
    def flags(self) -> Tuple[str, ...]:
        return (*FLAG_ALIASES.get(self.name, ()), "--" + self.name.replace("_", "-"))


def pipeline_parameters(pipeline) -> List[PipelineParameter]:
    """The declared inputs of a KFP pipeline (``GraphComponent``), in signature order.

    Raises:
        ValueError: an input is an artifact (kfp.local runs take parameters only) or of an unknown type.
    """
    found = []
    for name, spec in pipeline.component_spec.inputs.items():
        kind = str(spec.type)
        if kind != "Boolean" and kind not in _TYPES:
            raise ValueError(
                f"pipeline {pipeline.name!r}: input {name!r} of type {kind!r} cannot be given on the command line"
            )
        description = " ".join((spec.description or "").split())
        found.append(PipelineParameter(name, kind, spec.default, not spec.optional, description))
    return found


def _help(parameter: PipelineParameter) -> str:
    text = parameter.description or parameter.name.replace("_", " ")
    if parameter.required:
        text += " (required)"
    elif parameter.default not in (None, ""):
        shown = json.dumps(parameter.default) if parameter.type in ("List", "Dict") else parameter.default
        text += f" [default: {shown}]"
    return text.replace("%", "%%")


def add_pipeline_arguments(parser: argparse.ArgumentParser, pipeline) -> List[PipelineParameter]:
    """Adds one flag per declared input of ``pipeline`` to ``parser``; returns the parameters."""
    parameters = pipeline_parameters(pipeline)
    group = parser.add_argument_group("pipeline parameters")
    for parameter in parameters:
        common = dict(dest=parameter.name, default=None, help=_help(parameter))
        if parameter.type == "Boolean":
            group.add_argument(*parameter.flags, action=argparse.BooleanOptionalAction, **common)
        else:
            metavar = "JSON" if parameter.type in ("List", "Dict") else parameter.type.upper()
            group.add_argument(
                *parameter.flags, type=_TYPES[parameter.type], required=parameter.required, metavar=metavar, **common
            )
    return parameters


def _description(pipeline) -> str:
    text = pipeline.pipeline_spec.pipeline_info.description or pipeline.description or ""
    return " ".join(text.split())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kfpkit.pipelines.local import build_pipeline

    pipelines = parser.add_subparsers(dest="pipeline", required=True, metavar="PIPELINE")
    for name in registry.pipeline_names():
        pipeline = build_pipeline(name)
        description = _description(pipeline)
        sub = pipelines.add_parser(name, help=re.split(r"(?<=\.) ", description)[0], description=description)
        sub.add_argument("--pipeline-root", default="./local_outputs", help="where kfp.local writes task outputs")
        sub.add_argument("--summary-json", default=None, help="write the machine-readable run summary here")
        sub.add_argument("--tfdv-python", default=None, help="interpreter of the TFDV environment")
        sub.add_argument("--verbose", action="store_true", help="stream kfp.local's full logs, not only progress")
        add_pipeline_arguments(sub, pipeline)


def pipeline_arguments(args: argparse.Namespace) -> Dict[str, Any]:
    """The pipeline parameters given on the command line (left-out flags take the pipeline's defaults)."""
    from kfpkit.pipelines.local import build_pipeline

    arguments = {}
    for parameter in pipeline_parameters(build_pipeline(args.pipeline)):
        value = getattr(args, parameter.name, None)
        if value is None:
            continue
        if parameter.name in LOCAL_PATH_PARAMETERS and "://" not in value:
            value = os.path.abspath(value)
        arguments[parameter.name] = value
    return arguments


def run(args: argparse.Namespace) -> int:
    from kfpkit.core.publish import publish_json
    from kfpkit.pipelines.local import format_summary, run_pipeline_locally

    summary = run_pipeline_locally(
        args.pipeline,
        pipeline_arguments(args),
        pipeline_root=args.pipeline_root,
        tfdv_python=args.tfdv_python,
        verbose=args.verbose,
        progress=sys.stdout,
    )
    print(format_summary(summary))
    if args.summary_json:
        publish_json(os.path.abspath(args.summary_json), summary)
    return 0 if summary["status"] == "succeeded" else 1
