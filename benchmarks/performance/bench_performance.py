"""``make bench-performance``: kfpkit performance vs NannyML's CBPE on the same daily cohorts.

    .venv/bin/python -m benchmarks.performance.bench_performance [--rows 100000 1000000] [--work DIR]

Data (:mod:`benchmarks.performance.traffic`): 30 days of scored traffic under covariate shift from day 15
(more traffic from the riskier segments, P(y | x) unchanged), labels late as chargebacks are; the model
version (card, threshold, reference metrics) from 15,000 reference rows, which are also what CBPE fits its
calibrator on. Every tool runs once, as its own process, in like-for-like pairs:

* ``kfpkit estimate, no labels`` against ``NannyML CBPE, no labels``: estimated precision, recall, F1 (kfpkit:
  and positive rate, with intervals) per daily cohort from the scores alone -- ``kfpkit performance`` without
  ``--labels``; NannyML (``.venv-nannyml``, ``make setup-nannyml``, ``requirements/nannyml.lock``) fits on the
  reference rows and estimates per day (``chunk_period="D"``);
* ``kfpkit estimate, labels read (none matured)``: the same with the labels read and joined as of the end of
  the traffic with a 30-day maturity (no cohort matured; the cost of the join), against the same NannyML run;
* ``kfpkit full, labels (realized + intervals)`` against ``NannyML CBPE + realized, labels joined``: every
  label known (as-of 60 days on): kfpkit gives realized metrics with bootstrap intervals on every cohort, the
  calibration check and the estimates; NannyML's peer joins the labels in pandas (the latest per key known by
  as-of) and CBPE reports estimated and realized precision, recall and F1 per day (no interval on realized).

Reported per size and tool: wall time, CPU time (user + sys) and peak RSS of the measured process alone
(``wait4`` of a grandchild of a small launcher, see :func:`measure`), and the mean and worst absolute error of
the estimated precision, recall and F1 against the realized values of every cohort (computed here from the
true labels); the ratio is the paired NannyML run's time over the kfpkit run's (wall, and CPU in brackets:
on a shared, loaded machine the CPU ratio is the steadier one). Results: ``build/bench-performance/results.md``
and ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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


# The measured command runs as a grandchild of a small launcher. ru_maxrss of a child starts from the
# high-water mark of the process it was forked from (Linux copies it at fork and keeps it across exec), so a
# child forked straight from this process (which holds the generated traffic) would report this process's
# peak, whatever the child used: the launcher is a fresh interpreter of a few MB, the grandchild's figure is
# its own (floor: the launcher's ~10 MB).
_LAUNCHER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL)
while True:
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid:
        break
    if time.perf_counter() - start > float(sys.argv[2]):
        proc.kill()
        pid, status, usage = os.wait4(proc.pid, 0)
        break
    time.sleep(0.02)
print(json.dumps({"seconds": time.perf_counter() - start, "rss_mb": usage.ru_maxrss / 1024.0,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime, "code": os.waitstatus_to_exitcode(status)}))
"""


def measure(cmd: List[str], timeout_s: float = 3600.0) -> Dict[str, float]:
    """Runs ``cmd`` under a fresh launcher; its wall time, CPU time (user + sys) and peak RSS (MB, ``wait4``)."""
    launcher = [sys.executable, "-S", "-c", _LAUNCHER, json.dumps(cmd), str(timeout_s)]
    env = subprocess_env({"NML_DISABLE_USAGE_LOGGING": "1"})
    done = subprocess.run(launcher, cwd=REPO_ROOT, env=env, capture_output=True, check=False)
    lines = done.stdout.decode().strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"code": done.returncode}
    if result["code"] != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed ({result['code']}): {done.stderr.decode()[-1500:]}")
    return {name: float(result[name]) for name in ("seconds", "cpu_seconds", "rss_mb")}


def _kfpkit(paths: Dict[str, str], out: str, as_of: str, labels: bool) -> List[str]:
    return [
        os.path.join(REPO_ROOT, ".venv", "bin", "python"), "-m", "kfpkit.cli", "performance",
        "--model-uri", paths["model"], "--live", paths["live"], *(["--labels", paths["labels"]] if labels else []),
        "--label-column", "is_fraud", "--cohort", "1d", "--maturity", "30d", "--as-of", as_of, "--out", out,
    ]  # fmt: skip


def _errors(
    estimates: Dict[str, Dict[str, float]], realized: Dict[str, Dict[str, float]], prefix: str = ""
) -> Dict[str, float]:
    diffs = [abs(estimates[day][m] - realized[day][m]) for day in realized if day in estimates for m in METRICS]
    return {
        f"{prefix}mean_abs_error": float(np.mean(diffs)),
        f"{prefix}max_abs_error": float(np.max(diffs)),
        f"{prefix}cohorts": len(diffs) // 3,
    }


def _kfpkit_results(out: str) -> Dict[str, Dict[str, Dict[str, float]]]:
    from kfpkit.core.performance_summary import PerformanceSummary
    from kfpkit.core.records import read_record

    summary = read_record(os.path.join(out, "summary.json"), PerformanceSummary)
    return {
        "estimated": {c.start[:10]: {m: c.estimated[m].point for m in METRICS} for c in summary.cohorts},
        "realized": {c.start[:10]: {m: c.realized[m].point for m in METRICS} for c in summary.cohorts if c.realized},
    }


