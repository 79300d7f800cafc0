"""Smoke test of benchmarks/quality: the size sweep runs end to end on a small table and judges its goals."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.quality import bench_quality
from kfpkit.core import classification_metrics as m


def test_ece_noise_floor_is_the_quantile_of_the_ece_of_labels_drawn_from_the_scores():
    scores = np.sort(np.random.default_rng(0).beta(0.5, 4.0, 300))  # in bin order, as the floor draws them
    labels = np.random.default_rng(5).random((200, scores.size)) < scores  # the floor's own draws (one chunk)
    by_hand = np.quantile([m.expected_calibration_error(y.astype(int), scores) for y in labels], 0.95)
    assert bench_quality.ece_noise_floor(scores, draws=200, seed=5) == pytest.approx(by_hand, abs=1e-12)
    # more rows, less noise
    many = np.random.default_rng(1).beta(0.5, 4.0, 30_000)
    assert bench_quality.ece_noise_floor(many, draws=100) < bench_quality.ece_noise_floor(scores, draws=100) / 3


def test_sweep_prints_the_size_by_model_table_with_the_goals(capsys):
    rows = bench_quality.main(["--sizes", "", "--tables", "breast_cancer", "--seeds", "1", "--draws", "100"])
    out = capsys.readouterr().out
    assert [(r["table"], r["framework"]) for r in rows] == [("breast_cancer", "pytorch"), ("breast_cancer", "sklearn")]
    pytorch = rows[0]
    assert 0 < pytorch["pr_auc_low"] <= pytorch["pr_auc"] <= pytorch["pr_auc_high"] <= 1
    assert pytorch["ratio"] > 0 and 0 <= pytorch["ece"] and 0 < pytorch["ece_floor"]
    assert pytorch["ece_goal"] == (pytorch["ece_ratio"] <= 1.0)
    assert "ratio>=0.95:" in out and "ECE within floor:" in out and "train+eval (5-fold cross-fit)" in out
