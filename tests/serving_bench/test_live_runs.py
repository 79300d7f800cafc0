"""Tiny bounded runs of the load generators, the locust load test and the benchmark on 127.0.0.1.

They check the plumbing (requests are made, answered 200, counted; servers are stopped), never speed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from kfpkit.serving.bench import bench_serving, loadgen, loadtest, models, servers

pytestmark = pytest.mark.filterwarnings("ignore::fastapi.exceptions.FastAPIDeprecationWarning")
INFER = f"/v2/models/{bench_serving.MODEL_NAME}/infer"


@pytest.fixture(scope="module")
def kfpkit_server(bench_model, tmp_path_factory):
    """``kfpkit serve`` of the bench model on a free loopback port, stopped after the module."""
    work = tmp_path_factory.mktemp("kfpkit-server")
    port = servers.free_port()
    server = servers.ServerProcess(
        "kfpkit",
        servers.kfpkit_command(bench_model.kfpkit_dir, bench_serving.MODEL_NAME, port),
        port,
        bench_serving.READY_PATH,
        str(work / "server.log"),
    )
    body_file = work / "body.json"
    body_file.write_bytes(bench_serving.server_bodies(models.request_rows(1))["kfpkit"])
    with server:
        server.wait_ready()
        yield server, str(body_file)
    assert server.process is not None and server.process.poll() is not None


def test_python_load_generator_counts_successful_requests(kfpkit_server):
    server, body_file = kfpkit_server
    with open(body_file, "rb") as fh:
        body = fh.read()

    result = loadgen.run_python_load(server.base_url + INFER, body, connections=2, duration_s=1.0)

    assert result.generator == "python-asyncio" and result.connections == 2
    assert result.requests > 0 and result.errors == 0 and result.non_2xx == 0
    assert 0 < result.p50_ms <= result.p99_ms
    assert result.rps == pytest.approx(result.requests / result.duration_s)


def test_python_load_generator_counts_error_statuses_as_non_2xx(kfpkit_server, tmp_path):
    server, _ = kfpkit_server

    result = loadgen.run_python_load(server.base_url + INFER, b'{"inputs": []}', connections=1, duration_s=0.5)

    assert result.requests > 0 and result.non_2xx == result.requests and result.errors == 0


@pytest.mark.skipif(not loadgen.wrk_available(), reason="wrk is not installed (apt-get install -y wrk)")
def test_wrk_reports_requests_latencies_and_no_errors(kfpkit_server):
    server, body_file = kfpkit_server

    result = loadgen.run_wrk(server.base_url + INFER, body_file, connections=2, duration_s=1)

    assert result.generator == "wrk"
    assert result.requests > 0 and result.errors == 0 and result.non_2xx == 0
    assert 0 < result.p50_ms <= result.p99_ms


@pytest.mark.skipif(not loadgen.wrk_available(), reason="wrk is not installed (apt-get install -y wrk)")
def test_wrk_counts_error_statuses(kfpkit_server, tmp_path):
    server, _ = kfpkit_server
    bad = tmp_path / "bad.json"
    bad.write_text('{"inputs": []}')

    result = loadgen.run_wrk(server.base_url + INFER, str(bad), connections=1, duration_s=1)

    assert result.requests > 0 and result.non_2xx == result.requests


def test_loadtest_runs_headless_against_loopback_kfpkit_until_max_requests_with_no_failures(bench_model, tmp_path):
    args = loadtest.build_parser().parse_args(
        ["--model-dir", bench_model.kfpkit_dir, "--run-time", "30", "--users", "2", "--max-requests", "60",
         "--rows", "8", "--work-dir", str(tmp_path)]
    )  # fmt: skip

    result = loadtest.run_loadtest(args, emit=lambda line: None)

    aggregated = result["aggregated"]
    assert aggregated["name"] == "Aggregated"
    assert 60 <= aggregated["requests"] < 300  # stopped by the request count, long before 30 s
    assert aggregated["failures"] == 0
    assert {row["name"] for row in result["stats"][:-1]} == {"v1 objects", "v1 rows", "v2 inputs", "v2 tensor"}
    assert sum(row["requests"] for row in result["stats"][:-1]) == aggregated["requests"]
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_locust_refuses_a_host_outside_the_loopback_range(tmp_path):
    bodies = tmp_path / "bodies.json"
    bodies.write_text('{"requests": [{"path": "/", "body": {}}]}')

    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", loadtest.LOCUSTFILE, "--headless", "--host", "http://0.0.0.0:9",
         "-u", "1", "-r", "1", "--run-time", "1s", "--bodies-file", str(bodies)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 2
    assert "refusing to load-test 'http://0.0.0.0:9'" in done.stderr


@pytest.mark.slow
def test_benchmark_runs_every_server_checks_equivalence_and_stops_them(tmp_path, mlserver_bin, processes_mentioning):
    keys = ["kfpkit", "kserve"] + (["mlserver"] if os.path.isfile(mlserver_bin) else [])
    args = bench_serving.build_parser().parse_args(
        ["--servers", *keys, "--duration", "1", "--runs", "1", "--concurrency", "2", "--warmup", "0",
         "--load-generator", "python", "--train-rows", "2000", "--work-dir", str(tmp_path),
         "--json-out", str(tmp_path / "result.json")]
    )  # fmt: skip
    lines = []

    result = bench_serving.run_benchmark(args, emit=lines.append)

    assert isinstance(args, argparse.Namespace) and (tmp_path / "result.json").is_file()
    assert set(result["equivalence_max_abs_diff"]) == set(keys)
    assert max(result["equivalence_max_abs_diff"].values()) < bench_serving.EQUIVALENCE_TOLERANCE
    assert {c["server"] for c in result["cells"]} == set(keys)
    for cell in result["cells"]:
        assert cell["rps"] > 0 and cell["failures"] == 0 and cell["cpu_us_per_request"] > 0
    assert "rps ratio at  2 connection(s): kfpkit/KServe" in "\n".join(lines)
    assert processes_mentioning(str(tmp_path)) == []
