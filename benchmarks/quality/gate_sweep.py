"""Seed sweep of evaluate's blessing gate: false regressions between retrains, and shuffled-label models.

Usage::

    python -m benchmarks.quality.gate_sweep [--rows 20000] [--data-seed 3] [--pairs 20] [--shuffled 5]
        [--framework pytorch] [--max-regression 0.01] [--confidence 0.95]

(from the repository root, or ``make bench-gate``). It runs the shipped logic modules directly, as the
training pipeline chains them (no kfp.local): ``run_ingest`` of ``synthetic://fraud?rows=N&seed=D`` (hash
splits 0.70/0.15/0.15 salted with ``D``) -> ``train_model`` with default parameters -> ``evaluate_model``
with the default gate.

* **Retrain pairs.** ``2 x --pairs`` models are trained on the same splits with seeds 1, 2, ...; pair ``k``
  evaluates the model of seed ``2k`` as the candidate against the model of seed ``2k - 1`` as the baseline
  (both scored on the same test rows, the paired bootstrap deciding). They are the same recipe on the same
  data, so every declared regression is a false one. Goal: at most 5 % of the pairs.
* **Shuffled labels.** ``--shuffled`` models are trained on the train and eval splits with their labels
  permuted (each with its own seed), then evaluated on the true test split, alone (the first run: the floor
  decides) and against the first pair's baseline. Goal: none is ever blessed.

It prints one line per pair and per shuffled model (PR-AUC with its interval, the floor and where the
interval lies, the paired difference with its interval and the share of resamples with a drop above
``max_regression``, the verdict), then the counts against the goals, how many pairs the point rule of
the previous gate (a drop of the point estimates above ``max_regression``) would have called a regression,
and the wall time per step.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

LABEL = "is_fraud"
FALSE_REGRESSION_GOAL = 0.05


@dataclasses.dataclass
class Verdict:
    """One evaluation of the sweep: the candidate's figures and the gate's verdict."""

    name: str
    pr_auc: float
    pr_auc_low: float
    pr_auc_high: float
    floor: float
    floor_position: str
    blessed: bool
    difference: Optional[float] = None
    difference_low: Optional[float] = None
    difference_high: Optional[float] = None
    regression_share: Optional[float] = None
    regression: bool = False

    def line(self) -> str:
        """One line of the printed table."""
        text = (
            f"{self.name:<22} PR-AUC {self.pr_auc:.4f} [{self.pr_auc_low:.4f}, {self.pr_auc_high:.4f}]  "
            f"floor {self.floor:.4f} ({self.floor_position:<6})"
        )
        if self.difference is not None:
            text += (
                f"  diff {self.difference:+.4f} [{self.difference_low:+.4f}, {self.difference_high:+.4f}]  "
                f"drop>max in {self.regression_share:6.1%}  {'REGRESSION' if self.regression else 'no regression'}"
            )
        return f"{text}  {'blessed' if self.blessed else 'not blessed'}"


def verdict_of(name: str, result: Any) -> Verdict:
    """The sweep's summary of an :class:`~kfpkit.components.evaluate.logic.EvaluationResult`."""
    pr_auc = result.intervals["pr_auc"]
    decision = result.decision
    verdict = Verdict(
        name=name,
        pr_auc=pr_auc.point,
        pr_auc_low=pr_auc.low,
        pr_auc_high=pr_auc.high,
        floor=decision.pr_auc_floor,
        floor_position=decision.floor_position,
        blessed=result.blessed,
    )
    if result.regression is not None:
        difference = result.regression.interval
        verdict.difference, verdict.difference_low, verdict.difference_high = (
            difference.point,
            difference.low,
            difference.high,
        )
        verdict.regression_share = decision.regression_share
        verdict.regression = decision.regression_declared
    return verdict


