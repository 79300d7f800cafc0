"""Size sweep of train's default models: test PR-AUC against the sklearn baseline, calibration against its noise.

Usage::

    python -m benchmarks.quality.bench_quality [--sizes 5000,20000,100000] [--seeds 1,2,3]
        [--tables breast_cancer,digits_9] [--frameworks pytorch,sklearn] [--set NAME=VALUE ...]

(from the repository root, or ``make bench-quality``). For every table and seed it runs the shipped logic
modules directly, as the training pipeline chains them (no kfp.local): ``run_ingest`` (hash splits
0.70/0.15/0.15 salted with the seed) -> ``train_model`` with default parameters and the seed -> the model
directory loaded with ``load_model`` scoring the test split, i.e. the served, calibrated probabilities.

Tables: ``synthetic://fraud?rows=N&seed=S`` for every ``--sizes`` value (the generator's seed is the split
seed), and sklearn's bundled tables (``--tables``): ``breast_cancer`` (569 rows, positive = malignant, 37 %)
and ``digits_9`` (1,797 8x8 digit images, positive = the digit 9, 10 %).

Per run it measures on the test split: PR-AUC with its stratified bootstrap interval
(:func:`kfpkit.core.bootstrap.intervals`), ECE (15 bins) and its noise floor (the 95th percentile of the ECE
that labels drawn as Bernoulli(score) would show on these very scores: a perfectly calibrated model scores
below it 95 % of the time), and the wall time of ``train_model``. It prints one line per run, then per table
and framework the medians over seeds, the PyTorch / sklearn PR-AUC ratio (median of the per-seed ratios)
and whether the goals hold: ratio >= 0.95 and ECE <= its floor in the median of the per-seed ECE / floor
(each seed's floor belongs to that seed's scores, which differ widely on small tables: digits' floors span
0.010-0.022 over seeds 1-3, so the median ECE and the median floor taken apart compare different seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import statistics
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

SKLEARN_TABLES = ("breast_cancer", "digits_9")
FRAMEWORKS = ("pytorch", "sklearn")
LABEL = "label"
SYNTHETIC_LABEL = "is_fraud"
RATIO_GOAL = 0.95


@dataclasses.dataclass
class Run:
    """One table x seed x framework: test-split figures of the served (calibrated) probabilities."""

    table: str
    seed: int
    framework: str
    test_rows: int
    test_positives: int
    pr_auc: float
    pr_auc_low: float
    pr_auc_high: float
    ece: float
    ece_floor: float
    seconds: float
    epochs_run: int
    batch_size: Optional[int]
    calibration: str
    ensemble_members: Optional[int] = None


def ece_noise_floor(scores: np.ndarray, draws: int = 1000, quantile: float = 0.95, seed: int = 0) -> float:
    """The ``quantile`` of the ECE that perfectly calibrated ``scores`` show on this many rows.

    Labels are drawn as Bernoulli(score) ``draws`` times; each draw's ECE uses the equal-width bins of
    :func:`kfpkit.core.classification_metrics.expected_calibration_error` (the bins depend on the scores
    only, so the per-bin score sums are fixed and only the label sums are drawn).

    Args:
        scores: Probabilities of the positive class.
        draws: Number of simulated label vectors.
        quantile: Which quantile of the simulated ECEs to return.
        seed: Seed of the draws.
    """
    from kfpkit.core.classification_metrics import ECE_BINS

    p = np.asarray(scores, dtype=np.float64).ravel()
    bins = np.minimum((p * ECE_BINS).astype(np.int64), ECE_BINS - 1).clip(0)
    order = np.argsort(bins, kind="stable")
    p, bins = p[order], bins[order]
    starts = np.flatnonzero(np.r_[True, np.diff(bins) != 0])
    score_sums = np.add.reduceat(p, starts)
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // max(1, p.size))
    values: List[np.ndarray] = []
    for done in range(0, draws, chunk):
        k = min(chunk, draws - done)
        labels = rng.random((k, p.size)) < p
        label_sums = np.add.reduceat(labels, starts, axis=1)
        values.append(np.abs(label_sums - score_sums).sum(axis=1) / p.size)
    return float(np.quantile(np.concatenate(values), quantile))


def sklearn_table(name: str) -> Any:
    """A bundled sklearn table as a DataFrame with a 0/1 ``label`` column (see the module docstring)."""
    from sklearn import datasets

    if name == "breast_cancer":
        bunch = datasets.load_breast_cancer(as_frame=True)
        frame = bunch.frame.drop(columns=["target"])
        frame[LABEL] = (bunch.target == 0).astype(np.int64)  # sklearn's 0 is malignant
        return frame
    if name == "digits_9":
        bunch = datasets.load_digits(as_frame=True)
        frame = bunch.frame.drop(columns=["target"])
        frame[LABEL] = (bunch.target == 9).astype(np.int64)
        return frame
    raise ValueError(f"unknown table {name!r}; known: {list(SKLEARN_TABLES)}")


def ingest(table: str, seed: int, folder: str) -> Dict[str, str]:
    """Writes the train / eval / test Parquet splits of ``table`` with ``run_ingest``; returns their paths."""
    from kfpkit.components.ingest.logic import run_ingest

    os.makedirs(folder, exist_ok=True)
    paths = {split: os.path.join(folder, f"{split}.parquet") for split in ("train", "eval", "test")}
    if table.isdigit():
        source, label = f"synthetic://fraud?rows={table}&seed={seed}", SYNTHETIC_LABEL
    else:
        source, label = os.path.join(folder, f"{table}.parquet"), LABEL
        sklearn_table(table).to_parquet(source, index=False)
    run_ingest(source, label, paths["train"], paths["eval"], paths["test"], seed=seed)
    paths["label"] = label
    return paths


def measure(
    table: str, seed: int, framework: str, paths: Dict[str, str], folder: str, overrides: Dict[str, Any], draws: int
) -> Run:
    """Trains ``framework`` with default parameters (plus ``overrides``) and scores the test split."""
    import pandas as pd

    from kfpkit.components.train.logic import TrainParams, train_model
    from kfpkit.core import bootstrap
    from kfpkit.core import classification_metrics as m
    from kfpkit.core.model_dir import load_model

    params = TrainParams(framework=framework, seed=seed, **(overrides if framework == "pytorch" else {}))
    started = time.perf_counter()
    result = train_model(paths["train"], paths["eval"], paths["label"], os.path.join(folder, framework), params)
    seconds = time.perf_counter() - started
    loaded = load_model(result.output_dir)
    test = pd.read_parquet(paths["test"])
    labels = test[paths["label"]].to_numpy()
    scores = loaded.predict_proba(test)
    interval = bootstrap.intervals(labels, scores, names=("pr_auc",), seed=seed)["pr_auc"]
    return Run(
        table=table,
        seed=seed,
        framework=framework,
        test_rows=len(labels),
        test_positives=int(labels.sum()),
        pr_auc=m.pr_auc(labels, scores),
        pr_auc_low=float(interval.low or 0.0),
        pr_auc_high=float(interval.high or 0.0),
        ece=m.expected_calibration_error(labels, scores),
        ece_floor=ece_noise_floor(scores, draws=draws, seed=seed),
        seconds=seconds,
        epochs_run=result.epochs_run,
        batch_size=loaded.card.parameters.get("batch_size") if framework == "pytorch" else None,
        calibration=result.calibration.fitted_on,
        ensemble_members=loaded.card.parameters.get("ensemble_members") if framework == "pytorch" else None,
    )


def print_run(run: Run) -> None:
    """One line per run (flushed: a sweep of large tables takes minutes)."""
    batch = "-" if run.batch_size is None else str(run.batch_size)
    members = "-" if run.ensemble_members is None else str(run.ensemble_members)
    print(
        f"{run.table:>14} {run.seed:>4} {run.framework:<8} {run.test_rows:>7} {run.test_positives:>6} "
        f"{run.pr_auc:7.4f} [{run.pr_auc_low:.3f}, {run.pr_auc_high:.3f}] {run.ece:7.4f} {run.ece_floor:7.4f} "
        f"{run.seconds:8.1f} {run.epochs_run:>6} {batch:>6} {members:>4} {run.calibration}",
        flush=True,
    )


def summarize(runs: Sequence[Run]) -> List[Dict[str, Any]]:
    """Per table and framework: medians over seeds, the PyTorch/sklearn ratio and the goals' verdicts."""
    rows = []
    for table in dict.fromkeys(r.table for r in runs):
        by_framework = {f: [r for r in runs if r.table == table and r.framework == f] for f in FRAMEWORKS}
        baseline = {r.seed: r.pr_auc for r in by_framework["sklearn"]}
        for framework, group in by_framework.items():
            if not group:
                continue
            ratios = [r.pr_auc / baseline[r.seed] for r in group if baseline.get(r.seed)]
            ratio = statistics.median(ratios) if ratios else None
            ece, floor = statistics.median(r.ece for r in group), statistics.median(r.ece_floor for r in group)
            ece_ratio = statistics.median(r.ece / r.ece_floor for r in group)
            rows.append(
                {
                    "table": table,
                    "framework": framework,
                    "seeds": len(group),
                    "pr_auc": statistics.median(r.pr_auc for r in group),
                    "pr_auc_low": statistics.median(r.pr_auc_low for r in group),
                    "pr_auc_high": statistics.median(r.pr_auc_high for r in group),
                    "ratio": ratio,
                    "ece": ece,
                    "ece_floor": floor,
                    "ece_ratio": ece_ratio,
                    "ece_within": sum(r.ece <= r.ece_floor for r in group),
                    "seconds": statistics.median(r.seconds for r in group),
                    "ratio_goal": None if ratio is None else ratio >= RATIO_GOAL,
                    "ece_goal": ece_ratio <= 1.0,
                }
            )
    return rows


