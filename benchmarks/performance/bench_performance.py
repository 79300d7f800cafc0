"""``make bench-performance``: kfpkit performance vs NannyML's CBPE on the same daily cohorts.

    .venv/bin/python -m benchmarks.performance.bench_performance [--rows 100000 1000000] [--work DIR]

Data (:mod:`benchmarks.performance.traffic`): 30 days of scored traffic under covariate shift from day 15
(more traffic from the riskier segments, P(y | x) unchanged), labels late as chargebacks are; the model
version (card, threshold, reference metrics) from 15,000 reference rows, which are also what CBPE fits its
calibrator on. Every tool runs once, as its own process:

* ``kfpkit (estimate)`` -- ``kfpkit performance`` at ``--as-of`` the end of the traffic with a 30-day maturity:
  no cohort has matured, so every cohort is estimated (the labels are read and joined all the same);
* ``kfpkit (full)`` -- the same with every label known (as-of 60 days on): realized metrics with bootstrap
  intervals on every cohort, the calibration check and the estimates;
* ``NannyML CBPE`` -- ``.venv-nannyml`` (``make setup-nannyml``, ``requirements/nannyml.lock``): fit on the
  reference rows, estimate precision, recall and F1 per day (``chunk_period="D"``).

Reported per size and tool: wall time and peak RSS of the whole process (``wait4``), and the mean and worst
absolute error of the estimated precision, recall and F1 against the realized values of every cohort
(computed here from the true labels). Results: ``build/bench-performance/results.md`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, List

import numpy as np

from benchmarks import REPO_ROOT, subprocess_env

METRICS = ("precision", "recall", "f1")
DAYS = 30


def prepare(rows: int, work: str) -> Dict[str, str]:
    """The model version, reference rows, live traffic, labels and realized metrics per day for ``rows``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks.performance import traffic
    from kfpkit.core.model_card import read_model_card

    folder = os.path.join(work, f"rows-{rows}")
    paths = {
        "model": os.path.join(work, "model", "fraud-detector", "1"),
        "reference": os.path.join(work, "reference.parquet"),
        "live": os.path.join(folder, "live.parquet"),
        "labels": os.path.join(folder, "labels.parquet"),
        "realized": os.path.join(folder, "realized.json"),
    }
    if not os.path.exists(paths["model"]):
        traffic.make_model_dir(paths["model"])
        reference = traffic.generate(15_000, 1000, days=1)  # the rows of the card's metrics
        threshold = read_model_card(paths["model"]).decision_threshold
        table = pa.table({"score": reference.frame["score"].to_numpy(), "y": reference.truth})
        pq.write_table(table.replace_schema_metadata({b"threshold": str(threshold).encode()}), paths["reference"])
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    os.makedirs(folder, exist_ok=True)
    generated = traffic.generate(rows, 7, "covariate", days=DAYS)
    generated.frame.to_parquet(paths["live"], index=False)
    traffic.labels_frame(generated).to_parquet(paths["labels"], index=False)
    threshold = read_model_card(paths["model"]).decision_threshold
    days = generated.frame["timestamp"].dt.strftime("%Y-%m-%d").to_numpy()
    realized = {}
    for day in np.unique(days):
        mask = days == day
        y, predicted = generated.truth[mask], generated.frame["score"].to_numpy()[mask] >= threshold
        tp, fp, fn = np.sum(y & predicted), np.sum(~y.astype(bool) & predicted), np.sum(y & ~predicted)
        realized[str(day)] = {"precision": tp / (tp + fp), "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn)}
    with open(paths["realized"], "w", encoding="utf-8") as fh:
        json.dump(realized, fh)
    return paths


def measure(cmd: List[str], timeout_s: float = 3600.0) -> Dict[str, float]:
    """Runs ``cmd``; its wall time and peak RSS (MB) from ``wait4``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=subprocess_env({"NML_DISABLE_USAGE_LOGGING": "1"}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = start + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            raise TimeoutError(f"{cmd[2]} ran past {timeout_s:.0f} s")
        time.sleep(0.02)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed ({code}): {proc.stderr.read().decode()[-1500:]}")
    return {"seconds": wall, "rss_mb": usage.ru_maxrss / 1024.0}


def _kfpkit(paths: Dict[str, str], out: str, as_of: str) -> List[str]:
    return [
        os.path.join(REPO_ROOT, ".venv", "bin", "python"), "-m", "kfpkit.cli", "performance",
        "--model-uri", paths["model"], "--live", paths["live"], "--labels", paths["labels"],
        "--label-column", "is_fraud", "--cohort", "1d", "--maturity", "30d", "--as-of", as_of, "--out", out,
    ]  # fmt: skip


def _errors(estimates: Dict[str, Dict[str, float]], realized: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    diffs = [abs(estimates[day][m] - realized[day][m]) for day in realized if day in estimates for m in METRICS]
    return {"mean_abs_error": float(np.mean(diffs)), "max_abs_error": float(np.max(diffs)), "cohorts": len(diffs) // 3}


def _kfpkit_estimates(out: str) -> Dict[str, Dict[str, float]]:
    from kfpkit.core.performance_summary import PerformanceSummary
    from kfpkit.core.records import read_record

    summary = read_record(os.path.join(out, "summary.json"), PerformanceSummary)
    return {c.start[:10]: {m: c.estimated[m].point for m in METRICS} for c in summary.cohorts}


def run_size(rows: int, work: str, skip_nannyml: bool) -> Dict[str, Dict[str, float]]:
    """Every tool once on ``rows`` scored rows; ``{tool: {seconds, rss_mb, mean_abs_error, ...}}``."""
    paths = prepare(rows, work)
    with open(paths["realized"], encoding="utf-8") as fh:
        realized = json.load(fh)
    folder = os.path.dirname(paths["live"])
    results: Dict[str, Dict[str, float]] = {}
    for tool, as_of in (("kfpkit (estimate)", "2026-01-31T00:00:00Z"), ("kfpkit (full)", "2026-03-31T00:00:00Z")):
        out = os.path.join(folder, tool.split()[1].strip("()"))
        results[tool] = {**measure(_kfpkit(paths, out, as_of)), **_errors(_kfpkit_estimates(out), realized)}
    if not skip_nannyml:
        out = os.path.join(folder, "nannyml.json")
        python = os.path.join(REPO_ROOT, ".venv-nannyml", "bin", "python")
        timing = measure([python, "-m", "benchmarks.performance.peer_nannyml", paths["reference"], paths["live"], out])
        with open(out, encoding="utf-8") as fh:
            results["NannyML CBPE"] = {**timing, **_errors(json.load(fh)["cohorts"], realized)}
    return results


def report(results: Dict[int, Dict[str, Dict[str, float]]]) -> str:
    """The results as a Markdown table, with the time ratio of NannyML to kfpkit's estimate."""
    lines = [
        "| scored rows | tool | wall s | peak RSS MB | mean abs error (P/R/F1) | worst abs error "
        "| NannyML time / this |",
        "|---|---|---|---|---|---|---|",
    ]
    for rows, tools in results.items():
        peer = tools.get("NannyML CBPE", {}).get("seconds")
        for tool, r in tools.items():
            ratio = f"{peer / r['seconds']:.1f}x" if peer else "-"
            lines.append(
                f"| {rows:,} | {tool} | {r['seconds']:.2f} | {r['rss_mb']:.0f} | {r['mean_abs_error']:.4f} | "
                f"{r['max_abs_error']:.4f} | {ratio} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """Runs the benchmark; prints and writes the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work", default=os.path.join(REPO_ROOT, "build", "bench-performance"))
    parser.add_argument("--skip-nannyml", action="store_true")
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    results = {rows: run_size(rows, args.work, args.skip_nannyml) for rows in args.rows}
    table = report(results)
    print(table)
    with open(os.path.join(args.work, "results.md"), "w", encoding="utf-8") as fh:
        fh.write(table)
    with open(os.path.join(args.work, "results.json"), "w", encoding="utf-8") as fh:
        json.dump({str(k): v for k, v in results.items()}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
