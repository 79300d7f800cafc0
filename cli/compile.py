"""``kfpkit compile``: compile pipelines for Kubeflow Pipelines or Vertex AI into YAML files.

    kfpkit compile --target {kubeflow,vertex} --out DIR [--pipeline NAME] [--image-registry R]
                   [--accelerator-type NVIDIA_L4]

Writes ``DIR/<pipeline>.<target>.yaml`` per pipeline and prints each path. Exit status 2 on a bad
pipeline, target or accelerator.
"""

from __future__ import annotations

import argparse
import logging
import sys

from kfpkit.pipelines import registry
from kfpkit.pipelines.platforms import TARGETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``kfpkit compile`` options to ``parser``."""
    parser.add_argument("--target", required=True, choices=list(TARGETS))
    parser.add_argument("--out", required=True, help="output folder for <pipeline>.<target>.yaml")
    parser.add_argument(
        "--pipeline", default=None, choices=registry.pipeline_names(), help="pipeline to compile (default: all)"
    )
    parser.add_argument("--image-registry", default=None, help="registry prefix replacing ghcr.io/kfpkit")
    parser.add_argument("--accelerator-type", default=None, help="Vertex accelerator name (default NVIDIA_L4)")


def run(args: argparse.Namespace) -> int:
    """Compiles the chosen pipeline (or every registered one) and prints each YAML path.

    Returns:
        0, or 2 at the first pipeline that does not compile for the target (the error goes to stderr).
    """
    from kfpkit.pipelines import targets

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in [args.pipeline] if args.pipeline else registry.pipeline_names():
        try:
            path = targets.compile_pipeline(
                name, args.target, args.out, image_registry=args.image_registry, accelerator_type=args.accelerator_type
            )
        except ValueError as exc:
            print(f"kfpkit compile: {exc}", file=sys.stderr)
            return 2
        print(path)
    return 0
