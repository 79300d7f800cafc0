"""The ``kfpkit`` command line: one module per subcommand, registered in :data:`COMMANDS`.

    kfpkit compile       compile pipelines for Kubeflow Pipelines or Vertex AI
    kfpkit monitor       compare a live window with a model version's training baseline
    kfpkit payload-sink  receive KServe logger CloudEvents as payload records
    kfpkit performance   judge the live model's accuracy from delayed labels and calibrated scores
    kfpkit rollout       canary analysis from Prometheus, then promote or roll back
    kfpkit run           run a pipeline on this machine with kfp.local
    kfpkit serve         serve a model version directory with the KServe ModelServer
    kfpkit submit        run or schedule a pipeline on Kubeflow Pipelines or Vertex AI

``kfpkit COMMAND --help`` lists a command's flags. ``kfpkit COMMAND`` lives in the module
``kfpkit.cli.COMMAND`` (dashes as underscores, :func:`module_of`), which exposes:

* ``add_arguments(parser)`` -- adds its flags to its ``argparse`` sub-parser (heavy imports stay
  inside it or inside ``run``, so that ``kfpkit --help`` and the other commands stay fast);
* ``run(args) -> int`` -- runs it and returns the process exit status.

A command that hands its flags on to a parser of its own (``serve`` forwards to KServe's) sets the
parser default ``extra_argv`` in ``add_arguments``; the flags this parser does not know then arrive in
``args.extra_argv`` instead of being an error.

Only the module of the command being run is imported.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from typing import List, Optional, Tuple

from kfpkit.core import __version__

# name, one-line help: the one list of kfpkit's subcommands (sorted by name; one line each).
COMMANDS: Tuple[Tuple[str, str], ...] = (
    ("compile", "compile pipelines for Kubeflow Pipelines or Vertex AI"),
    ("monitor", "compare a live window with a model version's training baseline"),
    ("payload-sink", "receive KServe logger CloudEvents as payload records"),
    ("performance", "judge the live model's accuracy from delayed labels and calibrated scores"),
    ("rollout", "canary analysis from Prometheus, then promote or roll back"),
    ("run", "run a pipeline on this machine with kfp.local"),
    ("serve", "serve a model version directory with the KServe ModelServer"),
    ("submit", "run or schedule a pipeline on Kubeflow Pipelines or Vertex AI"),
)


def module_of(command: str) -> str:
    """The module of ``kfpkit COMMAND``: ``kfpkit.cli.<command>``, dashes as underscores."""
    return f"kfpkit.cli.{command.replace('-', '_')}"


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, wrapping help texts at spaces only: "PR-AUC" never becomes "PR-" and "AUC"."""

    def _split_lines(self, text: str, width: int) -> List[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The ``kfpkit`` parser; only ``command``'s sub-parser gets its flags (all of them when ``"*"``)."""
    parser = argparse.ArgumentParser(
        prog="kfpkit", description="Kubeflow Pipelines components for tabular ML.", formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"kfpkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in COMMANDS:
        command_parser = sub.add_parser(name, help=text, description=text, formatter_class=HelpFormatter)
        if command in (name, "*"):
            module = importlib.import_module(module_of(name))
            module.add_arguments(command_parser)
            command_parser.set_defaults(command_run=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Parses ``argv`` (default ``sys.argv[1:]``) and runs the command; returns its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args, extra = parser.parse_known_args(argv)
    if not hasattr(args, "extra_argv"):
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    else:
        args.extra_argv = list(extra)
    return int(args.command_run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
