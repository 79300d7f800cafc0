"""Smoke test of benchmarks/serving/bench_mlp.py, the real-model part of ``make bench-serving``: the
pipeline's TorchScript MLP trained by train's own code, served by kfpkit and by a plain KServe custom Model,
checked equal to offline scoring, loaded briefly and stopped. No timing asserts.
"""

from __future__ import annotations

import json

from benchmarks.serving import bench_mlp


def test_mlp_benchmark_serves_the_torchscript_model_both_ways_with_offline_probabilities(
    tmp_path, capsys, processes_mentioning
):
    out = tmp_path / "mlp.json"
    status = bench_mlp.main(
        ["--concurrency", "2", "--duration", "1", "--runs", "1", "--warmup", "0.2", "--train-rows", "3000",
         "--json-out", str(out)]
    )  # fmt: skip

    assert status == 0
    result = json.loads(out.read_text())
    assert set(result["equivalence"]) == {"kfpkit", "kserve"}
    assert max(result["equivalence"].values()) < bench_mlp.TOLERANCE
    assert {(c["server"], c["connections"]) for c in result["cells"]} == {("kfpkit", 2), ("kserve", 2)}
    for cell in result["cells"]:
        assert cell["rps"] > 0 and cell["failures"] == 0 and cell["cpu_us_per_request"] > 0
    printed = capsys.readouterr().out
    assert "rps ratio at  2 connection(s): kfpkit/KServe" in printed
    assert processes_mentioning("kfpkit-bench-mlp-") == []
