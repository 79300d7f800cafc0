"""RunSummary: the run summary record of ``kfpkit run`` (round trip, version, missing and invalid fields)."""

import dataclasses

import pytest

from kfpkit.core.records import RecordError, read_record, write_record
from kfpkit.core.run_summary import RunSummary, ValidationOutcome


def _summary(**changes) -> RunSummary:
    summary = RunSummary(
        pipeline="training",
        status="succeeded",
        failed_task=None,
        blessed=True,
        blessing_reasons=["pass: PR-AUC 0.41 >= floor 0.20"],
        infra_blessed=True,
        model_uri="/r/fraud-detector/2",
        model_version=2,
        model_created=False,
        metrics={"pr_auc": 0.41, "ece": 0.01},
        metrics_split="test",
        baseline_metrics={"pr_auc": 0.40},
        training_metrics={"eval": {"pr_auc": 0.43, "best_epoch": 3}},
        validation=ValidationOutcome(passed=True, anomalies={}),
        tasks=["evaluate", "infra-validate", "ingest", "push", "train", "validate"],
        pipeline_root="/o",
        run_dir="/o/kfpkit-training-1",
        run_log="/o/kfpkit-training-1/run.log",
        artifacts={"train.model": "/o/kfpkit-training-1/train/model", "push.pushed_model": None},
        duration_s=41.5,
    )
    return dataclasses.replace(summary, **changes)


def test_run_summary_round_trips_through_its_json_file(tmp_path):
    summary = _summary()
    write_record(str(tmp_path / "summary.json"), summary)
    read = read_record(str(tmp_path / "summary.json"), RunSummary)
    assert read == summary and read.validation == ValidationOutcome(True, {})
    assert (read.pushed, read.succeeded, read.pr_auc) == (True, True, 0.41)


def test_run_summary_document_starts_with_its_kind_and_version():
    document = _summary().to_dict()
    assert list(document)[:3] == ["record", "record_version", "pipeline"]
    assert (document["record"], document["record_version"]) == ("run summary", 3)


def test_run_summary_of_another_record_version_is_refused():
    with pytest.raises(RecordError, match="run summary: record_version must be 3, got 2"):
        RunSummary.from_dict(dict(_summary().to_dict(), record_version=2))


def test_the_summary_version_2_document_is_refused_as_not_a_run_summary_record():
    legacy = {k: v for k, v in _summary().to_dict().items() if k not in ("record", "record_version")}
    with pytest.raises(RecordError, match="record must be 'run summary', got None"):
        RunSummary.from_dict(dict(legacy, summary_version=2))


@pytest.mark.parametrize("name", ["model_created", "validation", "tasks", "duration_s"])
def test_run_summary_without_a_field_is_refused_naming_it(name):
    document = _summary().to_dict()
    del document[name]
    with pytest.raises(RecordError, match=f"run summary: {name} is missing"):
        RunSummary.from_dict(document)


def test_run_summary_fields_of_the_wrong_type_or_value_are_refused_naming_them():
    with pytest.raises(RecordError, match=r"validation\.passed must be a boolean"):
        RunSummary.from_dict(dict(_summary().to_dict(), validation={"passed": "yes", "anomalies": {}}))
    with pytest.raises(RecordError, match="status must be one of"):
        RunSummary.from_dict(dict(_summary().to_dict(), status="done"))
    with pytest.raises(RecordError, match="model_uri, model_version and model_created must all be set"):
        RunSummary.from_dict(dict(_summary().to_dict(), model_created=None))
