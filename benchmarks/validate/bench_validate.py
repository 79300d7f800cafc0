"""Benchmark of the validate component: ``run_validation`` end to end vs bare TFDV statistics.

Run from the main environment::

    .venv/bin/python -m benchmarks.validate.bench_validate --rows 100000 1000000 --repeats 3

(from the repository root, or ``make bench-validate``).

For each size N, ``generate_fraud(N)`` is split 70/15/15 into train/eval/test Parquet files (ingest's
default fractions), then

* ``run_validation`` (in-memory statistics) is timed end to end: TFDV subprocess start and TensorFlow
  import, statistics of the three splits, schema, validation, writing every output, report;
* ``tfdv.generate_statistics_from_dataframe`` (n_jobs=1) is timed on the same three frames, already in
  memory, as the first call in a fresh TFDV interpreter (import and Parquet read not timed).

It prints the medians of ``--repeats`` runs, the step breakdown of ``run_validation`` and the overhead
(run_validation minus the bare statistics).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

from kfpkit.components.validate import logic

SPLITS = ("train", "eval", "test")
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)  # ingest's defaults

BARE_SCRIPT = r"""
import json, sys, time
import pandas as pd
import tensorflow_data_validation as tfdv
frames = [pd.read_parquet(path) for path in sys.argv[1:]]
started = time.perf_counter()
for frame in frames:
    tfdv.generate_statistics_from_dataframe(frame, n_jobs=1)
print("BARE_JSON " + json.dumps(time.perf_counter() - started))
"""


def make_frame(rows: int, seed: int = 0) -> Any:
    """``generate_fraud(rows, seed)``: the built-in sample's table, as ingest reads it."""
    from kfpkit.components.ingest.synthetic import generate_fraud

    return generate_fraud(rows, seed=seed)


def _bare_statistics(tfdv_python: str, paths: Sequence[str]) -> float:
    """Seconds of ``generate_statistics_from_dataframe`` on every split, first call in a fresh TFDV process
    (the same conditions as run_validation's statistics step; import and Parquet read not timed)."""
    proc = subprocess.run(
        [tfdv_python, "-c", BARE_SCRIPT, *paths],
        capture_output=True,
        text=True,
        env=logic._child_env(tfdv_python),
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BARE_JSON "):
            return float(json.loads(line[len("BARE_JSON ") :]))
    raise RuntimeError(f"bare TFDV statistics failed:\n{proc.stderr[-3000:]}")


def bench_size(rows: int, repeats: int, tfdv_python: str, workdir: str) -> Dict[str, float]:
    """Medians (seconds) of ``run_validation`` and of bare TFDV statistics for ``rows`` rows."""
    frame = make_frame(rows)
    cuts = [0, int(rows * SPLIT_FRACTIONS[0]), int(rows * (SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1])), rows]
    paths = [os.path.join(workdir, f"{split}_{rows}.parquet") for split in SPLITS]
    for path, start, end in zip(paths, cuts[:-1], cuts[1:], strict=True):
        frame.iloc[start:end].to_parquet(path, index=False)
    label = "is_fraud"
    runs: List[Dict[str, float]] = []
    for attempt in range(repeats):
        outputs = logic.OutputPaths(
            *(os.path.join(workdir, f"out_{rows}_{attempt}", name) for name in logic.OutputPaths.__dataclass_fields__)
        )
        started = time.perf_counter()
        result = logic.run_validation(*paths, label, outputs, tfdv_python=tfdv_python)
        wall = time.perf_counter() - started
        runs.append({"wall": wall, **result.timings})
    bare = [_bare_statistics(tfdv_python, paths) for _ in range(repeats)]

    def median(key: str) -> float:
        return statistics.median(run.get(key, 0.0) for run in runs)

    out = {
        "rows": rows,
        "run_validation": median("wall"),
        "import": median("import"),
        "statistics": median("statistics"),
        "schema+validate+write": statistics.median(
            run.get("schema", 0.0) + run.get("validate", 0.0) + run.get("write", 0.0) for run in runs
        ),
        "bare_generate_statistics_from_dataframe": statistics.median(bare),
    }
    out["overhead"] = out["run_validation"] - out["bare_generate_statistics_from_dataframe"]
    out["overhead_without_import"] = out["overhead"] - out["import"]
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tfdv-python", default=None, help="TFDV interpreter (default: resolved as at run time)")
    args = parser.parse_args(argv)
    tfdv_python = logic.resolve_tfdv_python(args.tfdv_python)
    print(
        f"TFDV interpreter: {tfdv_python}; medians of {args.repeats}; "
        "train/eval/test = 70/15/15 of generate_fraud(rows)"
    )
    header = (
        f"{'rows':>9} {'run_validation':>15} {'tf import':>10} {'our stats':>10} {'schema+val+io':>14} "
        f"{'bare stats':>11} {'overhead':>9} {'overhead-import':>16}"
    )
    print(header)
    with tempfile.TemporaryDirectory(prefix="kfpkit-validate-bench-") as workdir:
        for rows in args.rows:
            r = bench_size(rows, args.repeats, tfdv_python, workdir)
            print(
                f"{rows:>9} {r['run_validation']:>14.2f}s {r['import']:>9.2f}s {r['statistics']:>9.2f}s "
                f"{r['schema+validate+write']:>13.2f}s {r['bare_generate_statistics_from_dataframe']:>10.2f}s "
                f"{r['overhead']:>8.2f}s {r['overhead_without_import']:>15.2f}s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
