"""``make bench-serving``, second part: the pipeline's real model served by kfpkit and by a plain KServe Model.

    python -m benchmarks.serving.bench_mlp [--duration 10] [--runs 3] [--concurrency 1 16] [--json-out FILE]

1. trains the pipeline's model on synthetic fraud data with train's own code
   (``kfpkit.components.train.logic.train_model``, ``framework="pytorch"``: the TorchScript MLP with
   embeddings for the categorical features, Platt calibration) and writes its manifest as push does;
2. serves it with ``kfpkit serve`` (defaults) and with :mod:`benchmarks.serving.kserve_torch_server` (a
   plain KServe custom Model on the same directory, KServe's defaults), each pinned to CPU 0;
3. checks both return the offline probabilities for 16 rows (max abs diff, fails above 1e-5);
4. sends both the same bytes -- a one-row v2 request, one input per feature (FP32 / INT64 / BYTES) -- from
   ``wrk`` (or the Python client) on CPU 1, ``--runs`` x ``--duration`` s per cell, interleaved; prints the
   medians (rps, p50, p99, server CPU per request), the kfpkit/KServe ratio and the goal (p99 <= 10 ms at 16
   connections). Loopback only; the servers are stopped whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from benchmarks.serving import loadgen, servers

MODEL_NAME = "fraud-mlp"
INFER_PATH = f"/v2/models/{MODEL_NAME}/infer"
READY_PATH = f"/v2/models/{MODEL_NAME}/ready"
LABELS = {"kfpkit": "kfpkit predictor, TorchScript MLP", "kserve": "plain KServe custom Model, same MLP"}
GOAL_P99_MS = 10.0
TOLERANCE = 1e-5


def build_mlp_dir(directory: str, rows: int = 20_000, epochs: int = 3) -> str:
    """Trains the pipeline's PyTorch model on ``generate_fraud(rows)`` and writes a servable version directory."""
    from kfpkit.components.ingest.synthetic import generate_fraud
    from kfpkit.components.train.logic import train_model
    from kfpkit.components.train.trainer import TrainParams
    from kfpkit.core import model_dir as md

    frame = generate_fraud(rows, seed=0)
    cut = int(len(frame) * 0.8)
    os.makedirs(directory, exist_ok=True)
    train_path, eval_path = os.path.join(directory, "train.parquet"), os.path.join(directory, "eval.parquet")
    frame.iloc[:cut].to_parquet(train_path)
    frame.iloc[cut:].to_parquet(eval_path)
    output = os.path.join(directory, "model")
    train_model(train_path, eval_path, "is_fraud", output, TrainParams(framework="pytorch", epochs=epochs))
    md.write_manifest(output)
    return output


def request_frame(model_dir: str, count: int, seed: int = 1) -> Any:
    """``count`` fresh rows of the model's features, floats rounded through float32 (every server reads the same)."""
    from kfpkit.components.ingest.synthetic import generate_fraud
    from kfpkit.core.model_dir import load_model

    spec = load_model(model_dir).spec
    frame = generate_fraud(count, seed=seed)[list(spec.feature_order)].copy()
    for name in spec.feature_order:
        if name not in spec.categorical_names and frame[name].dtype.kind == "f":
            frame[name] = frame[name].astype(np.float32).astype(np.float64)
    return frame


def body_for(model_dir: str, frame: Any) -> bytes:
    from kfpkit.core.model_dir import load_model
    from kfpkit.serving import payloads

    spec = load_model(model_dir).spec
    return payloads.dumps(payloads.v2_body(frame, spec.feature_order, spec.categorical_names, request_id="b"))


