"""Smoke test of benchmarks/validate: one tiny size, one repeat, both sides timed, peer named in the output."""

from __future__ import annotations

import os

import pytest

from benchmarks.validate import bench_validate

pytestmark = pytest.mark.tfdv


def test_bench_times_run_validation_and_bare_tfdv_and_prints_the_overhead(capsys):
    from kfpkit.components.validate import logic

    try:
        tfdv_python = logic.resolve_tfdv_python(None)
    except logic.ValidateError as exc:
        pytest.skip(f"TFDV environment missing (create it with `make setup`): {exc}")
    assert os.path.isfile(tfdv_python)

    assert bench_validate.main(["--rows", "2000", "--repeats", "1", "--tfdv-python", tfdv_python]) == 0

    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.split() and line.split()[0] == "2000")
    seconds = [float(cell.rstrip("s")) for cell in row[1:]]
    run_validation, _tf_import, _ours, _rest, bare = seconds[:5]
    assert run_validation > 0 and bare > 0
    assert seconds[5] == pytest.approx(run_validation - bare, abs=0.011)
    assert "bare stats" in out
