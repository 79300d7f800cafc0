"""The Markdown report and the {feature: description} map, on hand-made results (no TFDV)."""

from kfpkit.components.validate import logic, report


def _result(details, skew=None, features=None):
    anomalies = logic._anomaly_map(details)
    return {
        "passed": not anomalies,
        "anomaly_count": len(anomalies),
        "anomalies": anomalies,
        "details": details,
        "skew": skew or [],
        "features": features or [],
        "num_examples": {"train": 400, "eval": 200},
        "schema_source": "inferred",
        "eval_environment": "TRAINING",
        "statistics_mode": "in-memory",
        "thresholds": {
            "default_numeric_js_threshold": 0.3,
            "default_categorical_linf_threshold": 0.3,
            "skew_thresholds": {"amount": 0.5},
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


def test_report_has_the_anomalies_table_with_one_row_per_reason():
    text = report.render_markdown(_result(DETAILS))
    assert text.startswith("# Data validation: FAILED")
    assert "| feature | split | check | anomaly | description |" in text
    assert "| `country` | eval | schema | SCHEMA_MISSING_COLUMN | Column is completely missing |" in text
    assert "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH" in text
    assert "a\\|b" in text  # a pipe inside a description does not break the table
    assert "per feature: amount 0.5" in text


def test_report_of_clean_data_says_passed_and_summarizes_features():
    features = [
        {
            "name": "amount",
            "type": "FLOAT",
            "train": {"kind": "numeric", "min": 1.0, "mean": 50.5, "max": 900.0, "missing_pct": 0.0},
            "eval": {"kind": "numeric", "min": 2.0, "mean": 51.0, "max": 800.0, "missing_pct": 1.5},
        },
        {
            "name": "channel",
            "type": "STRING",
            "train": {"kind": "categorical", "unique": 3, "top_values": [["web", 40.0]], "missing_pct": 0.0},
            "eval": None,
        },
    ]
    skew = [
        {"feature": "amount", "metric": "jensen_shannon_divergence", "value": 0.01, "threshold": 0.3, "exceeded": False}
    ]
    text = report.render_markdown(_result([], skew=skew, features=features))
    assert text.startswith("# Data validation: PASSED")
    assert "No anomalies." in text
    assert "| `amount` | Jensen-Shannon divergence | 0.0100 | 0.3 | no |" in text
    assert "| `amount` | FLOAT | 0.0 % / 1.5 % | min 1 · mean 50.5 · max 900 | min 2 · mean 51 · max 800 |" in text
    assert "| `channel` | STRING | 0.0 % / absent | 3 unique · top: web (40.0 %) | absent |" in text


def test_failure_message_lists_every_feature():
    result = logic.ValidationResult(
        passed=False,
        anomaly_count=2,
        anomalies={"amount": "train/eval skew: high", "country": "eval: Column is completely missing"},
        details=[],
        skew=[],
        features=[],
        num_examples={"train": 400, "eval": 200},
        schema_source="inferred",
        environments=["TRAINING", "SERVING"],
        eval_environment="TRAINING",
        statistics_mode="in-memory",
        thresholds={},
    )
    message = logic.failure_message(result, "/tmp/report.md")
    assert "2 feature(s) with anomalies" in message
    assert "  - country: eval: Column is completely missing" in message
    assert message.endswith("Report: /tmp/report.md")