def ingest_splits(rows: int, data_seed: int, folder: str) -> Dict[str, str]:
    """``synthetic://fraud?rows=N&seed=D`` hashed into train/eval/test Parquet files under ``folder``."""
    from kfpkit.components.ingest.logic import run_ingest

    paths = {split: os.path.join(folder, f"{split}.parquet") for split in ("train", "eval", "test")}
    run_ingest(
        f"synthetic://fraud?rows={rows}&seed={data_seed}",
        LABEL,
        paths["train"],
        paths["eval"],
        paths["test"],
        seed=data_seed,
    )
    return paths


def shuffled_copy(path: str, seed: int, folder: str) -> str:
    """A copy of the split at ``path`` with its labels permuted by ``seed`` (features untouched)."""
    import pandas as pd

    frame = pd.read_parquet(path)
    frame[LABEL] = np.random.default_rng(seed).permutation(frame[LABEL].to_numpy())
    target = os.path.join(folder, f"shuffled-{seed}-{os.path.basename(path)}")
    frame.to_parquet(target, index=False)
    return target


def train(train_path: str, eval_path: str, output_dir: str, framework: str, seed: int) -> Optional[str]:
    """``train_model`` with default parameters and ``seed``; ``None`` when train refuses the data."""
    from kfpkit.components.train.logic import TrainError, TrainParams, train_model

    try:
        train_model(train_path, eval_path, LABEL, output_dir, TrainParams(framework=framework, seed=seed))
    except TrainError as exc:
        print(f"train refused seed {seed}: {exc}")
        return None
    return output_dir


class Sweep:
    """Trains and evaluates the sweep's models in one temporary folder.

    Args:
        args: The parsed command line.
        folder: The working folder (splits, models).
    """

    def __init__(self, args: argparse.Namespace, folder: str) -> None:
        self.args = args
        self.folder = folder
        self.seconds: Dict[str, float] = {"ingest": 0.0, "train": 0.0, "evaluate": 0.0}
        self.trained = 0

    def timed(self, step: str, function: Any, *arguments: Any, **keywords: Any) -> Any:
        """Calls ``function`` and adds its wall time to ``step``."""
        started = time.perf_counter()
        try:
            return function(*arguments, **keywords)
        finally:
            self.seconds[step] += time.perf_counter() - started

    def evaluate(self, name: str, model_dir: str, test_path: str, baseline_dir: Optional[str] = None) -> Verdict:
        """``evaluate_model`` with the sweep's gate settings, summarized."""
        from kfpkit.components.evaluate.logic import evaluate_model

        result = self.timed(
            "evaluate",
            evaluate_model,
            model_dir,
            test_path,
            LABEL,
            max_regression=self.args.max_regression,
            confidence=self.args.confidence,
            baseline_dir=baseline_dir,
        )
        verdict = verdict_of(name, result)
        print(verdict.line(), flush=True)
        return verdict

    def model(self, seed: int, train_path: str, eval_path: str, kind: str = "seed") -> Optional[str]:
        """Trains one model (with a manifest, so that it can serve as a verified baseline)."""
        from kfpkit.core.model_dir import write_manifest

        directory = self.timed(
            "train",
            train,
            train_path,
            eval_path,
            os.path.join(self.folder, f"{kind}-{seed}"),
            self.args.framework,
            seed,
        )
        self.trained += 1
        if directory is not None:
            write_manifest(directory)
        return directory

    def pairs(self, paths: Dict[str, str]) -> List[Verdict]:
        """Pair ``k``: the model of seed ``2k`` against the model of seed ``2k - 1`` as its baseline."""
        verdicts = []
        for pair in range(1, self.args.pairs + 1):
            baseline = self.model(2 * pair - 1, paths["train"], paths["eval"])
            candidate = self.model(2 * pair, paths["train"], paths["eval"])
            if baseline is None or candidate is None:
                continue
            verdicts.append(
                self.evaluate(f"pair {pair} (seed {2 * pair} vs {2 * pair - 1})", candidate, paths["test"], baseline)
            )
        return verdicts

    def shuffled(self, paths: Dict[str, str], baseline: Optional[str]) -> List[Verdict]:
        """Models trained on permuted labels, judged alone and against ``baseline``."""
        verdicts = []
        for seed in range(1, self.args.shuffled + 1):
            train_path = shuffled_copy(paths["train"], 1000 + seed, self.folder)
            eval_path = shuffled_copy(paths["eval"], 2000 + seed, self.folder)
            model = self.model(seed, train_path, eval_path, kind="shuffled")
            if model is None:
                continue  # refused by train: never blessed either
            verdicts.append(self.evaluate(f"shuffled {seed} alone", model, paths["test"]))
            if baseline is not None:
                verdicts.append(self.evaluate(f"shuffled {seed} vs seed 1", model, paths["test"], baseline))
        return verdicts


