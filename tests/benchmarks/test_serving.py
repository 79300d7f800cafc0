"""Smoke test of benchmarks/serving's plumbing: payloads, model equivalence, result tables, load generators,
server lifecycle, and tiny bounded runs of the locust load test and of the benchmark. No timing asserts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from benchmarks import subprocess_env
from benchmarks.serving import bench_serving, kserve_sklearn_server, loadgen, loadtest, models, servers
from kfpkit.core import model_dir as md


# ---------------------------------------------------------------------------------------------- payloads
def test_every_server_gets_the_same_bytes_one_fp32_tensor_in_feature_order():
    rows = models.request_rows(3)
    bodies = bench_serving.server_bodies(rows)

    assert set(bodies) == {"kfpkit", "mlserver", "kserve"}
    assert len(set(bodies.values())) == 1
    body = json.loads(bodies["kfpkit"])
    assert body == {
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [3, 5], "data": rows.ravel().tolist()}]
    }
    assert np.array_equal(np.asarray(body["inputs"][0]["data"]).reshape(3, 5), rows)


def test_request_rows_are_exact_float32_values_of_the_model_features():
    rows = models.request_rows(8)

    assert rows.shape == (8, len(models.FEATURES))
    assert np.array_equal(rows.astype(np.float32).astype(np.float64), rows)
    assert np.all(np.isfinite(rows))


def test_tensor_body_refuses_a_one_dimensional_row():
    with pytest.raises(ValueError, match="2-d"):
        bench_serving.tensor_body(np.zeros(5))


def test_positive_probability_reads_each_servers_response_format():
    kfpkit = {"outputs": [{"name": "probability", "shape": [2], "data": [0.1, 0.7]}, {"name": "label", "data": [0, 1]}]}
    mlserver = {"outputs": [{"name": "predict_proba", "shape": [2, 2], "data": [0.9, 0.1, 0.3, 0.7]}]}
    kserve = {"outputs": [{"name": "output-0", "shape": [2, 2], "data": [0.9, 0.1, 0.3, 0.7]}]}

    for key, response in (("kfpkit", kfpkit), ("mlserver", mlserver), ("kserve", kserve)):
        assert bench_serving.positive_probability(key, response).tolist() == [0.1, 0.7]


# ---------------------------------------------------------------------------------------------- models
def test_kfpkit_directory_and_joblib_pipeline_score_identically(bench_model):
    import joblib
    import pandas as pd

    rows = models.request_rows(64, seed=7)
    loaded = md.load_model(bench_model.kfpkit_dir, verify=True)
    offline = loaded.predict_proba(pd.DataFrame(rows, columns=bench_model.feature_order))
    pipeline = joblib.load(bench_model.joblib_path)

    assert loaded.framework == "sklearn" and loaded.card.decision_threshold == 0.5
    assert loaded.spec.feature_order == models.FEATURES and not loaded.spec.categorical
    assert type(pipeline[-1]).__name__ == "LogisticRegression"
    np.testing.assert_array_equal(pipeline[-1].coef_, loaded._model.coef_)
    # kfpkit's spec hands the model float32 standardized values, the pipeline float64 ones: ~1e-8 apart
    np.testing.assert_allclose(pipeline.predict_proba(rows)[:, 1], offline, rtol=0, atol=1e-6)
    assert 0.0 < offline.min() < offline.max() < 1.0


def test_sklearnserver_equivalent_scores_v2_tensors_and_v1_instances_like_the_pipeline(bench_model, monkeypatch):
    import joblib
    from kserve.protocol.infer_type import InferRequest
    from kserve.protocol.rest.v2_datamodels import InferenceRequest

    rows = models.request_rows(4, seed=3)
    expected = joblib.load(bench_model.joblib_path).predict_proba(rows)
    model = kserve_sklearn_server.make_model("fraud-lr", bench_model.joblib_dir)
    body = json.loads(bench_serving.server_bodies(rows)["kserve"])
    request = InferRequest.from_inference_request(InferenceRequest(**body), "fraud-lr")

    monkeypatch.setenv(kserve_sklearn_server.ENV_PREDICT_PROBA, "true")
    v2, _headers = model.predict(request).to_rest()
    v1 = model.predict({"instances": rows.tolist()})
    monkeypatch.setenv(kserve_sklearn_server.ENV_PREDICT_PROBA, "false")
    labels = model.predict({"instances": rows.tolist()})

    assert model.ready
    assert bench_serving.positive_probability("kserve", v2).shape == (4,)
    np.testing.assert_allclose(bench_serving.positive_probability("kserve", v2), expected[:, 1], atol=1e-6)
    np.testing.assert_allclose(np.asarray(v1["predictions"]), expected, atol=1e-12)
    assert labels["predictions"] == (expected[:, 1] >= 0.5).astype(int).tolist()


def test_sklearnserver_equivalent_refuses_a_directory_with_two_model_files(bench_model, tmp_path):
    import shutil

    shutil.copy(bench_model.joblib_path, tmp_path / "model.joblib")
    shutil.copy(bench_model.joblib_path, tmp_path / "other.pkl")

    with pytest.raises(RuntimeError, match="More than one model file"):
        kserve_sklearn_server.make_model("m", str(tmp_path))


def test_mlserver_settings_bind_loopback_ports_and_ask_for_predict_proba(bench_model, tmp_path):
    repository = servers.write_mlserver_settings(
        str(tmp_path / "repo"), bench_model.joblib_path, "fraud-lr", 18080, 18081, 18082, parallel_workers=0
    )
    settings = json.loads((tmp_path / "repo" / "settings.json").read_text())
    model_settings = json.loads((tmp_path / "repo" / "model-settings.json").read_text())

    assert settings["host"] == "127.0.0.1"
    assert (settings["http_port"], settings["grpc_port"], settings["metrics_port"]) == (18080, 18081, 18082)
    assert settings["parallel_workers"] == 0 and settings["debug"] is True  # MLServer's default kept
    assert model_settings["name"] == "fraud-lr"
    assert model_settings["implementation"] == "mlserver_sklearn.SKLearnModel"
    assert model_settings["parameters"]["extra"]["predict_fn"] == "predict_proba"
    assert os.path.isfile(os.path.join(repository, "model.joblib"))


# ---------------------------------------------------------------------------------------------- results
def _result(rps: float, p99: float, errors: int = 0) -> loadgen.LoadResult:
    return loadgen.LoadResult("wrk", 16, 10.0, int(rps * 10), rps, p99 / 3, p99, errors, 0)


def test_table_shows_medians_ratios_and_goal_verdicts():
    cells = {}
    for key, rps_runs, cpu in (("kfpkit", [900, 1000, 5000], 250.0), ("mlserver", [400, 500, 450], 1000.0)):
        cell = bench_serving.Cell(key, 16)
        cell.runs = [_result(r, 20.0) for r in rps_runs]
        cell.cpu_us_per_request = [cpu, cpu, cpu]
        cells[(key, 16)] = cell
    kserve = bench_serving.Cell("kserve", 16, [_result(600, 40.0, errors=2)] * 3, [700.0] * 3)
    cells[("kserve", 16)] = kserve
    keys = ["kfpkit", "mlserver", "kserve"]

    table = bench_serving.format_table(cells, keys, [16])
    goals = bench_serving.goal_lines(cells, keys)

    assert "kfpkit/MLServer 2.22x" in table  # medians: 1000 / 450
    assert "kfpkit/KServe 1.67x" in table
    assert "MLServer 4.00x" in table  # server CPU per request relative to kfpkit
    kserve_row = next(line for line in table.splitlines() if line.startswith(bench_serving.LABELS["kserve"]))
    assert kserve_row.split()[-1] == "6"  # failed requests summed over runs
    assert not any("MLServer" in g for g in goals)  # issue 8's goals: the limit row, KServe, p99
    assert any("sklearnserver" in g and "1.67x -> NOT met" in g for g in goals)
    assert any("p99" in g and "20.00 ms -> NOT met" in g for g in goals)


def test_batch_table_shows_rows_per_second_cpu_per_row_and_rows_ratios():
    cells = {
        "kfpkit": bench_serving.Cell("kfpkit", 4, [_result(r, 9.0) for r in (100, 400, 500)], [2000.0] * 3),
        "kserve": bench_serving.Cell("kserve", 4, [_result(100, 40.0)] * 3, [9000.0] * 3),
    }

    table = bench_serving.format_batch_table(cells, ["kfpkit", "kserve"], batch_rows=1000)

    kfpkit_row = next(line for line in table.splitlines() if line.startswith(bench_serving.LABELS["kfpkit"]))
    assert kfpkit_row.split()[-6:] == ["400000", "3.00", "9.00", "2.00", "3", "0"]  # median rps x rows; us/row
    assert "rows/s ratio, 1000-row requests: kfpkit/KServe 4.00x" in table


@pytest.mark.parametrize("options", [["--batch-rows", "-1"], ["--batch-connections", "0"], ["--batch-duration", "0"]])
def test_batch_options_are_checked_before_anything_starts(options, monkeypatch):
    def no_load_generator(*args):
        raise AssertionError("the benchmark started before checking its options")

    monkeypatch.setattr(bench_serving.loadgen, "resolve_generator", no_load_generator)
    args = bench_serving.build_parser().parse_args(options)

    with pytest.raises(ValueError, match="--batch-rows must be >= 0, --batch-connections >= 1"):
        bench_serving.run_benchmark(args, emit=lambda line: None)


# ---------------------------------------------------------------------------------------------- lifecycle
def test_loopback_check_refuses_other_hosts_and_schemes():
    assert loadgen.is_loopback_url("http://127.0.0.1:8080/v2/models/m/infer")
    assert loadgen.is_loopback_url("http://127.8.9.10:1")
    assert loadgen.is_loopback_url("http://localhost:8080")
    assert loadgen.is_loopback_url("http://[::1]:8080/")
    for url in ("http://128.0.0.1:80", "https://127.0.0.1:8443", "http://example.com/", "http://0.0.0.0:80", ""):
        assert not loadgen.is_loopback_url(url), url
    with pytest.raises(ValueError, match="loopback"):
        loadgen.run_python_load("http://example.com/", b"{}", 1, 0.1)
    with pytest.raises(ValueError, match="loopback"):
        loadgen.run_wrk("http://example.com/", "body.json", 1, 1)


def test_server_group_stops_every_server_when_one_fails_to_start(tmp_path, processes_mentioning):
    marker = str(tmp_path / "served")
    os.makedirs(marker)
    port = servers.free_port()
    healthy = servers.ServerProcess(
        "http.server",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", marker],
        port,
        "/",
        str(tmp_path / "ok.log"),
    )
    broken = servers.ServerProcess(
        "broken", [sys.executable, "-c", "import sys; print('no model'); sys.exit(3)"], 9, "/", str(tmp_path / "b.log")
    )

    with pytest.raises(servers.ServerError, match=r"broken exited with status 3:\s+no model"):
        with servers.ServerGroup([healthy, broken]):
            pass

    assert healthy.process is not None and healthy.process.poll() is not None
    assert processes_mentioning(marker) == []


# ---------------------------------------------------------------------------------------------- load generators
class _EchoHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1: POST /ok answers 200 with a small JSON body, any other path 400."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"outputs": []}'
        self.send_response(200 if self.path == "/ok" else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def loopback_url():
    """A stdlib HTTP server on a free 127.0.0.1 port (the load generators' counting, without a model server)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_python_load_generator_counts_successes_and_error_statuses(loopback_url):
    good = loadgen.run_python_load(loopback_url + "/ok", b"{}", connections=2, duration_s=0.5)
    bad = loadgen.run_python_load(loopback_url + "/bad", b"{}", connections=1, duration_s=0.3)

    assert good.generator == "python-asyncio" and good.connections == 2
    assert good.requests > 0 and good.errors == 0 and good.non_2xx == 0
    assert 0 < good.p50_ms <= good.p99_ms
    assert good.rps == pytest.approx(good.requests / good.duration_s)
    assert bad.requests > 0 and bad.non_2xx == bad.requests and bad.errors == 0


@pytest.mark.skipif(not loadgen.wrk_available(), reason="wrk is not installed (apt-get install -y wrk)")
def test_wrk_reports_requests_latencies_and_counts_error_statuses(loopback_url, tmp_path):
    body = tmp_path / "body.json"
    body.write_text("{}")

    good = loadgen.run_wrk(loopback_url + "/ok", str(body), connections=2, duration_s=1)
    bad = loadgen.run_wrk(loopback_url + "/bad", str(body), connections=1, duration_s=1)

    assert good.generator == "wrk"
    assert good.requests > 0 and good.errors == 0 and good.non_2xx == 0
    assert 0 < good.p50_ms <= good.p99_ms
    assert bad.requests > 0 and bad.non_2xx == bad.requests


# ---------------------------------------------------------------------------------------------- tiny runs
def test_loadtest_runs_headless_against_loopback_kfpkit_until_max_requests_with_no_failures(bench_model, tmp_path):
    args = loadtest.build_parser().parse_args(
        ["--model-dir", bench_model.kfpkit_dir, "--run-time", "30", "--users", "2", "--max-requests", "120",
         "--rows", "8", "--work-dir", str(tmp_path)]
    )  # fmt: skip

    result = loadtest.run_loadtest(args, emit=lambda line: None)

    aggregated = result["aggregated"]
    assert aggregated["name"] == "Aggregated"
    assert 120 <= aggregated["requests"] < 400  # stopped by the request count, long before 30 s
    assert aggregated["failures"] == 0
    # each v1 kind is 1/8 of the picks: all four kinds show up in 120 requests but with probability ~1e-7
    assert {row["name"] for row in result["stats"][:-1]} == {"v1 objects", "v1 rows", "v2 inputs", "v2 tensor"}
    assert sum(row["requests"] for row in result["stats"][:-1]) == aggregated["requests"]
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_locust_refuses_a_host_outside_the_loopback_range(tmp_path):
    bodies = tmp_path / "bodies.json"
    bodies.write_text('{"requests": [{"path": "/", "body": {}}]}')

    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", loadtest.LOCUSTFILE, "--headless", "--host", "http://0.0.0.0:9",
         "-u", "1", "-r", "1", "--run-time", "1s", "--bodies-file", str(bodies)],
        capture_output=True, text=True, timeout=120, check=False, cwd=str(tmp_path), env=subprocess_env(),
    )  # fmt: skip

    assert done.returncode == 2
    assert "refusing to load-test 'http://0.0.0.0:9'" in done.stderr


