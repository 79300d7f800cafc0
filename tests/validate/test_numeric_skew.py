"""validate's numeric skew check (kfpkit.components.validate.numeric_skew) on ingest's real splits of the generator.

The module is TensorFlow-free: these tests run it in the main environment; one test runs the whole component
path (run_ingest + run_validation with the TFDV subprocess) at 100k rows on a seed that failed before.
"""

import os

import numpy as np
import pandas as pd
import pytest

from kfpkit.components.ingest.logic import run_ingest
from kfpkit.components.validate import logic, numeric_skew
from kfpkit.core import distances

LABEL = "is_fraud"
NUMERIC = ("amount", "hour", "distance_from_home_km", "transactions_last_24h", "account_age_days")


def _ingest(folder, rows, seed):
    paths = {split: os.path.join(str(folder), f"{split}.parquet") for split in ("train", "eval", "test")}
    run_ingest(f"synthetic://fraud?rows={rows}&seed={seed}", LABEL, paths["train"], paths["eval"], paths["test"])
    return paths


@pytest.mark.parametrize(("rows", "seed"), [(1_000, 8), (2_000, 9), (20_000, 12), (50_000, 8)])
def test_no_numeric_skew_alarm_on_ingests_hash_splits_of_one_table(tmp_path, rows, seed):
    paths = _ingest(tmp_path, rows, seed)
    measured = numeric_skew.measure(paths, {name: logic.DEFAULT_NUMERIC_JS_THRESHOLD for name in NUMERIC})
    assert {(m.feature, m.splits) for m in measured} == {(f, p) for f in NUMERIC for p in ("train/eval", "train/test")}
    assert not [m for m in measured if m.exceeded]
    assert numeric_skew.anomaly_reasons(measured) == []
    for m in measured:
        assert m.metric == "jensen_shannon_distance" and m.noise_floor is not None and m.rows is not None
        assert m.value < max(m.threshold, m.noise_floor)


def test_a_half_standard_deviation_shift_in_eval_is_flagged_with_the_metric_the_limit_and_the_floor(tmp_path):
    paths = _ingest(tmp_path, 10_000, 8)
    train = pd.read_parquet(paths["train"])
    frame = pd.read_parquet(paths["eval"])
    frame["distance_from_home_km"] += 0.5 * train["distance_from_home_km"].std(ddof=0)
    frame.to_parquet(paths["eval"], index=False)
    measured = numeric_skew.measure(paths, {name: 0.1 for name in NUMERIC})
    exceeded = [(m.feature, m.splits) for m in measured if m.exceeded]
    assert exceeded == [("distance_from_home_km", "train/eval")]
    (reason,) = numeric_skew.anomaly_reasons(measured)
    assert (reason.split, reason.check, reason.feature, reason.type) == (
        "train/eval",
        "skew",
        "distance_from_home_km",
        "JS_DISTANCE_HIGH",
    )
    item = next(m for m in measured if m.exceeded)
    assert reason.description.startswith(
        f"The Jensen-Shannon distance (base 2, on {item.bins} quantile bins of train) between train and eval is "
        f"{item.value:.3f}, above the limit 0.100 (threshold 0.1; noise floor {item.noise_floor:.3f} for "
        f"{item.rows[0]:,} and {item.rows[1]:,} values at alpha 1e-06)."
    )
    assert item.bins == 20 and item.noise_floor < 0.1


def test_a_threshold_of_one_disables_a_features_numeric_skew_check(tmp_path):
    paths = _ingest(tmp_path, 2_000, 3)
    frame = pd.read_parquet(paths["test"])
    frame["amount"] = frame["amount"] * 100.0
    frame.to_parquet(paths["test"], index=False)
    assert [m.feature for m in numeric_skew.measure(paths, {"amount": 0.1}) if m.exceeded] == ["amount"]
    assert not [m for m in numeric_skew.measure(paths, {"amount": 1.0}) if m.exceeded]


def test_a_split_whose_column_is_missing_not_numeric_or_empty_is_not_compared(tmp_path):
    paths = _ingest(tmp_path, 2_000, 4)
    frame = pd.read_parquet(paths["eval"]).drop(columns=["amount"])
    frame["hour"] = frame["hour"].astype(str)
    frame["account_age_days"] = np.nan
    frame.to_parquet(paths["eval"], index=False)
    measured = numeric_skew.measure(paths, {name: 0.1 for name in ("amount", "hour", "account_age_days", "device")})
    assert {(m.feature, m.splits) for m in measured} == {
        ("amount", "train/test"),
        ("hour", "train/test"),
        ("account_age_days", "train/test"),
    }


def test_validate_and_the_monitor_share_alpha_and_name_the_metric_exactly():
    assert logic.NUMERIC_SKEW_ALPHA == numeric_skew.ALPHA == distances.DEFAULT_ALPHA
    assert logic.NUMERIC_SKEW_METRIC.startswith(distances.METRIC_NAMES["js"])
    assert "divergence" not in logic.NUMERIC_SKEW_METRIC


@pytest.mark.tfdv
def test_run_validation_passes_ingests_splits_of_a_seed_that_raised_a_false_skew_alarm_before(tmp_path):
    """Seed 8 at 100k rows failed with 'amount: train/eval skew: approximate JS divergence 0.428' (issue 18)."""
    try:
        tfdv_python = logic.resolve_tfdv_python()
    except logic.ValidateError as exc:
        pytest.skip(f"TFDV environment missing: {exc}")
    paths = _ingest(tmp_path / "data", 100_000, 8)
    outputs = logic.OutputPaths(*(str(tmp_path / "out" / name) for name in logic.OutputPaths.__dataclass_fields__))
    result = logic.run_validation(paths["train"], paths["eval"], paths["test"], LABEL, outputs, tfdv_python=tfdv_python)
    assert result.passed, result.anomalies
    metrics = {s["feature"]: s["metric"] for s in result.skew}
    assert {metrics[name] for name in NUMERIC} == {"jensen_shannon_distance"}
    assert {metrics[name] for name in ("merchant_category", "channel", "country", "device")} == {"l_infinity"}
    direct = numeric_skew.measure(paths, {name: logic.DEFAULT_NUMERIC_JS_THRESHOLD for name in NUMERIC})
    # the same comparator on the same files, in numpy 1.26 (TFDV's interpreter) and numpy 2 (here)
    values = {(s["feature"], s["splits"]): s["value"] for s in result.skew if s["metric"] == "jensen_shannon_distance"}
    assert values == {(m.feature, m.splits): pytest.approx(m.value, rel=1e-9) for m in direct}
    assert result.thresholds["numeric_skew_alpha"] == 1e-6
    with open(outputs.report, encoding="utf-8") as fh:
        report = fh.read()
    assert "| `amount` | train/eval | Jensen-Shannon distance |" in report
