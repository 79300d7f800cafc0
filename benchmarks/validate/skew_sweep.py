"""Skew sweep: validate's train/eval and train/test skew check on hash splits of one table, before and after.

Run from the repository root, in the main environment::

    make bench-skew                      # BENCH_SKEW_ARGS="--rows 100000 --seeds 5"
    .venv/bin/python -m benchmarks.validate.skew_sweep [--rows 1000 10000 100000 1000000] [--seeds 20]
        [--no-before] [--real-path-rows 100000 --real-path-seeds 8 9 12] [--noise-floor] [--tfdv-python PY]

For each size N and seed S, ``generate_fraud(N, seed=S)`` (the ``synthetic://fraud?rows=N&seed=S`` table) is
split into train/eval/test by ingest's own hash (:func:`kfpkit.components.ingest.logic.split_masks`, 70/15/15,
split seed 0: what ``kfpkit run training`` does with default settings). The three splits come from one
table, so **every skew alarm is false**. Seeds are 1, 2, ... skipping 7 (the issue's 20k example).

* **after** -- validate's checks today, called directly on the splits: kfpkit's numeric comparator
  (:func:`kfpkit.core.numeric_shift.compare_values`: JS distance on quantile bins of train against
  ``max(0.1, noise floor)``) on every numeric feature, and the L-infinity distance of every categorical one
  (the definition TFDV applies, threshold 0.3);
* **before** -- the check validate had: TFDV's approximate JS divergence (numeric) and L-infinity
  (categorical), both at 0.3, on TFDV statistics of the same splits, in the TFDV interpreter
  (``skew_before_tfdv.py``; ``--no-before`` skips it).

A run alarms when any feature exceeds its limit train/eval or train/test. The **designed shift** adds 0.5
standard deviations (of the feature in train) to every value of one numeric feature in one split (eval, then
test), feature by feature; the table gives the share of those shifts each check flags.

``--real-path-seeds`` runs the real component path (:func:`kfpkit.components.ingest.logic.run_ingest` on the
synthetic source, then :func:`kfpkit.components.validate.logic.run_validation` with its TFDV subprocess) at
``--real-path-rows`` and prints its verdict beside the direct comparator's and TFDV's old check on the same
files, plus one designed shift of ``amount`` in eval through the same path.

``--noise-floor`` simulates the comparator's null distribution (see :mod:`kfpkit.core.numeric_shift`) and
prints, per split sizes and bins, the false-alarm rate of the noise floor divided by its ``alpha`` and the
simulated quantile divided by the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from benchmarks import REPO_ROOT
from kfpkit.core import distances, numeric_shift

LABEL = "is_fraud"
ID_COLUMN = "transaction_id"  # unique per row: TFDV's L-infinity of an id is at most 1/rows, left out here
NUMERIC = ("amount", "hour", "distance_from_home_km", "transactions_last_24h", "account_age_days")
CATEGORICAL = ("merchant_category", "channel", "country", "device")
NUMERIC_THRESHOLD = 0.1  # validate's default_numeric_js_threshold (JS distance)
CATEGORICAL_THRESHOLD = 0.3  # validate's default_categorical_linf_threshold
SHIFT_SD = 0.5
SPLITS = ("train", "eval", "test")
COMPARED = ("eval", "test")
BEFORE_MODULE = "benchmarks.validate.skew_before_tfdv"


def default_seeds(count: int) -> List[int]:
    """The first ``count`` seeds from 1 on, skipping 7."""
    return [seed for seed in range(1, count + 2) if seed != 7][:count]


def make_splits(rows: int, seed: int) -> Dict[str, Any]:
    """``{split: DataFrame}`` of ``generate_fraud(rows, seed)``, hash-split as ingest does by default."""
    from kfpkit.components.ingest.logic import split_masks
    from kfpkit.components.ingest.synthetic import generate_fraud

    frame = generate_fraud(rows, seed=seed)
    masks = split_masks(frame, None, 0.15, 0.15, 0)
    return {split: frame[masks[split]].reset_index(drop=True) for split in SPLITS}


def shift_amount(train: Any, name: str) -> float:
    """0.5 standard deviations of the finite values of ``name`` in the ``train`` frame."""
    return SHIFT_SD * float(np.std(numeric_shift.finite(train[name].to_numpy(float))))


def shift_amounts(train: Any) -> Dict[str, float]:
    """``{numeric feature: 0.5 standard deviations of its train values}``."""
    return {name: shift_amount(train, name) for name in NUMERIC}


def _value_counts(column: Any) -> Dict[str, float]:
    return {str(value): float(count) for value, count in column.value_counts(dropna=True).items()}


def after_check(splits: Mapping[str, Any], shifts: Mapping[str, float]) -> Dict[str, Any]:
    """Validate's checks today on the splits: alarms, the closest approach to a limit, designed-shift detection."""
    alarms: List[Tuple[str, str, float]] = []
    closest = 0.0
    detected: Dict[str, Dict[str, bool]] = {}
    train = splits["train"]
    for name in NUMERIC:
        reference = train[name].to_numpy(float)
        detected[name] = {}
        for split in COMPARED:
            values = splits[split][name].to_numpy(float)
            shift = numeric_shift.compare_values(reference, values, NUMERIC_THRESHOLD)
            closest = max(closest, shift.distance / shift.limit)
            if shift.shifted:
                alarms.append((name, f"train/{split}", shift.distance))
            moved = numeric_shift.compare_values(reference, values + shifts[name], NUMERIC_THRESHOLD)
            detected[name][split] = moved.shifted
    for name in CATEGORICAL:
        reference_counts = _value_counts(train[name])
        for split in COMPARED:
            value = distances.linf_distance(_value_counts(splits[split][name]), reference_counts)
            if value > CATEGORICAL_THRESHOLD:
                alarms.append((name, f"train/{split}", value))
    return {"alarms": alarms, "closest": closest, "detected": detected}


