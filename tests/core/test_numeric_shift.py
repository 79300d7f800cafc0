"""The numeric comparator the monitor and validate share (kfpkit.core.numeric_shift), on real small data."""

import json
import subprocess
import textwrap

import numpy as np
import pytest

from kfpkit.components.ingest.logic import split_masks
from kfpkit.components.ingest.synthetic import generate_fraud
from kfpkit.core import distances, numeric_shift

NUMERIC = ("amount", "hour", "distance_from_home_km", "transactions_last_24h", "account_age_days")


def _hash_splits(rows, seed):
    frame = generate_fraud(rows, seed=seed)
    masks = split_masks(frame, None, 0.15, 0.15, 0)  # what ingest does by default
    return {split: frame[mask] for split, mask in masks.items()}


def test_compare_counts_gives_the_monitors_former_js_verdict_exactly():
    rng = np.random.default_rng(3)
    for _ in range(50):
        base = rng.integers(0, 500, size=rng.integers(2, 25))
        live = rng.integers(0, 80, size=base.size)
        threshold, alpha = float(rng.choice([0.05, 0.1, 0.3])), float(rng.choice([1e-6, 1e-3]))
        bins = int(np.count_nonzero(base)) or 1
        former = distances.verdict(
            "js",
            distances.js_distance(live, base),
            threshold,
            distances.js_floor(bins, int(live.sum()), int(base.sum()), alpha),
        )
        assert numeric_shift.compare_counts(base, live, threshold, alpha).verdict() == former


def test_the_monitoring_baseline_bins_are_the_comparators():
    from kfpkit.core import monitoring_baseline

    assert monitoring_baseline.quantile_edges is numeric_shift.quantile_edges
    assert monitoring_baseline.bin_counts is numeric_shift.bin_counts
    assert monitoring_baseline.DEFAULT_BINS == numeric_shift.DEFAULT_BINS == 20


def test_bins_for_keeps_50_rows_of_the_smaller_sample_per_bin_and_at_most_20_bins():
    assert numeric_shift.bins_for(700, 150) == 3
    assert numeric_shift.bins_for(150, 700) == 3
    assert numeric_shift.bins_for(7_000, 1_500) == 20
    assert numeric_shift.bins_for(1_400, 300) == 6
    assert numeric_shift.bins_for(40, 30) == 2


def test_compare_values_drops_missing_values_and_names_both_sizes():
    reference = np.array([1.0, 2.0, np.nan, 3.0, np.inf, 4.0] * 100)
    other = np.array([1.0, 2.0, 3.0, 4.0, np.nan] * 20)
    shift = numeric_shift.compare_values(reference, other, 0.1)
    assert shift.rows == (400, 80)
    assert shift.bins == 2 and shift.distance < 1e-12 and not shift.shifted
    assert shift.limit == max(0.1, shift.noise_floor)
    assert numeric_shift.METRIC_NAME == "Jensen-Shannon distance, base 2"


@pytest.mark.parametrize(("rows", "seeds"), [(1_000, (1, 2, 3, 8)), (10_000, (8, 9, 12)), (100_000, (8,))])
def test_no_false_alarm_on_hash_splits_of_the_generator(rows, seeds):
    for seed in seeds:
        splits = _hash_splits(rows, seed)
        for name in NUMERIC:
            for other in ("eval", "test"):
                shift = numeric_shift.compare_values(splits["train"][name], splits[other][name], 0.1)
                assert not shift.shifted, (rows, seed, name, other, shift)
                assert shift.distance < 0.8 * shift.limit, (rows, seed, name, other, shift)


@pytest.mark.parametrize("rows", [10_000, 100_000])
def test_a_half_standard_deviation_shift_of_one_splits_mean_is_flagged_from_10k_rows(rows):
    splits = _hash_splits(rows, seed=8)
    for name in NUMERIC:
        train = splits["train"][name].to_numpy(float)
        for other in ("eval", "test"):
            moved = splits[other][name].to_numpy(float) + 0.5 * train.std()
            shift = numeric_shift.compare_values(train, moved, 0.1)
            assert shift.shifted, (rows, name, other, shift)


def _null_rate(n_ref, n_other, bins, alpha, draws=10_000):
    """How often the comparator alarms between two samples of one distribution (its noise floor at ``alpha``)."""
    rng = np.random.default_rng(11)
    alarms = 0
    for _ in range(draws):
        shift = numeric_shift.compare_values(rng.random(n_ref), rng.random(n_other), 0.0, alpha, bins=bins)
        alarms += shift.shifted
    return alarms / draws


def test_the_noise_floor_holds_its_alpha_with_the_bins_validate_chooses_and_not_with_8_rows_per_bin():
    alpha = 1e-2  # 100 expected alarms in 10,000 draws (sd 10): 1.3 alpha is 3 sd above, 1.6 alpha 6 sd
    assert _null_rate(700, 150, numeric_shift.bins_for(700, 150), alpha) < 1.3 * alpha
    assert _null_rate(700, 150, 20, alpha) > 1.6 * alpha  # 7.5 rows per bin: the chi-square floor is optimistic


@pytest.mark.tfdv
def test_the_comparator_gives_the_same_result_in_the_tfdv_interpreter(tmp_path):
    from kfpkit.components.validate import logic

    try:
        tfdv_python = logic.resolve_tfdv_python()
    except logic.ValidateError as exc:
        pytest.skip(f"TFDV environment missing: {exc}")
    splits = _hash_splits(20_000, seed=9)
    np.save(tmp_path / "train.npy", splits["train"]["amount"].to_numpy(float))
    np.save(tmp_path / "eval.npy", splits["eval"]["amount"].to_numpy(float))
    code = textwrap.dedent(
        f"""
        import json, numpy as np
        from kfpkit.core import numeric_shift
        shift = numeric_shift.compare_values(
            np.load({str(tmp_path / "train.npy")!r}), np.load({str(tmp_path / "eval.npy")!r}), 0.1
        )
        print(json.dumps([np.__version__, shift.distance, shift.noise_floor, shift.bins, list(shift.rows)]))
        """
    )
    done = subprocess.run(
        [tfdv_python, "-c", code], check=True, capture_output=True, text=True, env=logic._child_env(tfdv_python)
    )
    version, distance, floor, bins, rows = json.loads(done.stdout.strip().splitlines()[-1])
    here = numeric_shift.compare_values(splits["train"]["amount"], splits["eval"]["amount"], 0.1)
    assert version.startswith("1.") and np.__version__.startswith("2.")
    assert distance == pytest.approx(here.distance, rel=1e-12) and floor == pytest.approx(here.noise_floor, rel=1e-12)
    assert (bins, tuple(rows)) == (here.bins, here.rows)