def print_summary(rows: Sequence[Dict[str, Any]]) -> None:
    """The size x model table (medians over seeds) with the goals' verdicts."""
    print("\nmedians over seeds (test split; PR-AUC interval: 95 % stratified bootstrap, median of its bounds)")
    print(
        f"{'table':>14} {'model':<8} {'seeds':>5} {'PR-AUC':>7} {'interval':>16} {'ratio':>6} {'ECE':>7} "
        f"{'floor':>7} {'ECE/floor':>9} {'ECE<=floor':>10} {'train s':>8}  goals"
    )
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        goals = []
        if row["framework"] == "pytorch" and row["ratio_goal"] is not None:
            goals.append(f"ratio>={RATIO_GOAL}: {'yes' if row['ratio_goal'] else 'NO'}")
        goals.append(f"ECE within floor: {'yes' if row['ece_goal'] else 'NO'}")
        print(
            f"{row['table']:>14} {row['framework']:<8} {row['seeds']:>5} {row['pr_auc']:7.4f} "
            f"[{row['pr_auc_low']:.3f}, {row['pr_auc_high']:.3f}] {ratio:>6} {row['ece']:7.4f} "
            f"{row['ece_floor']:7.4f} {row['ece_ratio']:9.2f} {row['ece_within']:>6}/{row['seeds']:<3} "
            f"{row['seconds']:8.1f}  " + "; ".join(goals)
        )


