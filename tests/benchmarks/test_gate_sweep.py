"""Smoke test of benchmarks/quality/gate_sweep: one retrain pair and one shuffled-label model, end to end."""

from __future__ import annotations

import re

from threadpoolctl import threadpool_limits

from benchmarks.quality import gate_sweep


def test_gate_sweep_judges_a_retrain_pair_and_a_shuffled_label_model_and_counts_them_against_the_goals(capsys):
    with threadpool_limits(1):  # HistGradientBoosting's OpenMP threads crawl on a busy machine; the data is tiny
        assert gate_sweep.main(["--rows", "4000", "--pairs", "1", "--shuffled", "1", "--framework", "sklearn"]) == 0
    out = capsys.readouterr().out
    pair = next(line for line in out.splitlines() if line.startswith("pair 1 (seed 2 vs 1)"))
    assert re.search(r"diff [+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", pair)
    assert "regression" in pair and "floor" in pair
    shuffled = [line for line in out.splitlines() if line.startswith("shuffled 1")]
    assert len(shuffled) == 2 and all(line.endswith("not blessed") for line in shuffled)
    assert re.search(r"false regressions between retrains: [01]/1 ", out)
    assert re.search(r"the point rule before this gate .* would have declared [01]/1 ", out)
    assert "shuffled-label evaluations blessed: 0/2; goal 0: met" in out
    assert "wall time: ingest" in out
