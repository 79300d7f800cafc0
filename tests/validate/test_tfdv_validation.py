"""run_validation end to end in the TFDV interpreter: bad inputs, SERVING environment, curated schema, skew
train/eval and train/test, anomalies reported per split.

Each scenario is ONE TFDV subprocess (module-scoped fixture); several tests assert on its result.
"""

import json
import os
import textwrap

import numpy as np
import pytest

from kfpkit.components.validate import logic

pytestmark = pytest.mark.tfdv

LABEL = "is_fraud"


def _types(result, split=None):
    """{(split, feature, TFDV anomaly type)} of a result."""
    return {(d["split"], d["feature"], d["type"]) for d in result.details if split in (None, d["split"])}


def _validate(data_dir, outputs, tfdv_python, eval_path=None, test_path=None, **kwargs):
    """run_validation on the clean train split and the given (else the clean) eval and test splits."""
    return logic.run_validation(
        str(data_dir / "train.parquet"),
        eval_path or str(data_dir / "eval.parquet"),
        test_path or str(data_dir / "test.parquet"),
        LABEL,
        outputs,
        tfdv_python=tfdv_python,
        **kwargs,
    )


# ------------------------------------------------------------------------------------------------
# Bad eval data: missing column, new category, type change, all-null column, label absent (TRAINING)


@pytest.fixture(scope="module")
def bad_eval_run(tfdv_python, data_dir, tmp_path_factory, vh):
    root = tmp_path_factory.mktemp("validate-bad-eval")
    bad = vh.make_frame(200, seed=1).drop(columns=["country", LABEL])  # missing column + label absent
    bad.loc[:9, "channel"] = "phone"  # a category the training data never had
    bad["channel"] = bad["channel"].astype("category")  # stored dictionary-encoded: decoded before TFDV
    bad["hour"] = bad["hour"].astype(str)  # int -> string
    bad["device"] = None  # every value null
    eval_path = vh.write_parquet(bad, root / "eval.parquet")
    outputs = vh.output_paths(root / "out")
    result = _validate(data_dir, outputs, tfdv_python, eval_path)
    return result, outputs