class BeforeCheck:
    """The TFDV interpreter running ``skew_before_tfdv``: one request per seed, answered in order."""

    def __init__(self, tfdv_python: str):
        from kfpkit.components.validate import logic

        self.log = tempfile.NamedTemporaryFile(prefix="kfpkit-skew-before-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [tfdv_python, "-m", BEFORE_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=logic._child_env(tfdv_python),
            cwd=REPO_ROOT,
        )

    def send(self, folder: str, shifts: Mapping[str, float]) -> None:
        """Asks for the old check of the splits in ``folder`` (answered by :meth:`receive`)."""
        assert self.proc.stdin is not None
        request = {"dir": folder, "shift": dict(shifts), "label": LABEL}  # the label had no skew comparator
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> Dict[str, Any]:
        """The answer to the oldest request not yet received."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("SKEW_JSON "):
                answer: Dict[str, Any] = json.loads(line[len("SKEW_JSON ") :])
                return answer
        with open(self.log.name, encoding="utf-8", errors="replace") as fh:
            tail = fh.read()[-3000:]
        raise RuntimeError(f"the TFDV side of the skew sweep ended without an answer:\n{tail}")

    def close(self) -> None:
        """Ends the TFDV interpreter (closing its stdin) and removes its log."""
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=120)
        os.unlink(self.log.name)


def write_splits(splits: Mapping[str, Any], folder: str) -> None:
    """The feature columns of each split as ``<split>.parquet`` (what the TFDV side reads)."""
    os.makedirs(folder, exist_ok=True)
    for split, frame in splits.items():
        frame[[*NUMERIC, *CATEGORICAL]].to_parquet(os.path.join(folder, f"{split}.parquet"), index=False)


@dataclass
class SizeResult:
    """One size's sweep: per seed, the alarms of each check; the designed shift's detections."""

    rows: int
    seeds: List[int]
    after: List[Dict[str, Any]] = field(default_factory=list)
    before: List[Dict[str, Any]] = field(default_factory=list)


def sweep_size(rows: int, seeds: Sequence[int], before: Optional[BeforeCheck], workdir: str) -> SizeResult:
    """Both checks on every seed of one size (the TFDV side works on seed S while this one checks it too)."""
    result = SizeResult(rows, list(seeds))
    for seed in seeds:
        splits = make_splits(rows, seed)
        shifts = shift_amounts(splits["train"])
        folder = os.path.join(workdir, f"{rows}-{seed}")
        if before is not None:
            write_splits(splits, folder)
            before.send(folder, shifts)
        result.after.append(after_check(splits, shifts))
        if before is not None:
            result.before.append(before.receive())
            for split in SPLITS:
                os.unlink(os.path.join(folder, f"{split}.parquet"))
    return result


def _rate(checks: Sequence[Mapping[str, Any]]) -> str:
    flags = [v for check in checks for feature in check["detected"].values() for v in feature.values()]
    return f"{sum(flags)}/{len(flags)}" if flags else "-"


def _features(checks: Sequence[Mapping[str, Any]]) -> str:
    counts: Dict[str, int] = {}
    for check in checks:
        for feature in {alarm[0] for alarm in check["alarms"]}:
            counts[feature] = counts.get(feature, 0) + 1
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "-"


def print_size(result: SizeResult) -> None:
    """One line of the false-alarm table and one of the detection table for a size."""
    n = len(result.seeds)
    after_runs = sum(1 for check in result.after if check["alarms"])
    closest = max(check["closest"] for check in result.after)
    before = f"{sum(1 for check in result.before if check['alarms'])}/{n}" if result.before else "-"
    print(
        f"{result.rows:>9,} | false alarms: before {before:>6}  after {after_runs}/{n}"
        f"  (after: largest distance/limit {closest:.2f}) | designed shift flagged: before "
        f"{_rate(result.before) if result.before else '-':>7}  after {_rate(result.after):>7}",
        flush=True,
    )
    if result.before:
        print(f"{'':>9} | before, seeds alarming per feature: {_features(result.before)}", flush=True)
    if after_runs:
        print(f"{'':>9} | AFTER, seeds alarming per feature: {_features(result.after)}", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the sweep (and the real-path check, the noise-floor simulation) and prints the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per size: 1, 2, ... skipping 7")
    parser.add_argument("--no-before", action="store_true", help="skip TFDV's old check (no TFDV interpreter)")
    parser.add_argument("--real-path-rows", type=int, default=100_000)
    parser.add_argument("--real-path-seeds", type=int, nargs="*", default=[])
    parser.add_argument("--noise-floor", action="store_true", help="simulate the noise floor's null tail")
    parser.add_argument("--floor-draws", type=int, default=1_000_000)
    parser.add_argument("--tfdv-python", default=None, help="TFDV interpreter (default: resolved as validate does)")
    args = parser.parse_args(argv)
    seeds = default_seeds(args.seeds)
    tfdv_python = None
    if not args.no_before or args.real_path_seeds:
        from kfpkit.components.validate import logic

        tfdv_python = logic.resolve_tfdv_python(args.tfdv_python)
    print(
        f"skew sweep: generate_fraud(rows, seed) hash-split 70/15/15 as ingest does; seeds {seeds[:3]}...{seeds[-1]}"
        f" ({len(seeds)}); every alarm is false. before: TFDV approximate JS divergence / L-infinity at 0.3; after: "
        f"JS distance at max({NUMERIC_THRESHOLD}, noise floor alpha {distances.DEFAULT_ALPHA:g}) / L-infinity at 0.3; "
        f"designed shift: +{SHIFT_SD} sd of one numeric feature in eval or test ({len(NUMERIC)} features x 2)",
        flush=True,
    )
    started = time.perf_counter()
    before = BeforeCheck(tfdv_python) if (tfdv_python and not args.no_before and args.rows) else None
    try:
        with tempfile.TemporaryDirectory(prefix="kfpkit-skew-sweep-") as workdir:
            for rows in args.rows:
                print_size(sweep_size(rows, seeds, before, workdir))
    finally:
        if before is not None:
            before.close()
    print(f"sweep: {time.perf_counter() - started:.0f} s", flush=True)
    if args.real_path_seeds:
        assert tfdv_python is not None
        real_path(args.real_path_rows, args.real_path_seeds, tfdv_python)
    if args.noise_floor:
        noise_floor_table(args.floor_draws)
    return 0


# --------------------------------------------------------------------------- the real component path
def _ingest(rows: int, seed: int, folder: str) -> Dict[str, str]:
    from kfpkit.components.ingest.logic import run_ingest

    paths = {split: os.path.join(folder, f"{split}.parquet") for split in SPLITS}
    run_ingest(f"synthetic://fraud?rows={rows}&seed={seed}", LABEL, paths["train"], paths["eval"], paths["test"])
    return paths


def _validate(paths: Mapping[str, str], folder: str, tfdv_python: str) -> Any:
    from kfpkit.components.validate import logic

    outputs = logic.OutputPaths(*(os.path.join(folder, "out", name) for name in logic.OutputPaths.__dataclass_fields__))
    return logic.run_validation(paths["train"], paths["eval"], paths["test"], LABEL, outputs, tfdv_python=tfdv_python)


def _direct(paths: Mapping[str, str]) -> Dict[Tuple[str, str], Any]:
    import pandas as pd

    frames = {split: pd.read_parquet(path) for split, path in paths.items()}
    return {
        (name, f"train/{split}"): numeric_shift.compare_values(
            frames["train"][name].to_numpy(float), frames[split][name].to_numpy(float), NUMERIC_THRESHOLD
        )
        for name in NUMERIC
        for split in COMPARED
    }


def _compare_one(label: str, paths: Mapping[str, str], folder: str, tfdv_python: str) -> None:
    result = _validate(paths, folder, tfdv_python)
    direct = _direct(paths)
    numeric = {(s["feature"], s["splits"]): s for s in result.skew if s["metric"] == "jensen_shannon_distance"}
    same_values = max(abs(numeric[key]["value"] - shift.distance) for key, shift in direct.items())
    same_verdicts = all(numeric[key]["exceeded"] == shift.shifted for key, shift in direct.items())
    flagged = sorted(f"{s['feature']} {s['splits']}" for s in result.skew if s["exceeded"])
    direct_flagged = sorted(f"{k[0]} {k[1]}" for k, shift in direct.items() if shift.shifted)
    print(
        f"{label:<28} run_validation: {'passed' if result.passed else 'FAILED'} {flagged or ''} | direct comparator: "
        f"{direct_flagged or 'no alarm'} | same verdicts {same_verdicts}, largest value difference {same_values:.1e}",
        flush=True,
    )


def real_path(rows: int, seeds: Sequence[int], tfdv_python: str) -> None:
    """run_ingest + run_validation (TFDV subprocess) on ``synthetic://fraud?rows=R&seed=S``, beside the others."""
    import pandas as pd

    print(f"real path: run_ingest + run_validation at {rows:,} rows", flush=True)
    before = BeforeCheck(tfdv_python)
    try:
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix="kfpkit-skew-real-") as folder:
                paths = _ingest(rows, seed, folder)
                before.send(folder, {})
                old = before.receive()["alarms"]
                print(f"seed {seed:>3}: old TFDV check {'FAILED ' + str(old) if old else 'passed'}", flush=True)
                _compare_one(f"seed {seed:>3}", paths, folder, tfdv_python)
        seed = seeds[0]
        with tempfile.TemporaryDirectory(prefix="kfpkit-skew-real-") as folder:
            paths = _ingest(rows, seed, folder)
            train = pd.read_parquet(paths["train"], columns=["amount"])
            frame = pd.read_parquet(paths["eval"])
            frame["amount"] = frame["amount"] + shift_amount(train, "amount")
            frame.to_parquet(paths["eval"], index=False)
            _compare_one(f"seed {seed:>3}, eval amount +0.5 sd", paths, folder, tfdv_python)
    finally:
        before.close()


