"""``kfpkit serve``: the KServe ModelServer on a model version directory (see :mod:`kfpkit.serving.cli`).

Its flags are those of :func:`kfpkit.serving.cli.build_parser` (KServe's ModelServer flags plus
kfpkit's); this module forwards them unchanged, and ``kfpkit serve --help`` prints that parser's help.
"""

from __future__ import annotations

import argparse


def _serve_help() -> str:
    from kfpkit.serving.cli import build_parser

    return build_parser().format_help()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.format_help = _serve_help  # -h/--help print the serve parser's help
    parser.allow_abbrev = False  # every flag goes to the serve parser as typed
    parser.set_defaults(extra_argv=[])


def run(args: argparse.Namespace) -> int:
    from kfpkit.serving.cli import main

    return main(args.extra_argv) or 0