def test_benchmark_runs_kfpkit_and_its_peers_checks_equivalence_and_stops_them(
    tmp_path, mlserver_bin, processes_mentioning
):
    keys = ["kfpkit", "limit", "kserve"] + (["mlserver"] if os.path.isfile(mlserver_bin) else [])
    args = bench_serving.build_parser().parse_args(
        ["--servers", *keys, "--duration", "1", "--runs", "1", "--concurrency", "2", "--warmup", "0",
         "--train-rows", "2000", "--work-dir", str(tmp_path), "--json-out", str(tmp_path / "result.json"),
         "--batch-rows", "300", "--batch-connections", "2", "--batch-duration", "1"]
    )  # fmt: skip
    lines = []

    result = bench_serving.run_benchmark(args, emit=lines.append)

    assert (tmp_path / "result.json").is_file()
    assert set(result["equivalence_max_abs_diff"]) == set(keys)
    assert max(result["equivalence_max_abs_diff"].values()) < bench_serving.EQUIVALENCE_TOLERANCE
    assert {c["server"] for c in result["cells"]} == set(keys)
    for cell in result["cells"]:
        assert cell["rps"] > 0 and cell["failures"] == 0 and cell["cpu_us_per_request"] > 0
    text = "\n".join(lines)
    assert "rps ratio at  2 connection(s): kfpkit/limit" in text and "kfpkit/KServe" in text
    batch = result["batch"]
    assert batch["rows_per_request"] == 300 and {c["server"] for c in batch["cells"]} == set(keys)
    assert max(batch["equivalence_max_abs_diff"].values()) < bench_serving.EQUIVALENCE_TOLERANCE
    for cell in batch["cells"]:
        assert cell["rows_per_s"] > 0 and cell["failures"] == 0 and cell["cpu_us_per_row"] > 0
        assert all(run["cpu_us_per_row"] > 0 for run in cell["runs"])
    assert "same probabilities for 300 rows" in text and "rows/s ratio, 300-row requests: kfpkit/limit" in text
    assert processes_mentioning(str(tmp_path)) == []