# --------------------------------------------------------------------------- the noise floor's null tail
FLOOR_SETTINGS = ((700, 150, 20), (700, 150, 10), (700, 150, 3), (1400, 300, 6), (7000, 1500, 20), (70000, 15000, 20))


def simulate_null(n_ref: int, n_other: int, bins: int, draws: int, seed: int = 0) -> Tuple[np.ndarray, int]:
    """``draws`` JS distances of the comparator between two samples of one continuous distribution.

    The reference's quantile bins hold fixed counts; the true probabilities of those bins are the spacings of
    its order statistics (Dirichlet with the bin counts, the last one plus one), and the other sample's
    counts are multinomial on them. Returns the distances and the number of non-empty bins.
    """
    rng = np.random.default_rng(seed)
    reference = np.sort(rng.random(n_ref))
    edges = numeric_shift.quantile_edges(reference, bins)
    base = numeric_shift.bin_counts(reference, edges).astype(np.float64)
    concentration = base.copy()
    concentration[-1] += 1.0
    out = []
    for start in range(0, draws, 200_000):
        size = min(200_000, draws - start)
        other = rng.multinomial(n_other, rng.dirichlet(concentration, size=size)).astype(np.float64)
        p = other / n_other
        q = base / base.sum()
        m = 0.5 * (p + q)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kl_q = (q * np.log2(q / m)).sum(axis=1)
        out.append(np.sqrt(np.maximum(0.0, 0.5 * (kl_p + kl_q))))
    return np.concatenate(out), int(np.count_nonzero(base))


def noise_floor_table(draws: int) -> None:
    """Prints, per setting, rate/alpha and quantile/floor of the simulated null at several alphas."""
    print(f"noise floor vs a simulated null ({draws:,} draws per setting): rate/alpha and quantile/floor", flush=True)
    for n_ref, n_other, bins in FLOOR_SETTINGS:
        values, nonempty = simulate_null(n_ref, n_other, bins, draws)
        cells = []
        for alpha in (1e-2, 1e-3, 1e-4, 1e-5):
            if alpha * draws < 10:
                continue
            floor = distances.js_floor(nonempty, n_other, n_ref, alpha)
            rate = float(np.mean(values > floor)) / alpha
            cells.append(f"a={alpha:g}: {rate:.2f} / {float(np.quantile(values, 1 - alpha)) / floor:.3f}")
        print(
            f"  {n_ref:>6} vs {n_other:>6}, {nonempty:>2} bins ({n_other / nonempty:>4.0f} rows/bin): "
            + " | ".join(cells),
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
