"""``make loadtest``: a bounded headless locust run against a loopback ``kfpkit serve``.

    python -m benchmarks.serving.loadtest [--model-dir DIR --model-name NAME] [--users 16]
        [--run-time 20] [--max-requests 200000] [--rows 256]

1. Without ``--model-dir`` it trains the benchmark's LogisticRegression
   (:mod:`benchmarks.serving.models`) into a temporary directory; with it, it serves that model version
   directory (local path or registry URI, as ``kfpkit serve``).
2. It builds request bodies with :mod:`kfpkit.serving.payloads` from fresh synthetic rows
   (``generate_fraud(rows, seed=1)``): v2 one input per feature, v1 objects, v1 rows, and the single
   ``features`` tensor when every feature is numeric -- one row per request by default.
3. It starts ``kfpkit serve`` on a free 127.0.0.1 port (pinned to CPU 0 on machines with 2+ CPUs), runs
   :mod:`benchmarks.serving.locustfile` headless (pinned to CPU 1) for ``--run-time`` seconds or
   ``--max-requests`` requests, whichever comes first, and stops the server whatever happens.
4. It prints locust's per-request-type figures and exits 1 when any request failed (or none was made).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence

from benchmarks import subprocess_env
from benchmarks.serving import loadgen, servers

LOCUSTFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locustfile.py")
DEFAULT_MODEL_NAME = "fraud-lr"


def build_requests(spec: Any, model_name: str, rows: int = 256, batch_size: int = 1, seed: int = 1) -> List[Dict]:
    """Load-test requests for a model's preprocessing spec, from ``generate_fraud(rows, seed)``.

    Returns ``[{"name", "path", "weight", "body"}, ...]`` (the locustfile's bodies-file entries): for each
    batch of ``batch_size`` rows, a v2 request with one input per feature, a v1 request with objects and one
    with rows; plus the v2 ``features`` tensor when every feature is numeric.

    Raises:
        KeyError: a feature of the spec is not a column of the synthetic data.
    """
    from kfpkit.components.ingest.synthetic import generate_fraud
    from kfpkit.serving import payloads

    frame = generate_fraud(rows, seed=seed)
    order, categorical = list(spec.feature_order), list(spec.categorical_names)
    v1_path = f"/v1/models/{model_name}:predict"
    v2_path = f"/v2/models/{model_name}/infer"
    out: List[Dict] = []
    for start in range(0, rows, batch_size):
        part = frame.iloc[start : start + batch_size]
        out.append(
            {"name": "v2 inputs", "path": v2_path, "weight": 3, "body": payloads.v2_body(part, order, categorical)}
        )
        out.append(
            {"name": "v1 objects", "path": v1_path, "weight": 1, "body": payloads.v1_body(part, order, categorical)}
        )
        out.append(
            {"name": "v1 rows", "path": v1_path, "weight": 1, "body": payloads.v1_body(part, order, categorical, True)}
        )
        if not categorical:
            tensor = payloads.v2_body(part, order, as_tensor=True)
            out.append({"name": "v2 tensor", "path": v2_path, "weight": 3, "body": tensor})
    return out


def read_locust_summary(path: str) -> List[Dict[str, Any]]:
    """The locustfile's final statistics: one dict per request type, the last one ``Aggregated``."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)["entries"]


def run_locust(
    host: str,
    bodies_file: str,
    summary_file: str,
    users: int,
    spawn_rate: float,
    run_time_s: int,
    max_requests: int,
    cpu: Optional[int] = None,
) -> subprocess.CompletedProcess:
    """Runs the locustfile headless; bounded by ``run_time_s`` (and a hard timeout of run time + 120 s)."""
    if not loadgen.is_loopback_url(host):
        raise ValueError(f"refusing to load-test {host!r}: only http:// loopback addresses")
    command = [
        *loadgen.pin_prefix(cpu), sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless",
        "--host", host, "--users", str(users), "--spawn-rate", str(spawn_rate), "--run-time", f"{run_time_s}s",
        "--stop-timeout", "5", "--only-summary", "--loglevel", "WARNING",
        "--bodies-file", bodies_file, "--max-requests", str(max_requests), "--summary-file", summary_file,
    ]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, timeout=run_time_s + 120, check=False, env=subprocess_env()
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving.loadtest",
        description="Headless, bounded locust load test of kfpkit serve on 127.0.0.1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model-dir", default=None, help="model version directory or registry URI (default: train one)"
    )
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--users", type=int, default=16, help="concurrent locust users")
    parser.add_argument("--spawn-rate", type=float, default=None, help="users started per second (default: all)")
    parser.add_argument("--run-time", type=int, default=20, help="seconds")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--rows", type=int, default=256, help="distinct synthetic rows to send")
    parser.add_argument("--batch-size", type=int, default=1, help="rows per request")
    parser.add_argument("--train-rows", type=int, default=20_000, help="training rows of the default model")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and locust to CPUs 0 and 1")
    parser.add_argument("--work-dir", default=None, help="where the model, bodies, CSVs and server log go")
    return parser


