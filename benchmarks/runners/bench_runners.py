"""``kfpkit run training --runner docker`` vs ``--runner subprocess``: wall time per run and per task, one process.

    .venv/bin/python -m benchmarks.runners.bench_runners [--rows 100000] [--repeats 1] [--work-dir DIR]

Each repeat runs the training pipeline with both runners on the same rows and seed (the order alternates
between repeats), each into its own pipeline root and registry, and prints the wall time of each run, the
seconds of each task (from the progress lines) and the docker/subprocess ratio; the goal is <= 2x. Needs a
Docker engine holding the images (``make docker-engine``, ``make images-local``) and ``.venv-tfdv`` for the
subprocess runner's validate.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

RUNNERS = ("subprocess", "docker")
GOAL_RATIO = 2.0
_DONE = re.compile(r"^\[ *[\d.]+s\] (?P<task>\S+) +done in (?P<seconds>[\d.]+)s")


@dataclass
class RunTime:
    """One pipeline run: its runner, wall seconds, exit status and each task's seconds."""

    runner: str
    wall_s: float
    returncode: int
    tasks: Dict[str, float]


def task_seconds(stdout: str) -> Dict[str, float]:
    """Each finished task's seconds from ``kfpkit run``'s progress lines (``[  1.2s] ingest  done in 1.1s``)."""
    return {m["task"]: float(m["seconds"]) for m in map(_DONE.match, stdout.splitlines()) if m}


def run_once(runner: str, rows: int, work_dir: str, seed: int = 0) -> RunTime:
    """Runs the training pipeline once with ``runner`` into a fresh folder under ``work_dir``."""
    folder = tempfile.mkdtemp(prefix=f"{runner}-", dir=work_dir)
    cmd = [
        sys.executable, "-m", "kfpkit.cli.main", "run", "training", "--runner", runner,
        "--source", f"synthetic://fraud?rows={rows}&seed={seed}", "--label-column", "is_fraud",
        "--model-name", "fraud-detector", "--registry", os.path.join(folder, "registry"),
        "--pipeline-root", os.path.join(folder, "outputs"), "--seed", str(seed),
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=3600)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-2000:])
    return RunTime(runner, wall, proc.returncode, task_seconds(proc.stdout))


def report(times: Sequence[RunTime]) -> List[str]:
    """The table: median wall seconds and task seconds per runner, and the docker/subprocess ratios.

    Only runs that succeeded count (a failed run's time says nothing about the runner).
    """
    by_runner = {r: [t for t in times if t.runner == r and t.returncode == 0] for r in RUNNERS}
    tasks = sorted({task for t in times for task in t.tasks})
    lines = [f"{'':16}" + "".join(f"{r:>12}" for r in RUNNERS) + f"{'ratio':>8}"]

    def row(name: str, values: Dict[str, Optional[float]]) -> str:
        sub, dock = values["subprocess"], values["docker"]
        ratio = f"{dock / sub:8.2f}" if sub and dock else f"{'-':>8}"
        return f"{name:16}" + "".join(f"{values[r]:12.1f}" if values[r] else f"{'-':>12}" for r in RUNNERS) + ratio

    def median(values: List[float]) -> Optional[float]:
        return statistics.median(values) if values else None

    lines.append(row("pipeline (wall)", {r: median([t.wall_s for t in by_runner[r]]) for r in RUNNERS}))
    for task in tasks:
        lines.append(row(task, {r: median([t.tasks[task] for t in by_runner[r] if task in t.tasks]) for r in RUNNERS}))
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work-dir", default=None, help="where the runs write (default: a temporary folder)")
    args = parser.parse_args(argv)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench-runners-")
    os.makedirs(work_dir, exist_ok=True)
    times = []
    for repeat in range(args.repeats):
        for runner in RUNNERS if repeat % 2 == 0 else RUNNERS[::-1]:
            result = run_once(runner, args.rows, work_dir)
            print(f"repeat {repeat + 1} {runner:<10} {result.wall_s:7.1f} s  exit {result.returncode}", flush=True)
            times.append(result)
    print(f"\ntraining pipeline, {args.rows:,} rows, median of {args.repeats} (seconds; outputs under {work_dir})")
    print("\n".join(report(times)))
    failed = [t for t in times if t.returncode != 0]
    walls = {r: [t.wall_s for t in times if t.runner == r and t.returncode == 0] for r in RUNNERS}
    if all(walls.values()):
        ratio = statistics.median(walls["docker"]) / statistics.median(walls["subprocess"])
        verdict = "met" if ratio <= GOAL_RATIO else "MISSED"
        print(f"docker / subprocess: {ratio:.2f}x (goal <= {GOAL_RATIO:.0f}x: {verdict})")
    if failed:
        print(f"{len(failed)} run(s) failed and are left out: " + ", ".join(t.runner for t in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