def summarize(pairs: Sequence[Verdict], shuffled: Sequence[Verdict], sweep: Sweep) -> bool:
    """Prints the counts against the goals and the time per step; True when both goals hold."""
    false_regressions = sum(verdict.regression for verdict in pairs)
    rate = false_regressions / len(pairs) if pairs else 0.0
    blessed_shuffled = sum(verdict.blessed for verdict in shuffled)
    pairs_ok = bool(pairs) and rate <= FALSE_REGRESSION_GOAL
    args = sweep.args
    print()
    print(
        f"table: synthetic://fraud?rows={args.rows}&seed={args.data_seed}, framework {args.framework}, "
        f"max_regression {args.max_regression}, confidence {args.confidence}"
    )
    print(
        f"false regressions between retrains: {false_regressions}/{len(pairs)} ({rate:.0%}); "
        f"goal <= {FALSE_REGRESSION_GOAL:.0%}: {'met' if pairs_ok else 'MISSED'}"
    )
    if pairs:
        point_rule = sum(
            verdict.difference is not None and -verdict.difference > args.max_regression for verdict in pairs
        )
        print(
            f"the point rule before this gate (drop > {args.max_regression} on the point estimates) would have "
            f"declared {point_rule}/{len(pairs)} ({point_rule / len(pairs):.0%})"
        )
        blessed_pairs = sum(verdict.blessed for verdict in pairs)
        print(f"retrain candidates blessed: {blessed_pairs}/{len(pairs)}")
    print(
        f"shuffled-label evaluations blessed: {blessed_shuffled}/{len(shuffled)}; goal 0: "
        f"{'met' if blessed_shuffled == 0 else 'MISSED'}"
    )
    per_model = sweep.seconds["train"] / max(sweep.trained, 1)
    print(
        f"wall time: ingest {sweep.seconds['ingest']:.1f} s, train {sweep.seconds['train']:.1f} s "
        f"({sweep.trained} models, {per_model:.1f} s each), evaluate {sweep.seconds['evaluate']:.1f} s"
    )
    return pairs_ok and blessed_shuffled == 0


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20000, help="rows of the synthetic table (default 20000)")
    parser.add_argument("--data-seed", type=int, default=3, help="generator and split seed of the table (default 3)")
    parser.add_argument("--pairs", type=int, default=20, help="retrain pairs (default 20)")
    parser.add_argument("--shuffled", type=int, default=5, help="shuffled-label models (default 5)")
    parser.add_argument("--framework", default="pytorch", choices=("pytorch", "sklearn"))
    parser.add_argument("--max-regression", type=float, default=None, help="evaluate's default unless set")
    parser.add_argument("--confidence", type=float, default=None, help="evaluate's default unless set")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from kfpkit.components.evaluate import gate

    args = parse_args(argv)
    args.max_regression = gate.DEFAULT_MAX_REGRESSION if args.max_regression is None else args.max_regression
    args.confidence = gate.DEFAULT_CONFIDENCE if args.confidence is None else args.confidence
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="kfpkit-gate-sweep-") as folder:
        sweep = Sweep(args, folder)
        paths = sweep.timed("ingest", ingest_splits, args.rows, args.data_seed, folder)
        pairs = sweep.pairs(paths)
        first_baseline = os.path.join(folder, "seed-1") if os.path.isdir(os.path.join(folder, "seed-1")) else None
        shuffled = sweep.shuffled(paths, first_baseline)
        summarize(pairs, shuffled, sweep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