def run_loadtest(args: argparse.Namespace, emit: Any = print) -> Dict[str, Any]:
    """Runs the load test; returns ``{"stats": [...], "aggregated": {...}, "locust_returncode": int}``.

    Raises:
        servers.ServerError: the server did not start.
        RuntimeError: locust produced no statistics.
    """
    if args.run_time < 1 or args.users < 1 or args.rows < 1 or args.batch_size < 1:
        raise ValueError("--run-time, --users, --rows and --batch-size must be >= 1")
    from benchmarks.serving import models
    from kfpkit.cli.serve import resolve_model_dir
    from kfpkit.core.model_dir import PREPROCESSING_FILE
    from kfpkit.core.preprocessing import PreprocessingSpec

    pin = loadgen.can_pin(args.no_pin)
    owned = tempfile.TemporaryDirectory(prefix="kfpkit-loadtest-") if args.work_dir is None else None
    work_dir = owned.name if owned is not None else args.work_dir
    os.makedirs(work_dir, exist_ok=True)
    try:
        if args.model_dir:
            model_dir = resolve_model_dir(args.model_dir, os.path.join(work_dir, "cache"))
        else:
            model_dir = models.build_bench_model(os.path.join(work_dir, "model"), rows=args.train_rows).kfpkit_dir
        spec = PreprocessingSpec.load(os.path.join(model_dir, PREPROCESSING_FILE))
        requests = build_requests(spec, args.model_name, rows=args.rows, batch_size=args.batch_size)
        bodies_file = os.path.join(work_dir, "bodies.json")
        with open(bodies_file, "w", encoding="utf-8") as fh:
            json.dump({"requests": requests}, fh)

        port = servers.free_port()
        server = servers.ServerProcess(
            "kfpkit serve",
            servers.kfpkit_command(model_dir, args.model_name, port),
            port,
            f"/v2/models/{args.model_name}/ready",
            os.path.join(work_dir, "server.log"),
            cpu=0 if pin else None,
        )
        summary_file = os.path.join(work_dir, "locust_summary.json")
        emit(
            f"loadtest: {args.users} users, {args.run_time} s or {args.max_requests} requests, "
            f"{len(requests)} distinct requests ({args.batch_size} row(s) each), model {args.model_name} "
            f"from {args.model_dir or 'the benchmark LogisticRegression'}"
            + ("; server on CPU 0, locust on CPU 1" if pin else "")
        )
        with server:
            server.wait_ready()
            done = run_locust(
                server.base_url,
                bodies_file,
                summary_file,
                users=args.users,
                spawn_rate=args.spawn_rate or args.users,
                run_time_s=args.run_time,
                max_requests=args.max_requests,
                cpu=1 if pin else None,
            )
        if not os.path.isfile(summary_file):
            raise RuntimeError(f"locust wrote no statistics (exit {done.returncode}): {done.stderr[-2000:]}")
        stats = read_locust_summary(summary_file)
        emit(f"{'request':<12} {'requests':>9} {'failures':>8} {'rps':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
        for row in stats:
            emit(
                f"{row['name']:<12} {row['requests']:>9} {row['failures']:>8} {row['rps']:>8.0f} "
                f"{row['p50_ms']:>7.0f} {row['p95_ms']:>7.0f} {row['p99_ms']:>7.0f}"
            )
        aggregated = stats[-1]
        if aggregated["failures"] and done.stderr:
            emit(done.stderr[-2000:])
        return {"stats": stats, "aggregated": aggregated, "locust_returncode": done.returncode}
    finally:
        if owned is not None:
            owned.cleanup()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Exit status 0 when every request succeeded (and there were some), else 1."""
    args = build_parser().parse_args(argv)
    try:
        result = run_loadtest(args)
    except (servers.ServerError, RuntimeError, ValueError, OSError) as exc:
        print(f"loadtest failed: {exc}", file=sys.stderr)
        return 1
    aggregated = result["aggregated"]
    if aggregated["requests"] == 0 or aggregated["failures"] > 0:
        print(f"loadtest: {aggregated['failures']} of {aggregated['requests']} requests failed", file=sys.stderr)
        return 1
    print(f"loadtest passed: {aggregated['requests']} requests, 0 failures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
