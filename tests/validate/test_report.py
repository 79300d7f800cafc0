"""The Markdown report and the {feature: description} map, on hand-made results (no TFDV)."""

from kfpkit.components.validate import logic, report


def _result(details, skew=None, features=None):
    anomalies = logic._anomaly_map(details)
    return {
        "passed": not anomalies,
        "anomaly_count": len(anomalies),
        "anomalies": anomalies,
        "anomalies_by_split": logic.anomalies_by_split(details),
        "details": details,
        "skew": skew or [],
        "features": features or [],
        "num_examples": {"train": 400, "eval": 200, "test": 150},
        "schema_source": "inferred",
        "eval_environment": "TRAINING",
        "statistics_mode": "in-memory",
        "thresholds": {
            "default_numeric_js_threshold": 0.1,
            "default_categorical_linf_threshold": 0.3,
            "skew_thresholds": {"amount": 0.5},
            "numeric_metric": logic.NUMERIC_SKEW_METRIC,
            "numeric_skew_alpha": logic.NUMERIC_SKEW_ALPHA,
        },
    }


DETAILS = [
    {
        "split": "eval",
        "check": "schema",
        "feature": "country",
        "type": "SCHEMA_MISSING_COLUMN",
        "short_description": "Column dropped",
        "description": "Column is completely missing",
        "severity": "ERROR",
    },
    {
        "split": "train/eval",
        "check": "skew",
        "feature": "amount",
        "type": "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
        "short_description": "High approximate Jensen-Shannon divergence between train and eval",
        "description": "The approximate Jensen-Shannon divergence between train and eval is 0.4, above 0.3.",
        "severity": "ERROR",
    },
    {
        "split": "eval",
        "check": "schema",
        "feature": "channel",
        "type": "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
        "short_description": "Unexpected string values",
        "description": "Examples contain values missing from the schema: a|b (~3%).",
        "severity": "ERROR",
    },
]


def test_anomaly_map_names_each_feature_once_with_where_it_was_seen():
    anomalies = logic._anomaly_map([*DETAILS, dict(DETAILS[0], split="train")])
    assert list(anomalies) == ["amount", "channel", "country"]
    assert anomalies["country"] == "eval: Column is completely missing; train: Column is completely missing"
    assert anomalies["amount"].startswith("train/eval skew: The approximate Jensen-Shannon divergence")


def test_anomaly_map_and_by_split_name_the_test_split_and_the_train_test_pair():
    details = [
        dict(DETAILS[0], split="test"),
        dict(DETAILS[1], split="train/test", description="The approximate Jensen-Shannon divergence is 0.5."),
    ]
    anomalies = logic._anomaly_map(details)
    assert anomalies == {
        "amount": "train/test skew: The approximate Jensen-Shannon divergence is 0.5.",
        "country": "test: Column is completely missing",
    }
    by_split = logic.anomalies_by_split([*details, dict(DETAILS[0], split="test")])
    assert by_split == {"train": [], "eval": [], "test": ["country"], "train/eval": [], "train/test": ["amount"]}


def test_report_has_the_anomalies_table_with_one_row_per_reason():
    text = report.render_markdown(_result(DETAILS))
    assert text.startswith("# Data validation: FAILED")
    assert "| feature | split | check | anomaly | description |" in text
    assert "| `country` | eval | schema | SCHEMA_MISSING_COLUMN | Column is completely missing |" in text
    assert "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH" in text
    assert "a\\|b" in text  # a pipe inside a description does not break the table
    assert "per feature: amount 0.5" in text
    assert "By split: eval `channel`, `country`; train/eval `amount`" in text
    assert "- train: 400 rows, eval: 200 rows, test: 150 rows" in text


def test_report_header_names_the_numeric_metric_exactly_and_how_the_noise_floor_decides():
    text = report.render_markdown(_result([]))
    assert (
        "- skew thresholds: numeric Jensen-Shannon distance, base 2, on quantile bins of train 0.1, "
        "categorical L-infinity distance (TFDV) 0.3; per feature: amount 0.5"
    ) in text
    assert "divergence" not in text
    assert "exceeds max(threshold, noise floor)" in text and "with probability 1e-06 for the two split sizes" in text


def test_report_of_clean_data_says_passed_and_summarizes_features():
    features = [
        {
            "name": "amount",
            "type": "FLOAT",
            "train": {"kind": "numeric", "min": 1.0, "mean": 50.5, "max": 900.0, "missing_pct": 0.0},
            "eval": {"kind": "numeric", "min": 2.0, "mean": 51.0, "max": 800.0, "missing_pct": 1.5},
            "test": {"kind": "numeric", "min": 3.0, "mean": 49.0, "max": 700.0, "missing_pct": 0.5},
        },
        {
            "name": "channel",
            "type": "STRING",
            "train": {"kind": "categorical", "unique": 3, "top_values": [["web", 40.0]], "missing_pct": 0.0},
            "eval": None,
            "test": {"kind": "categorical", "unique": 2, "top_values": [["pos", 55.0]], "missing_pct": 0.0},
        },
    ]
    skew = [
        {
            "feature": "amount",
            "splits": splits,
            "metric": "jensen_shannon_distance",
            "value": value,
            "threshold": 0.1,
            "exceeded": False,
            "noise_floor": 0.0312,
            "bins": 20,
            "rows": [70000, 15000],
        }
        for splits, value in (("train/eval", 0.01), ("train/test", 0.02))
    ]
    channel = {"feature": "channel", "splits": "train/eval", "metric": "l_infinity", "value": 0.04, "threshold": 0.3}
    skew.append(dict(channel, exceeded=False))
    text = report.render_markdown(_result([], skew=skew, features=features))
    assert text.startswith("# Data validation: PASSED")
    assert "No anomalies." in text
    assert "By split" not in text
    assert "| feature | splits | metric | value | threshold | noise floor | exceeded |" in text
    assert "| `amount` | train/eval | Jensen-Shannon distance | 0.0100 | 0.1 | 0.0312 | no |" in text
    assert "| `amount` | train/test | Jensen-Shannon distance | 0.0200 | 0.1 | 0.0312 | no |" in text
    assert "| `channel` | train/eval | L-infinity distance | 0.0400 | 0.3 | - | no |" in text
    assert (
        "| `amount` | FLOAT | 0.0 % / 1.5 % / 0.5 % | min 1 · mean 50.5 · max 900 | min 2 · mean 51 · max 800 "
        "| min 3 · mean 49 · max 700 |"
    ) in text
    assert "| `channel` | STRING | 0.0 % / absent / 0.0 % | 3 unique · top: web (40.0 %) | absent | 2 unique" in text


def test_failure_message_lists_every_feature():
    result = logic.ValidationResult(
        passed=False,
        anomaly_count=2,
        anomalies={"amount": "train/test skew: high", "country": "eval: Column is completely missing"},
        anomalies_by_split={"eval": ["country"], "train/test": ["amount"]},
        details=[],
        skew=[],
        features=[],
        num_examples={"train": 400, "eval": 200, "test": 150},
        schema_source="inferred",
        environments=["TRAINING", "SERVING"],
        eval_environment="TRAINING",
        statistics_mode="in-memory",
        thresholds={},
    )
    message = logic.failure_message(result, "/tmp/report.md")
    assert "2 feature(s) with anomalies" in message
    assert "train 400 rows, eval 200 rows, test 150 rows" in message
    assert "  - amount: train/test skew: high" in message
    assert "  - country: eval: Column is completely missing" in message
    assert message.endswith("Report: /tmp/report.md")
