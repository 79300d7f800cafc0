"""Smoke test of benchmarks/validate/skew_sweep.py: tiny sizes, few seeds, both tables printed."""

from __future__ import annotations

import re

import pytest

from benchmarks.validate import skew_sweep


def _line(out, rows):
    return next(line for line in out.splitlines() if line.strip().startswith(f"{rows:,} |"))


def test_sweep_prints_no_false_alarm_after_and_flags_the_designed_shift_at_10k_rows(capsys):
    assert skew_sweep.main(["--rows", "1000", "10000", "--seeds", "2", "--no-before"]) == 0
    out = capsys.readouterr().out
    assert "false alarms: before      -  after 0/2" in _line(out, 1000)
    assert re.search(r"designed shift flagged: before\s+-\s+after\s+20/20", _line(out, 10000))
    assert "AFTER, seeds alarming" not in out


def test_default_seeds_skip_seven():
    assert skew_sweep.default_seeds(8) == [1, 2, 3, 4, 5, 6, 8, 9]


def test_noise_floor_table_compares_the_simulated_null_with_the_floor(capsys):
    skew_sweep.noise_floor_table(2_000)
    out = capsys.readouterr().out
    assert "700 vs    150,  3 bins (  50 rows/bin): a=0.01:" in out
    values, bins = skew_sweep.simulate_null(700, 150, 3, 1_000)
    assert bins == 3 and values.shape == (1_000,) and 0.0 < values.mean() < 0.2


@pytest.mark.tfdv
def test_sweep_runs_tfdvs_old_check_beside_the_new_one(capsys):
    from kfpkit.components.validate import logic

    try:
        tfdv_python = logic.resolve_tfdv_python(None)
    except logic.ValidateError as exc:
        pytest.skip(f"TFDV environment missing (create it with `make setup`): {exc}")
    assert skew_sweep.main(["--rows", "2000", "--seeds", "1", "--tfdv-python", tfdv_python]) == 0
    line = _line(capsys.readouterr().out, 2000)
    assert re.search(r"false alarms: before\s+[01]/1\s+after 0/1", line)
    assert re.search(r"designed shift flagged: before\s+\d+/10\s+after\s+\d+/10", line)
