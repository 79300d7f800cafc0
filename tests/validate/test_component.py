"""The validate component's python_func on three clean splits with tmp-path artifacts, and its KFP interface."""

import json
import os

import pytest
from kfp import compiler, dsl

from kfpkit.components.validate import logic
from kfpkit.components.validate.component import validate

LABEL = "is_fraud"


@pytest.mark.tfdv
def test_clean_data_passes(clean_component_run):
    assert clean_component_run.outputs is True
    assert clean_component_run.artifacts["anomalies"].metadata["anomaly_count"] == 0


@pytest.mark.tfdv
def test_statistics_are_binary_protos_with_metadata(clean_component_run):
    artifacts = clean_component_run.artifacts
    splits = (("train_statistics", "train", 400), ("eval_statistics", "eval", 200), ("test_statistics", "test", 200))
    for name, split, rows in splits:
        artifact = artifacts[name]
        assert os.path.isfile(artifact.path) and os.path.getsize(artifact.path) > 100
        assert artifact.metadata["format"] == "tfdv.DatasetFeatureStatisticsList"
        assert artifact.metadata["split"] == split
        assert artifact.metadata["num_examples"] == rows


@pytest.mark.tfdv
def test_schema_has_training_and_serving_environments_and_label_only_in_training(clean_component_run):
    schema = clean_component_run.artifacts["schema"]
    with open(schema.path, encoding="utf-8") as fh:
        text = fh.read()
    assert 'default_environment: "TRAINING"' in text and 'default_environment: "SERVING"' in text
    label_block = text.split(f'name: "{LABEL}"', 1)[1].split("\nfeature {", 1)[0]
    assert 'not_in_environment: "SERVING"' in label_block
    assert "skew_comparator" not in label_block
    assert schema.metadata["environments"] == ["TRAINING", "SERVING"]
    assert schema.metadata["schema_source"] == "inferred"


@pytest.mark.tfdv
def test_baseline_is_a_directory_with_training_statistics_and_schema(clean_component_run):
    artifacts = clean_component_run.artifacts
    baseline = artifacts["baseline"].path
    assert sorted(os.listdir(baseline)) == [logic.BASELINE_SCHEMA_FILE, logic.BASELINE_STATS_FILE]
    with open(os.path.join(baseline, logic.BASELINE_STATS_FILE), "rb") as fh:
        with open(artifacts["train_statistics"].path, "rb") as stats:
            assert fh.read() == stats.read()
    with open(os.path.join(baseline, logic.BASELINE_SCHEMA_FILE), encoding="utf-8") as fh:
        with open(artifacts["schema"].path, encoding="utf-8") as schema:
            assert fh.read() == schema.read()


@pytest.mark.tfdv
def test_anomalies_metadata_carries_passed_and_the_feature_map(clean_component_run):
    anomalies = clean_component_run.artifacts["anomalies"]
    assert anomalies.metadata["passed"] is True
    assert anomalies.metadata["anomalies"] == {}
    assert anomalies.metadata["anomalies_by_split"] == {
        s: [] for s in ("train", "eval", "test", "train/eval", "train/test")
    }
    with open(os.path.join(anomalies.path, logic.ANOMALIES_JSON_FILE), encoding="utf-8") as fh:
        payload = json.load(fh)
    assert payload["passed"] is True
    assert payload["num_examples"] == {"train": 400, "eval": 200, "test": 200}
    assert {s["splits"] for s in payload["skew"]} == {"train/eval", "train/test"}
    assert {f["name"] for f in payload["features"]} == {"amount", "hour", "channel", "country", "device", LABEL}


@pytest.mark.tfdv
def test_report_is_markdown_with_the_feature_summary(clean_component_run):
    report = clean_component_run.artifacts["report"]
    with open(report.path, encoding="utf-8") as fh:
        text = fh.read()
    assert text.startswith("# Data validation: PASSED")
    assert "No anomalies." in text
    assert "- train: 400 rows, eval: 200 rows, test: 200 rows" in text
    assert "| feature | type | missing % train / eval / test | train | eval | test |" in text
    assert "| `amount` | FLOAT | 0.0 % / 0.0 % / 0.0 % | min " in text
    assert "| `channel` | STRING | 0.0 % / 0.0 % / 0.0 % | 3 unique · top: " in text
    assert "| `amount` | train/test | Jensen-Shannon distance |" in text


def test_component_uses_the_tfdv_image_and_types_its_interface(tmp_path):
    container = validate.component_spec.implementation.container
    assert "/kfpkit-tfdv:" in container.image

    @dsl.pipeline
    def pipe(train_uri: str = "gs://b/train.parquet"):
        train = dsl.importer(artifact_uri=train_uri, artifact_class=dsl.Dataset)
        curated = dsl.importer(artifact_uri="gs://b/schema.pbtxt", artifact_class=dsl.Artifact)
        validate(
            train_data=train.output,
            eval_data=train.output,
            test_data=train.output,
            label_column=LABEL,
            curated_schema=curated.output,
            skew_thresholds={"amount": 0.5},
            beam_pipeline_args=["--runner=DirectRunner"],
        )

    path = tmp_path / "pipe.yaml"
    compiler.Compiler().compile(pipe, str(path))
    text = path.read_text()
    spec = validate.component_spec
    assert set(spec.outputs) == {
        "train_statistics",
        "eval_statistics",
        "test_statistics",
        "schema",
        "anomalies",
        "baseline",
        "report",
        "Output",
    }
    assert "system.Markdown" in text
    assert "parameterType: STRUCT" in text  # skew_thresholds is a typed dict, not JSON in a string
    assert "parameterType: LIST" in text