# (tool, output folder, as_of, labels given, the NannyML run it is compared with, the other NannyML run shown)
ESTIMATE_AS_OF, FULL_AS_OF = "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z"
NML_ESTIMATE = "NannyML CBPE, no labels"
NML_REALIZED = "NannyML CBPE + realized P/R/F1, labels joined"
NML_CALCULATED = "NannyML CBPE + realized ROC-AUC/AP/P/R/F1 with sampling errors, labels joined"
KFPKIT_RUNS = (
    ("kfpkit estimate, no labels", "estimate", ESTIMATE_AS_OF, False, NML_ESTIMATE, None),
    (
        "kfpkit estimate, labels read (none matured)",
        "estimate-labels",
        ESTIMATE_AS_OF,
        True,
        NML_ESTIMATE,
        NML_REALIZED,
    ),
    ("kfpkit full, labels (realized + intervals)", "full", FULL_AS_OF, True, NML_CALCULATED, NML_REALIZED),
)
# (tool, labels joined, PerformanceCalculator's realized metrics with sampling errors as well)
NANNYML_RUNS = ((NML_ESTIMATE, False, False), (NML_REALIZED, True, False), (NML_CALCULATED, True, True))


def run_size(rows: int, work: str, skip_nannyml: bool, repeats: int = 1) -> Dict[str, Dict[str, float]]:
    """Every tool ``repeats`` times on ``rows`` scored rows (rounds back to back, every tool once per round).

    Returns ``{tool: {seconds, cpu_seconds, rss_mb (medians over the rounds), mean_abs_error, ...}}``.
    ``realized_max_abs_error`` (runs with labels) checks that a tool's realized metrics are those of the true
    labels (a few labels arrive after ``as_of``, so not always exactly 0); ``peer`` names the like-for-like
    NannyML run, ``other_peer`` the other one shown.
    """
    paths = prepare(rows, work)
    with open(paths["realized"], encoding="utf-8") as fh:
        truth = json.load(fh)
    folder = os.path.dirname(paths["live"])
    timings: Dict[str, List[Dict[str, float]]] = {}
    results: Dict[str, Dict] = {}
    loads = []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])
        for tool, name, as_of, labels, peer, other in KFPKIT_RUNS:
            out = os.path.join(folder, name)
            timings.setdefault(tool, []).append(measure(_kfpkit(paths, out, as_of, labels)))
            found = _kfpkit_results(out)
            results[tool] = {**_errors(found["estimated"], truth), "peer": peer, "other_peer": other}
            if found["realized"]:
                results[tool]["realized_max_abs_error"] = _errors(found["realized"], truth)["max_abs_error"]
        if not skip_nannyml:
            for tool, document in _nannyml_round(paths, folder, timings):
                results[tool] = {**_errors(document["cohorts"], truth)}
                if document.get("realized"):
                    results[tool]["realized_max_abs_error"] = _errors(document["realized"], truth)["max_abs_error"]
    for tool, runs in timings.items():
        medians = {key: float(np.median([run[key] for run in runs])) for key in runs[0]}
        results[tool] = {**medians, **results[tool], "runs": len(runs), "load_average": float(np.median(loads))}
    return results


def _nannyml_round(paths: Dict[str, str], folder: str, timings: Dict[str, List[Dict[str, float]]]):
    """Each NannyML run once (timings appended); yields ``(tool, its output document)``."""
    python = os.path.join(REPO_ROOT, ".venv-nannyml", "bin", "python")
    for tool, labels, calculated in NANNYML_RUNS:
        out = os.path.join(folder, f"nannyml{'-labels' if labels else ''}{'-calculated' if calculated else ''}.json")
        extra = [paths["labels"], FULL_AS_OF, *(["calculator"] if calculated else [])] if labels else []
        cmd = [python, "-m", "benchmarks.performance.peer_nannyml", paths["reference"], paths["live"], out, *extra]
        timings.setdefault(tool, []).append(measure(cmd))
        with open(out, encoding="utf-8") as fh:
            yield tool, json.load(fh)


def _ratio(peer: Dict, r: Dict) -> str:
    if not peer:
        return "-"
    return f"{peer['seconds'] / r['seconds']:.1f}x ({peer['cpu_seconds'] / r['cpu_seconds']:.1f}x)"


def report(results: Dict[int, Dict[str, Dict[str, float]]]) -> str:
    """The results as a Markdown table, with the time ratios of the NannyML runs each kfpkit run is paired with."""
    lines = [
        "| scored rows | tool | wall s | CPU s | peak RSS MB | mean abs error (P/R/F1) | worst abs error "
        "| like-for-like NannyML run: its wall / this (CPU) | other NannyML run: wall (CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rows, tools in results.items():
        for tool, r in tools.items():
            peer, other = tools.get(str(r.get("peer")), {}), tools.get(str(r.get("other_peer")), {})
            lines.append(
                f"| {rows:,} | {tool} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['rss_mb']:.0f} | "
                f"{r['mean_abs_error']:.4f} | {r['max_abs_error']:.4f} | {_ratio(peer, r)} | {_ratio(other, r)} |"
            )
    runs = {int(r["runs"]) for tools in results.values() for r in tools.values()}
    loads = [f"{rows:,}: {next(iter(t.values()))['load_average']:.1f}" for rows, t in results.items() if t]
    lines.append(
        f"\nMedians of {'/'.join(map(str, sorted(runs)))} run(s) per tool; 1-minute load average {', '.join(loads)}."
    )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """Runs the benchmark; prints and writes the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work", default=os.path.join(REPO_ROOT, "build", "bench-performance"))
    parser.add_argument("--skip-nannyml", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of every tool per size (medians reported)")
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    results = {rows: run_size(rows, args.work, args.skip_nannyml, args.repeats) for rows in args.rows}
    table = report(results)
    print(table)
    with open(os.path.join(args.work, "results.md"), "w", encoding="utf-8") as fh:
        fh.write(table)
    with open(os.path.join(args.work, "results.json"), "w", encoding="utf-8") as fh:
        json.dump({str(k): v for k, v in results.items()}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
