"""The ``kfpkit`` command line.

    kfpkit compile --target kubeflow|vertex --out DIR [--pipeline training] [--image-registry R]
                   [--accelerator-type NVIDIA_L4]
    kfpkit run training --source URI --label-column COL --registry DIR [--pipeline-root DIR]
                   [--summary-json PATH] [--framework pytorch|sklearn] [--epochs N] ...
    kfpkit serve --model-dir URI --model-name NAME --http-port N   (KServe ModelServer flags too)

Exit codes of ``run``: 0 the pipeline finished (blessed or not), 1 a task failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import List, Optional

from kfpkit.components import __version__

RUN_PARAMETERS = (
    # flag, pipeline parameter, type, help
    ("--model-name", "model_name", str, "model name in the registry (default fraud-detector)"),
    ("--framework", "framework", str, "pytorch (default) or sklearn"),
    ("--epochs", "epochs", int, "maximum training epochs"),
    ("--batch-size", "batch_size", int, "training batch size"),
    ("--learning-rate", "learning_rate", float, "AdamW learning rate"),
    ("--patience", "patience", int, "early-stopping patience in epochs"),
    ("--seed", "seed", int, "random seed"),
    ("--eval-fraction", "eval_fraction", float, "fraction of rows in the eval split"),
    ("--split-key-column", "split_key_column", str, "column whose hash decides the split"),
    ("--min-pr-auc", "min_pr_auc", float, "blessing floor on eval PR-AUC"),
    ("--max-regression", "max_regression", float, "largest allowed PR-AUC drop against the baseline"),
    ("--slice-column", "slice_column", str, "categorical column for the sliced evaluation report"),
    ("--checkpoint-dir", "checkpoint_dir", str, "durable folder for training checkpoints"),
    ("--curated-schema-uri", "curated_schema_uri", str, "TFDV schema (text proto) to validate against"),
    ("--infra-latency-budget-ms", "infra_latency_budget_ms", float, "p99 budget in the KServe check"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kfpkit", description="Kubeflow Pipelines components for tabular ML.")
    parser.add_argument("--version", action="version", version=f"kfpkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    comp = sub.add_parser("compile", help="compile pipelines for Kubeflow Pipelines or Vertex AI")
    comp.add_argument("--target", required=True, choices=["kubeflow", "vertex"])
    comp.add_argument("--out", required=True, help="output folder for <pipeline>.<target>.yaml")
    comp.add_argument("--pipeline", default=None, help="pipeline to compile (default: all)")
    comp.add_argument("--image-registry", default=None, help="registry prefix replacing ghcr.io/kfpkit")
    comp.add_argument("--accelerator-type", default=None, help="Vertex accelerator name (default NVIDIA_L4)")

    run = sub.add_parser("run", help="run a pipeline locally with kfp.local")
    run.add_argument("pipeline", choices=["training"])
    run.add_argument("--source", required=True, help="data source URI (synthetic://fraud?rows=N, path, gs://...)")
    run.add_argument("--label-column", required=True, help="binary label column")
    run.add_argument("--registry", required=True, help="model registry root (folder, gs:// or s3://)")
    run.add_argument("--pipeline-root", default="./local_outputs", help="where task outputs go")
    run.add_argument("--summary-json", default=None, help="write the machine-readable run summary here")
    run.add_argument("--tfdv-python", default=None, help="interpreter of the TFDV environment")
    for flag, dest, typ, text in RUN_PARAMETERS:
        run.add_argument(flag, dest=dest, type=typ, default=None, help=text)

    sub.add_parser("serve", help="serve a model directory with the KServe ModelServer", add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        from kfpkit.serving.cli import main as serve_main

        return serve_main(argv[1:]) or 0
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "compile":
        from kfpkit.pipelines import targets

        names = [args.pipeline] if args.pipeline else targets.pipeline_names()
        for name in names:
            try:
                path = targets.compile_pipeline(
                    name,
                    args.target,
                    args.out,
                    image_registry=args.image_registry,
                    accelerator_type=args.accelerator_type,
                )
            except ValueError as exc:
                print(f"kfpkit compile: {exc}", file=sys.stderr)
                return 2
            print(path)
        return 0
    if args.command == "run":
        from kfpkit.pipelines.local import format_summary, run_training_locally

        parameters = {dest: getattr(args, dest) for _, dest, _, _ in RUN_PARAMETERS if getattr(args, dest) is not None}
        summary = run_training_locally(
            source=args.source,
            label_column=args.label_column,
            registry_root=args.registry,
            pipeline_root=args.pipeline_root,
            tfdv_python=args.tfdv_python,
            **parameters,
        )
        print(format_summary(summary))
        if args.summary_json:
            directory = os.path.dirname(os.path.abspath(args.summary_json))
            os.makedirs(directory, exist_ok=True)
            tmp = args.summary_json + ".tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(summary, fh, indent=2, sort_keys=True)
            os.replace(tmp, args.summary_json)
        return 0 if summary["status"] == "succeeded" else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
