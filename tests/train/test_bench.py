"""The throughput benchmark script runs end to end on a small table and names its peer."""

from __future__ import annotations

from kfpkit.components.train import bench


def test_bench_prints_rows_per_second_of_both_frameworks_and_the_ratio(capsys):
    bench.main(["--rows", "3000", "--repeats", "1", "--epochs", "2"])
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert float(lines["pytorch"].split()[1]) > 0
    assert float(lines["sklearn"].split()[1]) > 0
    assert "vs sklearn HistGradientBoosting baseline:" in out
    ratio = out.rsplit(":", 1)[1].strip()
    assert ratio.endswith("x") and float(ratio[:-1]) > 0


def test_synthetic_frame_has_a_learnable_binary_label():
    frame = bench.synthetic_frame(2000, seed=0)
    assert set(frame[bench.LABEL].unique()) == {0, 1}
    assert 0.005 < frame[bench.LABEL].mean() < 0.1
