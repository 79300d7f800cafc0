"""Smoke test of benchmarks/train: it runs end to end on a small table and names its peer."""

from __future__ import annotations

from benchmarks.train import bench_train


def test_bench_prints_rows_per_second_of_both_frameworks_and_the_ratio(capsys):
    # small batches: enough optimizer steps on 3,200 training rows for train's calibration check to accept the model
    bench_train.main(["--rows", "4000", "--repeats", "1", "--epochs", "3", "--batch-size", "256"])
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert float(lines["pytorch"].split()[1]) > 0
    assert float(lines["sklearn"].split()[1]) > 0
    assert "vs sklearn HistGradientBoosting baseline:" in out
    ratio = out.rsplit(":", 1)[1].strip()
    assert ratio.endswith("x") and float(ratio[:-1]) > 0
