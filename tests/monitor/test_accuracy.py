"""The accuracy suite (seeded): no false alarms from 200 rows to 1M, every designed shift caught."""

import pytest

from demo import shifts
from kfpkit.components.monitor import logic


def _compare(baseline, rows, seed, shift_names=()):
    table = shifts.to_arrow(shifts.generate(rows, seed, shift_names))
    counters, score, n = logic.measure_window(baseline, (("window", b) for b in table.to_batches(65_536)))
    assert n == rows
    return logic.compare(baseline, counters, score)


@pytest.mark.parametrize(
    ("rows", "seeds"),
    [(200, range(1, 7)), (1_000, range(1, 5)), (10_000, range(1, 4)), (100_000, range(1, 3)), (1_000_000, [1])],
)
def test_windows_from_the_training_distribution_flag_no_feature(baseline, rows, seeds):
    for seed in seeds:
        features, _, detected, drifted = _compare(baseline, rows, seed)
        assert not detected and drifted == [], f"{rows} rows, seed {seed}: false alarm on {drifted}"
        assert len(features) == len(shifts.COLUMNS)


@pytest.mark.parametrize("shift", sorted(shifts.SHIFTS))
@pytest.mark.parametrize("rows", [5_000, 200_000])
def test_each_designed_shift_is_caught_and_nothing_else(baseline, shift, rows):
    _, _, detected, drifted = _compare(baseline, rows, seed=11, shift_names=[shift])
    assert detected and drifted == [shifts.SHIFTS[shift][0]], f"{shift} at {rows} rows flagged {drifted}"


def test_the_benchmark_shifts_together_are_all_caught(baseline):
    _, _, _, drifted = _compare(baseline, 100_000, seed=12, shift_names=shifts.BENCH_SHIFTS)
    assert set(drifted) == shifts.expected_drifted(shifts.BENCH_SHIFTS)


def test_the_rule_raises_the_threshold_for_small_windows_and_falls_back_to_the_fixed_one(baseline):
    small, *_ = _compare(baseline, 200, seed=3)
    large, *_ = _compare(baseline, 200_000, seed=3)
    js = {f.name: f.metrics["js"] for f in small}
    js_large = {f.name: f.metrics["js"] for f in large}
    assert js["f00"].threshold > 0.15
    assert js_large["f00"].threshold == 0.1
    # a 200-row window's JS scores reach the fixed 0.1 from noise alone: without the floor it would alarm
    assert max(m.score for m in js.values()) > 0.1