def check_equivalence(running: Dict[str, servers.ServerProcess], model_dir: str) -> Dict[str, float]:
    import httpx

    from kfpkit.core.model_dir import load_model

    frame = request_frame(model_dir, 16)
    expected = load_model(model_dir).predict_proba(frame)
    diffs = {}
    for key, server in running.items():
        response = httpx.post(
            server.base_url + INFER_PATH,
            content=body_for(model_dir, frame),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        if response.status_code != 200:
            raise RuntimeError(f"{server.label} answered {response.status_code}: {response.text[:500]}")
        out = {o["name"]: o for o in response.json()["outputs"]}
        diffs[key] = float(np.max(np.abs(np.asarray(out["probability"]["data"], dtype=np.float64) - expected)))
    if max(diffs.values()) > TOLERANCE:
        raise RuntimeError(f"servers disagree with the offline model: {diffs}")
    return diffs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving.bench_mlp", description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--json-out", default=None)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    generator = loadgen.resolve_generator(args.load_generator)
    pin = loadgen.can_pin(args.no_pin)
    server_cpu, client_cpu = (0, 1) if pin else (None, None)
    started = time.monotonic()
    print(f"bench-serving (real model): {generator}, pinned {pin}, loadavg {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="kfpkit-bench-mlp-") as work:
        model_dir = build_mlp_dir(os.path.join(work, "mlp"), rows=args.train_rows)
        body_file = os.path.join(work, "body.json")
        with open(body_file, "wb") as fh:
            fh.write(body_for(model_dir, request_frame(model_dir, 1)))
        procs = {}
        for key in ("kfpkit", "kserve"):
            port = servers.free_port()
            if key == "kfpkit":
                command = servers.kfpkit_command(model_dir, MODEL_NAME, port)
            else:
                command = [
                    sys.executable, "-m", "benchmarks.serving.kserve_torch_server", "--model_dir", model_dir,
                    "--model_name", MODEL_NAME, "--http_port", str(port), "--enable_grpc", "false",
                ]  # fmt: skip
            procs[key] = servers.ServerProcess(
                LABELS[key], command, port, READY_PATH, os.path.join(work, f"{key}.log"), cpu=server_cpu
            )
        cells: Dict[tuple, List[Any]] = {(k, c): [] for k in procs for c in args.concurrency}
        with servers.ServerGroup(list(procs.values())):
            diffs = check_equivalence(procs, model_dir)
            print("  same probabilities for 16 rows, max abs diff vs offline: " + ", ".join(
                f"{k} {d:.1e}" for k, d in diffs.items()), flush=True)  # fmt: skip
            for proc in procs.values():
                loadgen.run_load(generator, proc.base_url + INFER_PATH, body_file, 16, args.warmup, cpu=client_cpu)
            for run in range(args.runs):
                for c in args.concurrency:
                    for key, proc in procs.items():
                        before = proc.cpu_seconds()
                        r = loadgen.run_load(
                            generator, proc.base_url + INFER_PATH, body_file, c, args.duration, cpu=client_cpu
                        )
                        cpu_us = (proc.cpu_seconds() - before) * 1e6 / max(r.requests, 1)
                        cells[(key, c)].append((r, cpu_us))
                        print(
                            f"  run {run + 1}/{args.runs} {key:<7} c={c:<3} {r.rps:>7.0f} rps  p50 {r.p50_ms:6.2f} ms  "
                            f"p99 {r.p99_ms:6.2f} ms  CPU {cpu_us:5.0f} us/req  errors {r.errors + r.non_2xx}  "
                            f"(loadavg {os.getloadavg()[0]:.2f})",
                            flush=True,
                        )
    rows = []
    print(f"\nmedians over {args.runs} run(s) of {args.duration:g} s, one-row v2 per-feature requests:")
    print(f"{'server':<36}  {'conns':>5}  {'rps':>7}  {'p50 ms':>7}  {'p99 ms':>7}  {'CPU us/req':>10}  {'failed':>6}")
    for c in args.concurrency:
        for key in procs:
            runs = cells[(key, c)]
            row = {
                "server": key,
                "connections": c,
                "rps": statistics.median(r.rps for r, _ in runs),
                "p50_ms": statistics.median(r.p50_ms for r, _ in runs),
                "p99_ms": statistics.median(r.p99_ms for r, _ in runs),
                "cpu_us_per_request": statistics.median(cpu for _, cpu in runs),
                "failures": sum(r.errors + r.non_2xx for r, _ in runs),
            }
            rows.append(row)
            print(
                f"{LABELS[key]:<36}  {c:>5}  {row['rps']:>7.0f}  {row['p50_ms']:>7.2f}  {row['p99_ms']:>7.2f}  "
                f"{row['cpu_us_per_request']:>10.0f}  {row['failures']:>6}"
            )
    by = {(r["server"], r["connections"]): r for r in rows}
    for c in args.concurrency:
        ratio = by[("kfpkit", c)]["rps"] / max(by[("kserve", c)]["rps"], 1e-9)
        print(f"rps ratio at {c:>2} connection(s): kfpkit/KServe {ratio:.2f}x")
    if ("kfpkit", 16) in by:
        p99 = by[("kfpkit", 16)]["p99_ms"]
        verdict = "met" if p99 <= GOAL_P99_MS else "NOT met"
        print(f"goal: kfpkit p99 at 16 connections <= {GOAL_P99_MS:g} ms (real MLP): {p99:.2f} ms -> {verdict}")
    print(f"loadavg after {os.getloadavg()[0]:.2f} ({time.monotonic() - started:.0f} s)")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump({"generator": generator, "equivalence": diffs, "cells": rows}, fh, indent=2)
    return 1 if any(r["failures"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
