"""``make bench-drift``: kfpkit monitor vs Evidently ``DataDriftPreset`` vs TFDV drift comparators.

    .venv/bin/python -m benchmarks.drift.bench_drift [--rows 100000 1000000] [--repeats 3] [--work DIR]
                                                     [--skip-evidently] [--skip-tfdv]

Data (:mod:`demo.shifts`): 20 columns -- 14 float mixtures (normal / lognormal),
4 Zipf-like categoricals (10/20/35/50 values), Poisson(5) and uniform 0..999 ints -- with 5 designed shifts in
the live side (mean +0.5 sd, sd x1.5, mixture weight +0.25, a category blend, Poisson 5 -> 6). Each side has
the same number of rows. Every tool runs as its own process (kfpkit in .venv against the stored baseline
profile, Evidently in .venv-evidently, TFDV in .venv-tfdv); reported: whole-process wall time and peak RSS
(medians over ``--repeats``), and the flagged columns. kfpkit's baseline profile is built once per size, as
train does it, and that time is reported apart (it is not part of monitoring).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

from benchmarks import REPO_ROOT, subprocess_env

GOAL_SECONDS = 4.0
GOAL_RSS_MB = 1024.0


def prepare(rows: int, work: str) -> Dict[str, str]:
    """Reference and live Parquet files and kfpkit's model folder (with the baseline profile) for ``rows``."""
    import pandas as pd

    from demo import shifts
    from kfpkit.core import monitoring_baseline as mb
    from kfpkit.core.preprocessing import PreprocessingSpec

    folder = os.path.join(work, f"rows-{rows}")
    paths = {
        "reference": os.path.join(folder, "reference.parquet"),
        "live": os.path.join(folder, "live.parquet"),
        "model": os.path.join(folder, "model", "bench", "1"),
    }
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    os.makedirs(paths["model"], exist_ok=True)
    reference = pd.DataFrame(shifts.generate(rows, seed=0))
    pd.DataFrame(shifts.generate(rows, seed=1, shifts=shifts.BENCH_SHIFTS)).to_parquet(paths["live"], index=False)
    reference.to_parquet(paths["reference"], index=False)
    start = time.perf_counter()
    labelled = reference.assign(label=0)
    spec = PreprocessingSpec.fit(labelled, "label")
    spec.save(os.path.join(paths["model"], "preprocessing.json"))
    mb.write_baseline(paths["model"], mb.build_baseline(labelled, spec))
    with open(os.path.join(folder, "profile_seconds.txt"), "w") as fh:
        fh.write(f"{time.perf_counter() - start:.2f}\n")
    return paths


def measure(cmd: List[str], timeout_s: float, env: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    """Wall seconds and peak RSS (MB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO_ROOT)
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
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {proc.stderr.read().decode()[-1500:]}")
    return {"seconds": wall, "rss_mb": usage.ru_maxrss / 1024.0}


def tool_commands(paths: Dict[str, str], out: str, skip: List[str]) -> Dict[str, List[str]]:
    py = os.path.join(REPO_ROOT, ".venv", "bin", "python")
    commands = {
        "kfpkit": [
            py, "-m", "kfpkit.cli", "monitor", "--model-uri", paths["model"], "--live", paths["live"],
            "--out", os.path.join(out, "kfpkit"), "--summary-json", os.path.join(out, "kfpkit.json"),
        ],
        "evidently": [
            os.path.join(REPO_ROOT, ".venv-evidently", "bin", "python"), "-m", "benchmarks.drift.peer_evidently",
            paths["reference"], paths["live"], os.path.join(out, "evidently.json"),
        ],
        "tfdv": [
            os.path.join(REPO_ROOT, ".venv-tfdv", "bin", "python"), "-m", "benchmarks.drift.peer_tfdv",
            paths["reference"], paths["live"], os.path.join(out, "tfdv.json"),
        ],
    }  # fmt: skip
    return {k: v for k, v in commands.items() if k not in skip}


def flagged(tool: str, out: str) -> List[str]:
    path = os.path.join(out, f"{tool}.json")
    if tool == "kfpkit":  # kfpkit monitor's --summary-json, a typed record
        from kfpkit.core.drift_summary import DriftSummary
        from kfpkit.core.records import read_record

        return sorted(read_record(path, DriftSummary).drifted_features)
    with open(path, encoding="utf-8") as fh:  # the peers' own JSON
        return sorted(json.load(fh)["flagged"])


def main(argv: Optional[List[str]] = None) -> int:
    from demo import shifts

    parser = argparse.ArgumentParser(prog="bench_drift", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000], help="rows per side")
    parser.add_argument("--repeats", type=int, default=3, help="runs per tool and size (medians reported)")
    parser.add_argument("--work", default=os.path.join(REPO_ROOT, "build", "bench-drift"), help="data and results")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--skip-tfdv", action="store_true")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="longest run of one tool")
    args = parser.parse_args(argv)
    skip = [t for t, s in (("evidently", args.skip_evidently), ("tfdv", args.skip_tfdv)) if s]
    expected = shifts.expected_drifted(shifts.BENCH_SHIFTS)
    env = subprocess_env()
    results = []
    for rows in args.rows:
        print(f"preparing {rows:,} rows per side ...", flush=True)
        paths = prepare(rows, args.work)
        out = os.path.join(args.work, f"rows-{rows}", "results")
        os.makedirs(out, exist_ok=True)
        for tool, cmd in tool_commands(paths, out, skip).items():
            runs = []
            for i in range(args.repeats):
                runs.append(measure(cmd, args.timeout_s, env))
                print(f"  {tool:9s} {rows:>9,} rows run {i + 1}: {runs[-1]['seconds']:.2f} s", flush=True)
            found = flagged(tool, out)
            results.append(
                {
                    "rows": rows,
                    "tool": tool,
                    "seconds": statistics.median(r["seconds"] for r in runs),
                    "rss_mb": statistics.median(r["rss_mb"] for r in runs),
                    "runs": runs,
                    "flagged": found,
                    "caught": len(expected & set(found)),
                    "false_alarms": sorted(set(found) - expected),
                }
            )
    table = render(results, len(expected), args.repeats)
    print(table)
    with open(os.path.join(args.work, "results.json"), "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
    with open(os.path.join(args.work, "results.md"), "w", encoding="utf-8") as fh:
        fh.write(table + "\n")
    return 0


def render(results: List[dict], shifts_total: int, repeats: int) -> str:
    kfpkit = {r["rows"]: r for r in results if r["tool"] == "kfpkit"}
    lines = [
        f"| rows per side | tool | wall s (median of {repeats}) | peak RSS MB | × kfpkit | caught | false alarms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = kfpkit.get(r["rows"])
        ratio = f"{r['seconds'] / base['seconds']:.1f}×" if base else "-"
        alarms = ", ".join(r["false_alarms"]) or "0"
        lines.append(
            f"| {r['rows']:,} | {r['tool']} | {r['seconds']:.2f} | {r['rss_mb']:.0f} | {ratio} | "
            f"{r['caught']}/{shifts_total} | {alarms} |"
        )
    for rows, r in sorted(kfpkit.items()):
        if rows >= 1_000_000:
            ok = r["seconds"] <= GOAL_SECONDS and r["rss_mb"] <= GOAL_RSS_MB
            lines.append(
                f"\ngoal at {rows:,} rows (≤{GOAL_SECONDS:.0f} s, ≤{GOAL_RSS_MB:.0f} MB): {'met' if ok else 'MISSED'}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