@pytest.mark.parametrize(
    ("feature", "anomaly_type"),
    [
        ("country", "SCHEMA_MISSING_COLUMN"),
        ("channel", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"),
        ("hour", "UNEXPECTED_DATA_TYPE"),
        ("device", "FEATURE_TYPE_NOT_PRESENT"),
        (LABEL, "SCHEMA_MISSING_COLUMN"),
    ],
)
def test_each_bad_eval_column_yields_its_tfdv_anomaly(bad_eval_run, feature, anomaly_type):
    result, _ = bad_eval_run
    assert ("eval", feature, anomaly_type) in _types(result)
    assert feature in result.anomalies


def test_bad_eval_data_does_not_pass_and_train_and_test_are_clean(bad_eval_run):
    result, _ = bad_eval_run
    assert result.passed is False
    assert result.anomaly_count == len(result.anomalies) >= 5
    assert _types(result, "train") == set() and _types(result, "test") == set()
    assert result.anomalies_by_split["eval"] == sorted(["country", "channel", "hour", "device", LABEL])
    assert result.anomalies_by_split["test"] == [] and result.anomalies_by_split["train/test"] == []


def test_descriptions_say_where_and_what(bad_eval_run):
    result, _ = bad_eval_run
    assert result.anomalies["channel"].startswith("eval: ")
    assert "phone" in result.anomalies["channel"]
    assert "Expected data of type: INT but got STRING" in result.anomalies["hour"]


def test_a_missing_eval_column_is_reported_once_not_again_as_missing_skew_data(bad_eval_run):
    result, _ = bad_eval_run
    assert not [d for d in result.details if d["feature"] == "country" and d["check"] == "skew"]


def test_all_null_column_shows_100_percent_missing_in_the_summary(bad_eval_run):
    result, _ = bad_eval_run
    device = next(f for f in result.features if f["name"] == "device")
    assert device["train"]["missing_pct"] == 0
    assert device["eval"]["missing_pct"] == 100


def test_anomalies_artifact_holds_json_and_text_protos(bad_eval_run):
    result, outputs = bad_eval_run
    files = sorted(os.listdir(outputs.anomalies))
    assert files == sorted([logic.ANOMALIES_JSON_FILE, *logic.ANOMALIES_FILES])
    with open(os.path.join(outputs.anomalies, logic.ANOMALIES_JSON_FILE), encoding="utf-8") as fh:
        payload = json.load(fh)
    assert payload["anomalies"] == result.anomalies
    assert payload["anomalies_by_split"] == result.anomalies_by_split
    assert payload["passed"] is False
    with open(os.path.join(outputs.anomalies, logic.EVAL_ANOMALIES_FILE), encoding="utf-8") as fh:
        assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in fh.read()
    assert result.metadata["anomalies"]["anomalies"] == result.anomalies


def test_report_lists_every_anomaly_in_its_table(bad_eval_run):
    _, outputs = bad_eval_run
    with open(outputs.report, encoding="utf-8") as fh:
        text = fh.read()
    assert text.startswith("# Data validation: FAILED")
    assert "| `channel` | eval | schema | ENUM_TYPE_UNEXPECTED_STRING_VALUES |" in text
    assert f"| `{LABEL}` | eval | schema | SCHEMA_MISSING_COLUMN |" in text
    assert "| `device` | STRING | 0.0 % / 100.0 % / 0.0 % |" in text
    assert "By split: eval `channel`, `country`, `device`, `hour`, `is_fraud`" in text


def test_no_temporary_files_are_left_beside_the_outputs(bad_eval_run):
    _, outputs = bad_eval_run
    root = os.path.dirname(outputs.report)
    leftovers = [os.path.join(d, n) for d, _, names in os.walk(root) for n in names if n.startswith(".")]
    assert leftovers == []
    assert sorted(os.listdir(root)) == sorted(logic.OutputPaths.__dataclass_fields__)


# ------------------------------------------------------------------------------------------------
# Curated schema with value domains, eval validated in SERVING (label absent is fine there)

CURATED_SCHEMA = textwrap.dedent(
    """\
    feature { name: "amount" type: FLOAT presence { min_fraction: 1.0 min_count: 1 }
              float_domain { min: 0.0 max: 1000.0 } skew_comparator { jensen_shannon_divergence { threshold: 0.7 } } }
    feature { name: "hour" type: INT presence { min_fraction: 1.0 min_count: 1 } int_domain { min: 0 max: 23 } }
    feature { name: "channel" type: BYTES domain: "channel" presence { min_fraction: 1.0 min_count: 1 }
              skew_comparator { infinity_norm { threshold: 0.9 } } }
    feature { name: "country" type: BYTES domain: "country" presence { min_fraction: 1.0 min_count: 1 } }
    feature { name: "device" type: BYTES domain: "device" presence { min_fraction: 1.0 min_count: 1 } }
    feature { name: "is_fraud" type: INT bool_domain { } presence { min_fraction: 1.0 min_count: 1 } }
    string_domain { name: "channel" value: "web" value: "pos" value: "app" }
    string_domain { name: "country" value: "US" value: "DE" value: "FR" value: "GB" }
    string_domain { name: "device" value: "ios" value: "android" value: "desktop" }
    """
)


@pytest.fixture(scope="module")
def serving_curated_run(tfdv_python, data_dir, tmp_path_factory, vh):
    root = tmp_path_factory.mktemp("validate-serving-curated")
    schema_dir = root / "curated"  # a directory with schema.pbtxt, like a previous baseline output
    schema_dir.mkdir()
    (schema_dir / logic.BASELINE_SCHEMA_FILE).write_text(CURATED_SCHEMA)
    serving = vh.make_frame(200, seed=2).drop(columns=[LABEL])
    serving.loc[0, "amount"] = 5000.0  # above float_domain.max
    serving.loc[1, "hour"] = 30  # above int_domain.max
    eval_path = vh.write_parquet(serving, root / "serving.parquet")
    outputs = vh.output_paths(root / "out")
    result = _validate(
        data_dir, outputs, tfdv_python, eval_path, curated_schema_path=str(schema_dir), eval_environment="SERVING"
    )
    return result, outputs, schema_dir


def test_out_of_range_values_are_anomalies_under_a_curated_value_domain(serving_curated_run):
    result, _, _ = serving_curated_run
    assert ("eval", "amount", "FLOAT_TYPE_BIG_FLOAT") in _types(result)
    assert ("eval", "hour", "INT_TYPE_BIG_INT") in _types(result)


def test_label_absent_is_fine_in_the_serving_environment(serving_curated_run):
    result, _, _ = serving_curated_run
    assert LABEL not in result.anomalies
    assert result.eval_environment == "SERVING"


def test_curated_schema_is_used_and_its_own_skew_comparator_kept(serving_curated_run):
    result, outputs, schema_dir = serving_curated_run
    assert result.schema_source == str(schema_dir / logic.BASELINE_SCHEMA_FILE)
    channel = next(s for s in result.skew if s["feature"] == "channel")
    assert channel["threshold"] == pytest.approx(0.9)
    # a curated comparator's threshold on a numeric feature becomes its JS-distance threshold
    amount = [s for s in result.skew if s["feature"] == "amount"]
    assert [(s["splits"], s["metric"], s["threshold"]) for s in amount] == [
        (splits, "jensen_shannon_distance", pytest.approx(0.7)) for splits in ("train/eval", "train/test")
    ]
    with open(outputs.schema, encoding="utf-8") as fh:
        schema_text = fh.read()
    assert "jensen_shannon_divergence" not in schema_text
    assert "float_domain" in schema_text
    assert 'not_in_environment: "SERVING"' in schema_text
    assert 'default_environment: "TRAINING"' in schema_text


# ------------------------------------------------------------------------------------------------
# Train/eval skew


def _shifted_eval(vh, rows=200, seed=4):
    shifted = vh.make_frame(rows, seed=seed)
    shifted["amount"] = (shifted["amount"] * 2.5 + 60).round(2)
    shifted["country"] = np.where(np.arange(rows) % 10 < 8, "DE", "US")
    return shifted


@pytest.fixture(scope="module")
def skew_run(tfdv_python, data_dir, tmp_path_factory, vh):
    root = tmp_path_factory.mktemp("validate-skew")
    eval_path = vh.write_parquet(_shifted_eval(vh), root / "eval.parquet")
    outputs = vh.output_paths(root / "out")
    result = _validate(data_dir, outputs, tfdv_python, eval_path)
    return result, outputs


def test_skew_is_detected_on_the_shifted_features_with_the_right_metric(skew_run):
    result, _ = skew_run
    skew_types = {(d["feature"], d["type"]) for d in result.details if d["check"] == "skew"}
    assert skew_types == {
        ("amount", "JS_DISTANCE_HIGH"),  # numeric: kfpkit's comparator
        ("country", "COMPARATOR_L_INFTY_HIGH"),  # categorical: TFDV's
    }
    assert set(result.anomalies) == {"amount", "country"}
    assert result.anomalies["amount"].startswith("train/eval skew: The Jensen-Shannon distance (base 2, on 4 quantile")
    assert "between train and eval" in result.anomalies["amount"]
    assert "noise floor" in result.anomalies["amount"] and "for 400 and 200 values" in result.anomalies["amount"]


def test_every_feature_but_the_label_is_measured_against_its_default_with_the_noise_floor_of_numeric_ones(
    skew_run,
):
    result, _ = skew_run
    assert {(s["feature"], s["splits"]) for s in result.skew} == {
        (feature, splits)
        for feature in ("amount", "hour", "channel", "country", "device")
        for splits in ("train/eval", "train/test")
    }
    measured = {s["feature"]: s for s in result.skew if s["splits"] == "train/eval"}
    assert set(measured) == {"amount", "hour", "channel", "country", "device"}
    assert measured["amount"]["metric"] == "jensen_shannon_distance"
    assert measured["hour"]["metric"] == "jensen_shannon_distance"
    assert measured["channel"]["metric"] == "l_infinity"
    numeric = [s for s in result.skew if s["metric"] == "jensen_shannon_distance"]
    assert all(s["threshold"] == pytest.approx(logic.DEFAULT_NUMERIC_JS_THRESHOLD) for s in numeric)
    assert all(s["threshold"] == pytest.approx(0.3) for s in result.skew if s["metric"] == "l_infinity")
    # 200 rows against 400: 4 quantile bins (50 rows of the smaller split per bin), a floor well above 0.1
    assert all(s["bins"] == 4 and s["rows"] == [400, 200] and s["noise_floor"] > 0.2 for s in numeric)
    assert all(s["noise_floor"] is None for s in result.skew if s["metric"] == "l_infinity")
    assert measured["amount"]["exceeded"] and measured["country"]["exceeded"]
    assert not measured["channel"]["exceeded"]
    assert not [s for s in result.skew if s["splits"] == "train/test" and s["exceeded"]]  # test is clean


def test_schema_output_carries_tfdvs_categorical_comparators_and_no_numeric_one(skew_run):
    _, outputs = skew_run
    with open(outputs.schema, encoding="utf-8") as fh:
        text = fh.read()
    assert "jensen_shannon_divergence" not in text  # numeric skew is kfpkit's, not TFDV's approximate JS
    assert "infinity_norm" in text


def test_per_feature_threshold_override_removes_that_features_skew_and_fail_on_anomalies_raises(
    tfdv_python, data_dir, tmp_path, vh, skew_run
):
    baseline_amount = next(s for s in skew_run[0].skew if s["feature"] == "amount" and s["splits"] == "train/eval")[
        "value"
    ]
    eval_path = vh.write_parquet(_shifted_eval(vh), tmp_path / "eval.parquet")
    outputs = vh.output_paths(tmp_path / "out")
    override = min(1.0, baseline_amount + 0.05)
    with pytest.raises(logic.DataValidationFailed) as info:
        _validate(
            data_dir, outputs, tfdv_python, eval_path, skew_thresholds={"amount": override}, fail_on_anomalies=True
        )
    message = str(info.value)
    assert message.startswith("data validation failed: 1 feature(s) with anomalies (fail_on_anomalies=True")
    assert "  - country: train/eval skew:" in message
    assert "amount" not in message.split("Report:", maxsplit=1)[0]
    amount = next(s for s in info.value.result.skew if s["feature"] == "amount" and s["splits"] == "train/eval")
    assert amount["threshold"] == pytest.approx(override) and not amount["exceeded"]
    assert os.path.isfile(outputs.report)  # every output is written before failing
    assert os.path.isfile(os.path.join(outputs.baseline, logic.BASELINE_STATS_FILE))


# ------------------------------------------------------------------------------------------------
# Train/test skew and a schema anomaly in the test split, eval clean


@pytest.fixture(scope="module")
def skew_run_with_a_shifted_test_split(tfdv_python, data_dir, tmp_path_factory, vh):
    root = tmp_path_factory.mktemp("validate-test-skew")
    shifted = _shifted_eval(vh, seed=6)
    shifted.loc[:9, "channel"] = "phone"  # a category the training data never had, in test only
    test_path = vh.write_parquet(shifted, root / "test.parquet")
    outputs = vh.output_paths(root / "out")
    result = _validate(data_dir, outputs, tfdv_python, test_path=test_path)
    return result, outputs


def test_train_test_skew_is_detected_and_attributed_to_the_test_split(skew_run_with_a_shifted_test_split):
    result, _ = skew_run_with_a_shifted_test_split
    assert result.passed is False
    skew = {(d["split"], d["feature"], d["type"]) for d in result.details if d["check"] == "skew"}
    assert skew == {
        ("train/test", "amount", "JS_DISTANCE_HIGH"),
        ("train/test", "country", "COMPARATOR_L_INFTY_HIGH"),
    }
    assert result.anomalies["amount"].startswith("train/test skew: ")
    assert "between train and test" in result.anomalies["amount"]
    exceeded = {(s["splits"], s["feature"]) for s in result.skew if s["exceeded"]}
    assert exceeded == {("train/test", "amount"), ("train/test", "country")}


def test_a_schema_anomaly_of_the_test_split_names_the_test_split(skew_run_with_a_shifted_test_split):
    result, _ = skew_run_with_a_shifted_test_split
    assert ("test", "channel", "ENUM_TYPE_UNEXPECTED_STRING_VALUES") in _types(result)
    assert result.anomalies["channel"].startswith("test: ") and "phone" in result.anomalies["channel"]
    assert result.anomalies_by_split == {
        "train": [],
        "eval": [],
        "test": ["channel"],
        "train/eval": [],
        "train/test": ["amount", "country"],
    }


def test_train_test_skew_is_in_the_report_the_json_and_its_own_text_proto(skew_run_with_a_shifted_test_split):
    result, outputs = skew_run_with_a_shifted_test_split
    with open(outputs.report, encoding="utf-8") as fh:
        text = fh.read()
    assert "| `amount` | train/test | skew | JS_DISTANCE_HIGH | The Jensen-Shannon distance (base 2" in text
    assert "| `channel` | test | schema | ENUM_TYPE_UNEXPECTED_STRING_VALUES |" in text
    assert "By split: test `channel`; train/test `amount`, `country`" in text
    with open(os.path.join(outputs.anomalies, logic.ANOMALIES_JSON_FILE), encoding="utf-8") as fh:
        payload = json.load(fh)
    assert {d["split"] for d in payload["details"]} == {"test", "train/test"}
    with open(os.path.join(outputs.anomalies, logic.TRAIN_TEST_SKEW_FILE), encoding="utf-8") as fh:
        assert "COMPARATOR_L_INFTY_HIGH" in fh.read()
    with open(os.path.join(outputs.anomalies, logic.TRAIN_ANOMALIES_FILE), encoding="utf-8") as fh:
        assert "COMPARATOR_" not in fh.read()  # train/eval: clean
    assert result.metadata["test_statistics"]["split"] == "test"
    assert result.metadata["test_statistics"]["num_examples"] == 200
