"""``make bench-serving``: the same LogisticRegression served by kfpkit, MLServer and KServe's sklearnserver.

    python -m benchmarks.serving.bench_serving [--duration 10] [--runs 3] [--concurrency 1 16]
        [--servers kfpkit mlserver kserve] [--mlserver-bin .venv-mlserver/bin/mlserver] [--json-out FILE]

What it does:

1. trains one LogisticRegression on the numeric columns of the synthetic fraud data and writes it for each
   server (:mod:`benchmarks.serving.models`): a kfpkit model version directory (preprocessing spec +
   skops model + manifest) and a joblib ``Pipeline(StandardScaler, the same LogisticRegression)``;
2. starts the servers on free 127.0.0.1 ports, each pinned to CPU 0 (``taskset -c 0``):

   * **kfpkit**: ``kfpkit serve`` with its defaults (KServe ModelServer + kfpkit's fast path);
   * **MLServer**: ``mlserver start`` with ``mlserver_sklearn.SKLearnModel`` from its own virtualenv
     (``.venv-mlserver``, ``requirements/mlserver.lock``), MLServer's defaults (one inference worker
     process, debug/access log on), ``predict_fn: predict_proba``;
   * **limit**: :mod:`benchmarks.serving.limit_server`, a bare ASGI app (uvicorn + uvloop + httptools, no
     access log) with orjson and one numpy dot product on the same weights -- what any Python server
     needs at least for this request;
   * **KServe custom Model (sklearnserver-equivalent)**: KServe's sklearnserver is not on PyPI, so
     :mod:`benchmarks.serving.kserve_sklearn_server` reproduces its ``SKLearnModel`` on the installed
     kserve 0.21 ``Model`` + ``ModelServer`` (KServe's defaults, ``PREDICT_PROBA=true``);

3. checks that all servers return the same probabilities as the offline model for a batch of rows (prints
   the largest absolute difference; fails above 1e-5);
4. sends every server the *same bytes*: one-row v2 requests, ONE FP32 tensor ``[1, 5]`` in feature order,
   from a closed-loop load generator pinned to CPU 1 (``wrk`` when installed, else a Python asyncio client)
   at each concurrency, ``--runs`` times for ``--duration`` seconds, interleaving servers so that background
   load affects them alike;
5. prints the medians (requests/s, p50, p99, and the server's CPU time per request -- process and children,
   from /proc -- which other load on a shared machine disturbs far less than requests/s), the kfpkit/MLServer
   and kfpkit/KServe ratios, and the goal check (issue 8, v2 at 16 connections: at least 0.6x the
   limit row, at least 5x the KServe sklearnserver-equivalent, p99 at most 5 ms). A benchmark, not a
   test: missed goals are reported, not failed. Every server is stopped at the end, whatever happens;
6. then sends every server batched requests -- one FP32 tensor ``[--batch-rows, 5]`` (default 1,000 rows,
   checked against the offline model like the 16 rows) from ``--batch-connections`` connections -- and
   prints rows/s, per-request p50/p99 and server CPU per row, with the kfpkit/peer rows/s ratios
   (``--batch-rows 0`` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.serving import loadgen, models, servers

MODEL_NAME = "fraud-lr"
INFER_PATH = f"/v2/models/{MODEL_NAME}/infer"
READY_PATH = f"/v2/models/{MODEL_NAME}/ready"
SERVER_KEYS = ("kfpkit", "mlserver", "kserve")
ALL_KEYS = ("kfpkit", "limit", "mlserver", "kserve")  # the limit row is not a peer, but measured in the same run
LABELS = {
    "kfpkit": "kfpkit predictor (fast path)",
    "limit": "limit: bare ASGI + orjson + numpy dot",
    "mlserver": "MLServer (mlserver-sklearn)",
    "kserve": "KServe custom Model (sklearnserver-equivalent)",
}
PEER_NAMES = {"mlserver": "MLServer", "kserve": "KServe", "limit": "limit"}  # in the ratio lines
GOAL_RATIO = 5.0  # vs the KServe sklearnserver-equivalent (issue 8)
GOAL_LIMIT_RATIO = 0.6  # kfpkit rps / limit rps
GOAL_P99_MS = 5.0
GOAL_CONNECTIONS = 16
EQUIVALENCE_TOLERANCE = 1e-5


# ---------------------------------------------------------------------------------------------- payloads
def tensor_body(rows: np.ndarray) -> Dict[str, Any]:
    """The v2 request every server gets: one FP32 tensor ``[n, k]`` named ``features``, row-major data.

    kfpkit accepts it because every feature of the model is numeric; MLServer's sklearn runtime and KServe's
    ``get_predict_input`` decode the first input as a numpy array whatever its name.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2:
        raise ValueError(f"rows must be a 2-d array, got shape {rows.shape}")
    return {
        "inputs": [{"name": "features", "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}]
    }


def server_bodies(rows: np.ndarray, keys: Sequence[str] = SERVER_KEYS) -> Dict[str, bytes]:
    """The request body of each server, serialized: the same bytes for all of them."""
    body = json.dumps(tensor_body(rows), separators=(",", ":")).encode()
    return {key: body for key in keys}


def positive_probability(key: str, response: Dict[str, Any]) -> np.ndarray:
    """Positive-class probabilities out of one server's v2 response.

    kfpkit answers ``probability`` ``[n]``; MLServer (``predict_proba``) and KServe (``output-0``) answer
    ``predict_proba``'s ``[n, 2]`` matrix, flattened row-major.
    """
    outputs = {o["name"]: o for o in response["outputs"]}
    if key in ("kfpkit", "limit"):
        return np.asarray(outputs["probability"]["data"], dtype=np.float64)
    name = "predict_proba" if key == "mlserver" else "output-0"
    out = outputs[name]
    return np.asarray(out["data"], dtype=np.float64).reshape(out["shape"])[:, 1]


# ---------------------------------------------------------------------------------------------- servers
def default_mlserver_bin() -> str:
    """``<folder of the running virtualenv>/.venv-mlserver/bin/mlserver``."""
    return os.path.join(os.path.dirname(sys.prefix), ".venv-mlserver", "bin", "mlserver")


def make_servers(
    keys: Sequence[str],
    model: models.BenchModel,
    work_dir: str,
    mlserver_bin: str,
    cpu: Optional[int],
    mlserver_parallel_workers: Optional[int] = None,
    quiet_peers: bool = False,
) -> Dict[str, servers.ServerProcess]:
    """Server processes (not started) for ``keys``, on free loopback ports, logging into ``work_dir``."""
    out: Dict[str, servers.ServerProcess] = {}
    for key in keys:
        log_path = os.path.join(work_dir, f"{key}.log")
        port = servers.free_port()
        if key == "kfpkit":
            command = servers.kfpkit_command(model.kfpkit_dir, MODEL_NAME, port)
            env: Dict[str, str] = {}
        elif key == "limit":
            command = [
                sys.executable, "-m", "benchmarks.serving.limit_server", "--joblib", model.joblib_path,
                "--model-name", MODEL_NAME, "--port", str(port),
            ]  # fmt: skip
            env = {}
        elif key == "kserve":
            command = servers.kserve_sklearn_command(model.joblib_dir, MODEL_NAME, port, quiet=quiet_peers)
            env = {"PREDICT_PROBA": "true"}
        elif key == "mlserver":
            if not os.path.isfile(mlserver_bin):
                raise FileNotFoundError(f"MLServer not found at {mlserver_bin}: run 'make setup-mlserver'")
            repository = servers.write_mlserver_settings(
                os.path.join(work_dir, "mlserver-repository"),
                model.joblib_path,
                MODEL_NAME,
                http_port=port,
                grpc_port=servers.free_port(),
                metrics_port=servers.free_port(),
                parallel_workers=mlserver_parallel_workers,
                debug=False if quiet_peers else None,
            )
            command = servers.mlserver_command(mlserver_bin, repository)
            env = {}
        else:
            raise ValueError(f"unknown server {key!r}; choose from {ALL_KEYS}")
        out[key] = servers.ServerProcess(LABELS[key], command, port, READY_PATH, log_path, cpu=cpu, env=env)
    return out


def write_bodies(rows: np.ndarray, keys: Sequence[str], work_dir: str, name: str) -> Dict[str, str]:
    """Writes each server's request body for ``rows`` to ``<work_dir>/body-<server>-<name>.json``; the paths."""
    paths = {}
    for key, body in server_bodies(rows, keys).items():
        paths[key] = os.path.join(work_dir, f"body-{key}-{name}.json")
        with open(paths[key], "wb") as fh:
            fh.write(body)
    return paths


def check_equivalence(
    running: Dict[str, servers.ServerProcess], model: models.BenchModel, rows: np.ndarray
) -> Dict[str, float]:
    """Max |server probability - offline probability| per server for ``rows`` sent as one request.

    The offline reference is kfpkit's ``load_model(...).predict_proba`` (what evaluate computes).

    Raises:
        RuntimeError: a server answered with an error, or differs by more than ``EQUIVALENCE_TOLERANCE``.
    """
    import httpx
    import pandas as pd

    from kfpkit.core.model_dir import load_model

    expected = load_model(model.kfpkit_dir).predict_proba(pd.DataFrame(rows, columns=model.feature_order))
    bodies = server_bodies(rows, list(running))
    diffs: Dict[str, float] = {}
    for key, server in running.items():
        response = httpx.post(
            server.base_url + INFER_PATH,
            content=bodies[key],
            headers={"content-type": "application/json"},
            timeout=30.0,
        )
        if response.status_code != 200:
            raise RuntimeError(f"{server.label} answered {response.status_code}: {response.text[:500]}")
        got = positive_probability(key, response.json())
        if got.shape != expected.shape:
            raise RuntimeError(f"{server.label} returned {got.shape} probabilities for {expected.shape} rows")
        diffs[key] = float(np.max(np.abs(got - expected)))
    worst = max(diffs.values())
    if worst > EQUIVALENCE_TOLERANCE:
        raise RuntimeError(f"servers disagree with the offline model: max abs diff {diffs} > {EQUIVALENCE_TOLERANCE}")
    return diffs


# ---------------------------------------------------------------------------------------------- results
@dataclass
class Cell:
    """The runs of one server at one concurrency."""

    key: str
    connections: int
    runs: List[loadgen.LoadResult] = field(default_factory=list)
    cpu_us_per_request: List[float] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        if attribute == "cpu_us_per_request":
            return float(statistics.median(self.cpu_us_per_request)) if self.cpu_us_per_request else float("nan")
        return float(statistics.median(getattr(r, attribute) for r in self.runs))

    @property
    def failures(self) -> int:
        return sum(r.errors + r.non_2xx for r in self.runs)


def format_table(cells: Dict[tuple, Cell], keys: Sequence[str], concurrencies: Sequence[int]) -> str:
    """The medians table plus the ratio lines."""
    width = max(len(LABELS[k]) for k in keys)
    lines = [
        f"{'server':<{width}}  {'conns':>5}  {'rps':>9}  {'p50 ms':>7}  {'p99 ms':>7}  {'CPU us/req':>10}  "
        f"{'runs':>4}  {'failed':>6}",
        "-" * (width + 61),
    ]
    for c in concurrencies:
        for key in keys:
            cell = cells[(key, c)]
            lines.append(
                f"{LABELS[key]:<{width}}  {c:>5}  {cell.median('rps'):>9.0f}  {cell.median('p50_ms'):>7.2f}  "
                f"{cell.median('p99_ms'):>7.2f}  {cell.median('cpu_us_per_request'):>10.0f}  {len(cell.runs):>4}  "
                f"{cell.failures:>6}"
            )
    if "kfpkit" in keys:
        lines.append("")
        for c in concurrencies:
            kfpkit_rps = cells[("kfpkit", c)].median("rps")
            kfpkit_cpu = cells[("kfpkit", c)].median("cpu_us_per_request")
            parts = []
            for key in keys:
                if key != "kfpkit":
                    peer = cells[(key, c)].median("rps")
                    ratio = kfpkit_rps / peer if peer > 0 else float("inf")
                    cpu_ratio = cells[(key, c)].median("cpu_us_per_request") / kfpkit_cpu if kfpkit_cpu > 0 else 0.0
                    name = PEER_NAMES[key]
                    parts.append(f"kfpkit/{name} {ratio:.2f}x (server CPU per request: {name} {cpu_ratio:.2f}x)")
            if parts:
                lines.append(f"rps ratio at {c:>2} connection(s): " + "; ".join(parts))
    return "\n".join(lines)


def format_batch_table(cells: Dict[str, Cell], keys: Sequence[str], batch_rows: int) -> str:
    """The batched-requests table: rows/s, per-request latency, server CPU per row, kfpkit/peer ratios."""
    width = max(len(LABELS[k]) for k in keys)
    lines = [
        f"{'server':<{width}}  {'conns':>5}  {'rows/s':>10}  {'p50 ms':>7}  {'p99 ms':>7}  {'CPU us/row':>10}  "
        f"{'runs':>4}  {'failed':>6}",
        "-" * (width + 63),
    ]
    for key in keys:
        cell = cells[key]
        lines.append(
            f"{LABELS[key]:<{width}}  {cell.connections:>5}  {cell.median('rps') * batch_rows:>10.0f}  "
            f"{cell.median('p50_ms'):>7.2f}  {cell.median('p99_ms'):>7.2f}  "
            f"{cell.median('cpu_us_per_request') / batch_rows:>10.2f}  {len(cell.runs):>4}  {cell.failures:>6}"
        )
    if "kfpkit" in keys and len(keys) > 1:
        kfpkit_rps = cells["kfpkit"].median("rps")
        parts = []
        for key in keys:
            if key != "kfpkit":
                peer = cells[key].median("rps")
                parts.append(f"kfpkit/{PEER_NAMES[key]} {kfpkit_rps / peer if peer > 0 else float('inf'):.2f}x")
        lines.append("")
        lines.append(f"rows/s ratio, {batch_rows}-row requests: " + "; ".join(parts))
    return "\n".join(lines)


def _measure(
    generator: str,
    server: servers.ServerProcess,
    body_file: str,
    connections: int,
    duration: float,
    client_cpu: Optional[int],
    cell: Cell,
) -> loadgen.LoadResult:
    """One closed-loop run against ``server``, recorded in ``cell`` with the server's CPU per request."""
    cpu_before = server.cpu_seconds()
    result = loadgen.run_load(generator, server.base_url + INFER_PATH, body_file, connections, duration, client_cpu)
    cell.runs.append(result)
    cell.cpu_us_per_request.append((server.cpu_seconds() - cpu_before) * 1e6 / max(result.requests, 1))
    if server.process is not None and server.process.poll() is not None:
        raise servers.ServerError(f"{server.label} died:\n{server.log_tail()}")
    return result


def goal_lines(cells: Dict[tuple, Cell], keys: Sequence[str]) -> List[str]:
    """The issue's goal, checked on the medians (reported, never failed)."""
    c = GOAL_CONNECTIONS
    if "kfpkit" not in keys or ("kfpkit", c) not in cells:
        return []
    kfpkit_cell = cells[("kfpkit", c)]
    out = []
    for key in keys:
        if key in {"kfpkit", "mlserver"}:
            continue
        goal = GOAL_LIMIT_RATIO if key == "limit" else GOAL_RATIO
        ratio = kfpkit_cell.median("rps") / max(cells[(key, c)].median("rps"), 1e-9)
        verdict = "met" if ratio >= goal else "NOT met"
        out.append(f"goal: v2 rps at {c} connections >= {goal:g}x {LABELS[key]}: {ratio:.2f}x -> {verdict}")
    p99 = kfpkit_cell.median("p99_ms")
    out.append(
        f"goal: kfpkit p99 at {c} connections <= {GOAL_P99_MS:g} ms: {p99:.2f} ms -> "
        f"{'met' if p99 <= GOAL_P99_MS else 'NOT met'}"
    )
    return out


def _versions(mlserver_bin: str) -> Dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("kserve", "scikit-learn", "numpy", "uvicorn", "orjson"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    if os.path.isfile(mlserver_bin):
        done = subprocess.run([mlserver_bin, "--version"], capture_output=True, text=True, timeout=60, check=False)
        out["mlserver"] = done.stdout.strip().rsplit(" ", 1)[-1] if done.returncode == 0 else "?"
    if loadgen.wrk_available():
        done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10, check=False)
        out["wrk"] = (done.stdout or done.stderr).split(" [", 1)[0].replace("wrk ", "")
    return out


# ---------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving.bench_serving",
        description="Benchmark kfpkit's predictor against MLServer and KServe's sklearnserver (loopback only).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--servers", nargs="+", default=list(ALL_KEYS), choices=ALL_KEYS)
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 16], help="connections per cell")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--runs", type=int, default=3, help="runs per cell (the table shows medians)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load per server before measuring")
    parser.add_argument(
        "--load-generator", choices=["auto", "wrk", "python"], default="auto", help="auto: wrk when installed"
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the servers are pinned to")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU the load generator is pinned to")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and load generator to CPUs")
    parser.add_argument("--mlserver-bin", default=default_mlserver_bin(), help="mlserver executable")
    parser.add_argument(
        "--mlserver-parallel-workers",
        type=int,
        default=None,
        help="MLServer's parallel_workers (default: MLServer's own default, 1; 0 = infer in the server process)",
    )
    parser.add_argument(
        "--quiet-peers",
        action="store_true",
        help="turn off per-request logging of MLServer (debug=false) and KServe (no logging setup, no latency "
        "log); kfpkit's fast path never logs per request",
    )
    parser.add_argument(
        "--batch-rows", type=int, default=1000, help="rows per request of the batched part (0: skip it)"
    )
    parser.add_argument("--batch-connections", type=int, default=4, help="connections of the batched part")
    parser.add_argument("--batch-duration", type=float, default=5.0, help="seconds per batched run")
    parser.add_argument("--train-rows", type=int, default=models.DEFAULT_TRAIN_ROWS)
    parser.add_argument("--work-dir", default=None, help="where models and server logs go (default: a temp dir)")
    parser.add_argument("--json-out", default=None, help="also write every run and the medians as JSON here")
    return parser


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuses durations, run counts, concurrencies and batch options that no run can use, before anything starts."""
    if args.duration <= 0 or args.runs < 1 or not args.concurrency or min(args.concurrency) < 1:
        raise ValueError("--duration must be > 0, --runs >= 1 and every --concurrency >= 1")
    if args.batch_rows < 0 or (args.batch_rows and (args.batch_connections < 1 or args.batch_duration <= 0)):
        raise ValueError("--batch-rows must be >= 0, --batch-connections >= 1 and --batch-duration > 0")


def _measure_one_row(
    args: argparse.Namespace,
    generator: str,
    procs: Dict[str, servers.ServerProcess],
    body_files: Dict[str, str],
    cells: Dict[tuple, Cell],
    client_cpu: Optional[int],
    emit: Callable[[str], None],
) -> None:
    """Warms every server up, then measures every (concurrency, server) cell once per run with one-row bodies."""
    keys = list(procs)
    for key in keys:
        if args.warmup > 0:
            loadgen.run_load(
                generator,
                procs[key].base_url + INFER_PATH,
                body_files[key],
                max(args.concurrency),
                args.warmup,
                cpu=client_cpu,
            )
    for run in range(args.runs):
        for c in args.concurrency:
            for key in keys:
                cell = cells[(key, c)]
                result = _measure(generator, procs[key], body_files[key], c, args.duration, client_cpu, cell)
                emit(
                    f"  run {run + 1}/{args.runs} {key:<8} c={c:<3} {result.rps:>8.0f} rps  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                    f"CPU {cell.cpu_us_per_request[-1]:5.0f} us/req  "
                    f"errors {result.errors} non-2xx {result.non_2xx}  (loadavg {os.getloadavg()[0]:.2f})"
                )


def _measure_batched(
    args: argparse.Namespace,
    generator: str,
    procs: Dict[str, servers.ServerProcess],
    batch_files: Dict[str, str],
    batch_cells: Dict[str, Cell],
    client_cpu: Optional[int],
    emit: Callable[[str], None],
) -> None:
    """Measures every server once per run with ``--batch-rows``-row bodies on ``--batch-connections``."""
    for run in range(args.runs):
        for key, server in procs.items():
            cell = batch_cells[key]
            result = _measure(
                generator, server, batch_files[key], args.batch_connections, args.batch_duration,
                client_cpu, cell,
            )  # fmt: skip
            emit(
                f"  run {run + 1}/{args.runs} {key:<8} {args.batch_rows}-row c={args.batch_connections:<3}"
                f" {result.rps * args.batch_rows:>9.0f} rows/s  p50 {result.p50_ms:6.2f} ms  "
                f"p99 {result.p99_ms:6.2f} ms  CPU {cell.cpu_us_per_request[-1] / args.batch_rows:6.2f} "
                f"us/row  errors {result.errors} non-2xx {result.non_2xx}"
            )


def _emit_header(
    args: argparse.Namespace,
    keys: Sequence[str],
    generator: str,
    pin: bool,
    versions: Dict[str, str],
    load_before: Tuple[float, float, float],
    emit: Callable[[str], None],
) -> None:
    """The lines before any measurement: the servers, the CPUs of servers and load generator, the versions."""
    emit(f"kfpkit serving benchmark: {', '.join(LABELS[k] for k in keys)}")
    emit(
        f"  {os.cpu_count() or 1} CPUs; servers on CPU {args.server_cpu if pin else '-'}, "
        f"load generator ({generator}) on CPU "
        f"{args.client_cpu if pin else '-'}; {args.runs} run(s) x {args.duration:g} s per cell; "
        f"loadavg before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}"
    )
    emit("  versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if generator == "python":
        emit("  note: the Python load generator saturates near a few thousand rps; install wrk for fair figures")


def _emit_medians(
    args: argparse.Namespace,
    generator: str,
    keys: Sequence[str],
    cells: Dict[tuple, Cell],
    batch_cells: Dict[str, Cell],
    emit: Callable[[str], None],
) -> List[str]:
    """The medians tables (one-row, then batched when measured) and the goal lines; returns the goal lines."""
    emit("")
    emit(f"medians over {args.runs} run(s) of {args.duration:g} s, one-row v2 FP32 [1, 5] requests, {generator}:")
    emit(format_table(cells, keys, args.concurrency))
    goals = goal_lines(cells, keys)
    for line in goals:
        emit(line)
    if batch_cells:
        emit("")
        emit(
            f"medians over {args.runs} run(s) of {args.batch_duration:g} s, {args.batch_rows}-row v2 FP32 "
            f"[{args.batch_rows}, 5] requests, {generator}:"
        )
        emit(format_batch_table(batch_cells, keys, args.batch_rows))
    return goals


def run_benchmark(args: argparse.Namespace, emit: Callable[[str], None] = print) -> Dict[str, Any]:
    """Runs the benchmark described by parsed ``args``; returns the results (also printed through ``emit``)."""
    _check_arguments(args)
    generator = loadgen.resolve_generator(args.load_generator)
    if generator == "wrk" and not loadgen.wrk_available():
        raise FileNotFoundError("wrk is not installed (apt-get install -y wrk), or use --load-generator python")
    pin = loadgen.can_pin(args.no_pin)
    server_cpu = args.server_cpu if pin else None
    client_cpu = args.client_cpu if pin else None
    keys = list(dict.fromkeys(args.servers))

    owned_dir = None
    if args.work_dir is None:
        owned_dir = tempfile.TemporaryDirectory(prefix="kfpkit-bench-")
        work_dir = owned_dir.name
    else:
        work_dir = args.work_dir
        os.makedirs(work_dir, exist_ok=True)
    try:
        versions = _versions(args.mlserver_bin if "mlserver" in keys else "")
        load_before = os.getloadavg()
        _emit_header(args, keys, generator, pin, versions, load_before, emit)

        model = models.build_bench_model(os.path.join(work_dir, "model"), rows=args.train_rows)
        rows = models.request_rows(16)
        body_files = write_bodies(rows[:1], keys, work_dir, "1-row")
        emit(f"  request: POST {INFER_PATH}, {os.path.getsize(body_files[keys[0]])} bytes, identical for every server")
        batch_rows = models.request_rows(args.batch_rows, seed=2) if args.batch_rows else None
        batch_files = {}
        if batch_rows is not None:
            batch_files = write_bodies(batch_rows, keys, work_dir, f"{args.batch_rows}-rows")

        procs = make_servers(
            keys,
            model,
            work_dir,
            args.mlserver_bin,
            server_cpu,
            mlserver_parallel_workers=args.mlserver_parallel_workers,
            quiet_peers=args.quiet_peers,
        )
        cells: Dict[tuple, Cell] = {(k, c): Cell(k, c) for k in keys for c in args.concurrency}
        batch_cells: Dict[str, Cell] = {k: Cell(k, args.batch_connections) for k in keys} if batch_files else {}
        with servers.ServerGroup(list(procs.values())):
            diffs = check_equivalence(procs, model, rows)
            emit(
                "  same probabilities for 16 rows, max abs diff vs offline kfpkit model: "
                + ", ".join(f"{k} {d:.1e}" for k, d in diffs.items())
            )
            _measure_one_row(args, generator, procs, body_files, cells, client_cpu, emit)
            if batch_rows is not None:
                diffs_batch = check_equivalence(procs, model, batch_rows)
                emit(
                    f"  same probabilities for {args.batch_rows} rows, max abs diff vs offline: "
                    + ", ".join(f"{k} {d:.1e}" for k, d in diffs_batch.items())
                )
                _measure_batched(args, generator, procs, batch_files, batch_cells, client_cpu, emit)
        load_after = os.getloadavg()
        goals = _emit_medians(args, generator, keys, cells, batch_cells, emit)
        emit(f"loadavg after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
        result = {
            "generator": generator,
            "pinned": pin,
            "versions": versions,
            "loadavg_before": list(load_before),
            "loadavg_after": list(load_after),
            "equivalence_max_abs_diff": diffs,
            "cells": [
                {
                    "server": cell.key,
                    "label": LABELS[cell.key],
                    "connections": cell.connections,
                    "rps": cell.median("rps"),
                    "p50_ms": cell.median("p50_ms"),
                    "p99_ms": cell.median("p99_ms"),
                    "cpu_us_per_request": cell.median("cpu_us_per_request"),
                    "failures": cell.failures,
                    "runs": [
                        {**r.to_dict(), "cpu_us_per_request": cpu}
                        for r, cpu in zip(cell.runs, cell.cpu_us_per_request, strict=True)
                    ],
                }
                for cell in cells.values()
            ],
            "goals": goals,
            "batch": None
            if not batch_cells
            else {
                "rows_per_request": args.batch_rows,
                "connections": args.batch_connections,
                "duration_s": args.batch_duration,
                "equivalence_max_abs_diff": diffs_batch,
                "cells": [
                    {
                        "server": cell.key,
                        "rows_per_s": cell.median("rps") * args.batch_rows,
                        "p50_ms": cell.median("p50_ms"),
                        "p99_ms": cell.median("p99_ms"),
                        "cpu_us_per_row": cell.median("cpu_us_per_request") / args.batch_rows,
                        "failures": cell.failures,
                        "runs": [
                            {**r.to_dict(), "cpu_us_per_row": cpu / args.batch_rows}
                            for r, cpu in zip(cell.runs, cell.cpu_us_per_request, strict=True)
                        ],
                    }
                    for cell in batch_cells.values()
                ],
            },
        }
        if args.json_out:
            with open(args.json_out, "w", encoding="utf-8") as fh:
                json.dump(result, fh, indent=2)
        return result
    finally:
        if owned_dir is not None:
            owned_dir.cleanup()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the benchmark; 1 when a server fails to start, disagrees with the model, or errors under load."""
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    try:
        result = run_benchmark(args)
    except (servers.ServerError, RuntimeError, FileNotFoundError, ValueError) as exc:
        print(f"bench-serving failed: {exc}", file=sys.stderr)
        return 1
    print(f"({time.monotonic() - started:.0f} s)")
    failed = sum(c["failures"] for c in result["cells"]) + sum(
        c["failures"] for c in (result["batch"] or {}).get("cells", [])
    )
    if failed:
        print(f"bench-serving: {failed} failed request(s) under load", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