def parse_overrides(items: Sequence[str]) -> Dict[str, Any]:
    """``NAME=VALUE`` PyTorch ``TrainParams`` overrides, each value parsed as the field's type."""
    from kfpkit.components.train.logic import TrainParams

    types = {f.name: type(f.default) for f in dataclasses.fields(TrainParams)}
    out: Dict[str, Any] = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in types:
            raise SystemExit(f"--set {item!r}: no TrainParams field {name!r}")
        out[name] = types[name](value) if types[name] in (int, float) else value
    return out


def sweep(
    tables: Sequence[str], seeds: Sequence[int], frameworks: Sequence[str], overrides: Dict[str, Any], draws: int
) -> List[Run]:
    """Runs every table x seed x framework in a temporary folder, printing each run as it ends."""
    print(
        f"{'table':>14} {'seed':>4} {'model':<8} {'test':>7} {'pos':>6} {'PR-AUC':>7} {'interval':>16} "
        f"{'ECE':>7} {'floor':>7} {'train s':>8} {'epochs':>6} {'batch':>6} {'nets':>4} calibration"
    )
    runs = []
    with tempfile.TemporaryDirectory(prefix="kfpkit-bench-quality-") as scratch:
        for table in tables:
            for seed in seeds:
                folder = os.path.join(scratch, f"{table}-{seed}")
                paths = ingest(table, seed, folder)
                for framework in frameworks:
                    run = measure(table, seed, framework, paths, folder, overrides, draws)
                    print_run(run)
                    runs.append(run)
    return runs


def main(argv: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """Parses the arguments, runs the sweep, prints the table; returns the summary rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,20000,100000", help="generator sizes, comma-separated ('' none)")
    parser.add_argument("--tables", default=",".join(SKLEARN_TABLES), help="sklearn tables ('' for none)")
    parser.add_argument("--seeds", default="1,2,3", help="seeds of generator, split and training")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="pytorch and/or sklearn")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="PyTorch TrainParams")
    parser.add_argument("--draws", type=int, default=1000, help="label draws of the ECE noise floor")
    parser.add_argument("--verbose", action="store_true", help="log train's progress")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    tables = [t for t in args.sizes.split(",") if t] + [t for t in args.tables.split(",") if t]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    frameworks = [f for f in args.frameworks.split(",") if f]
    runs = sweep(tables, seeds, frameworks, parse_overrides(args.set), args.draws)
    rows = summarize(runs)
    print_summary(rows)
    return rows


if __name__ == "__main__":
    main()
