"""Throughput benchmark of train: the PyTorch model on the available device vs the sklearn baseline.

Usage::

    python -m benchmarks.train.bench_train --rows 100000 [--repeats 3] [--device cuda] [--batch-size 16384]

(from the repository root, or ``make bench-train``). Generates the synthetic fraud table
(``kfpkit.components.ingest.synthetic.generate_fraud``), splits it 80/20, writes Parquet to a
temporary folder and runs :func:`kfpkit.components.train.logic.train_model` for both frameworks
``--repeats`` times. It prints, per framework, the median of:

* ``fit rows/s``: training rows / wall seconds of the whole fit (PyTorch: every epoch's steps, eval and
  checkpoint; sklearn: ``fit`` with its early stopping) -- the like-for-like number, and the ratio
  PyTorch / sklearn baseline (the named peer);
* ``step rows/s`` (PyTorch only): rows per second of optimizer steps, epochs counted;
* ``train_model s``: the whole call (read, preprocess, fit, export, write);
* eval PR-AUC, so that speed is read next to quality.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from typing import Any, Dict, List, Optional

import numpy as np

LABEL = "is_fraud"


def synthetic_frame(rows: int, seed: int = 0, positive_rate: float = 0.02) -> Any:
    """``generate_fraud(rows, seed)``: the built-in sample's fraud-like table."""
    from kfpkit.components.ingest.synthetic import generate_fraud

    return generate_fraud(rows, seed=seed, fraud_rate=positive_rate)


def write_splits(rows: int, folder: str, seed: int = 0) -> Dict[str, str]:
    frame = synthetic_frame(rows, seed=seed).drop(columns=["transaction_id"], errors="ignore")
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(len(frame) * 0.8)
    paths = {"train": os.path.join(folder, "train.parquet"), "eval": os.path.join(folder, "eval.parquet")}
    frame.iloc[order[:cut]].to_parquet(paths["train"], index=False)
    frame.iloc[order[cut:]].to_parquet(paths["eval"], index=False)
    return paths


def run(rows: int, repeats: int, device: Optional[str], batch_size: Optional[int], epochs: Optional[int]) -> None:
    import torch

    from kfpkit.components.train.logic import TrainParams, train_model
    from kfpkit.components.train.torch_trainer import resolve_device
    from kfpkit.core.model_card import read_model_card

    overrides: Dict[str, Any] = {}
    if batch_size:
        overrides["batch_size"] = batch_size
    if epochs:
        overrides["epochs"] = epochs
    with tempfile.TemporaryDirectory(prefix="kfpkit-train-bench-") as folder:
        paths = write_splits(rows, folder)
        train_rows = int(rows * 0.8)
        results: Dict[str, Dict[str, List[float]]] = {}
        for framework in ("pytorch", "sklearn"):
            stats: Dict[str, List[float]] = {"fit": [], "step": [], "call": [], "pr_auc": [], "epochs": []}
            for repeat in range(repeats):
                params = TrainParams(framework=framework, device=device, **overrides)
                started = time.perf_counter()
                result = train_model(
                    paths["train"], paths["eval"], LABEL, os.path.join(folder, f"model-{framework}-{repeat}"), params
                )
                stats["call"].append(time.perf_counter() - started)
                card_training = read_model_card(result.output_dir).training
                fit_seconds = card_training["fit_seconds"]
                stats["fit"].append(train_rows / fit_seconds)
                stats["step"].append(result.rows_per_second)
                stats["pr_auc"].append(result.metrics["pr_auc"])
                stats["epochs"].append(result.epochs_run)
            results[framework] = stats
        torch_device = str(resolve_device(device))
        threads = TrainParams().cpu_threads or 1
        name = torch.cuda.get_device_name() if torch_device.startswith("cuda") else f"{threads} training thread(s)"
        print(f"rows={rows} (train {train_rows}), repeats={repeats} (medians), pytorch on {torch_device} ({name})")
        header = ("framework", "fit rows/s", "step rows/s", "train_model s", "epochs", "PR-AUC")
        print(f"{header[0]:<10} {header[1]:>12} {header[2]:>12} {header[3]:>14} {header[4]:>7} {header[5]:>7}")
        for framework, stats in results.items():
            step = f"{statistics.median(stats['step']):12.0f}" if framework == "pytorch" else f"{'-':>12}"
            print(
                f"{framework:<10} {statistics.median(stats['fit']):12.0f} {step} "
                f"{statistics.median(stats['call']):14.2f} {statistics.median(stats['epochs']):7.0f} "
                f"{statistics.median(stats['pr_auc']):7.4f}"
            )
        ratio = statistics.median(results["pytorch"]["fit"]) / statistics.median(results["sklearn"]["fit"])
        print(f"pytorch/{torch_device} fit rows/s vs sklearn HistGradientBoosting baseline: {ratio:.2f}x")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows generated (80%% train, 20%% eval)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per framework; medians are printed")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=None, help="override TrainParams.batch_size")
    parser.add_argument("--epochs", type=int, default=None, help="override TrainParams.epochs")
    parser.add_argument("--verbose", action="store_true", help="log every epoch")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    run(args.rows, args.repeats, args.device, args.batch_size, args.epochs)


if __name__ == "__main__":
    main()
