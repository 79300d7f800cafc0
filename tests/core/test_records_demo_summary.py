"""DemoSummary: the record of ``demo_summary.json`` (round trip, version, missing and invalid fields)."""

import pytest

from demo import stages as demo
from demo.summary import (
    CanaryStage,
    DemoDrift,
    DemoRollout,
    DemoSummary,
    ModelVersionEntry,
    MonitorStage,
    TrainingStage,
)
from kfpkit.core.records import RecordError, read_record, write_record


def _summary() -> DemoSummary:
    summary = DemoSummary.started("/w", "/w/registry", "fraud-detector", "/w/demo.log")
    summary.stages.train_v1 = TrainingStage(
        "succeeded", 40.1, "/w/outputs/r1", "/w/registry/fraud-detector/1", 1, True, 0.41,
        "http://127.0.0.1:8080", "http://127.0.0.1:9090", None,
    )  # fmt: skip
    summary.stages.canary = CanaryStage("succeeded", 30.0, 480, 0)
    summary.stages.monitor = MonitorStage("succeeded", 2.5)
    summary.model_versions["v1"] = ModelVersionEntry(1, "/w/registry/fraud-detector/1", "synthetic://fraud", 0.41)
    summary.rollout = DemoRollout(
        "promote", "every step passed", 1, 2, 3, [25, 50, 100], ["pass", "pass", "pass"], {"2": 100}, 2,
        "/w/rollout/rollout.json", "/w/rollout/rollout.md",
    )  # fmt: skip
    summary.drift = DemoDrift(True, ["device"], False, 1000, "/w/registry/fraud-detector/2", "2026-01-01T00:00:00Z",
                              "/w/monitor/report.html", "/w/monitor/summary.json", "/w/monitor/drift.json")  # fmt: skip
    return summary


def test_demo_summary_round_trips_through_its_json_file(tmp_path):
    summary = _summary()
    write_record(str(tmp_path / "demo_summary.json"), summary)
    assert read_record(str(tmp_path / "demo_summary.json"), DemoSummary) == summary


def test_demo_summary_names_every_stage_and_writes_the_ones_not_run_as_null():
    document = _summary().to_dict()
    assert (document["record"], document["record_version"]) == ("demo summary", 2)
    assert sorted(document["stages"]) == sorted(demo.STAGES)
    assert document["stages"]["retrain"] is None and document["stages"]["canary"]["non_200"] == 0


def test_demo_summary_of_another_record_version_is_refused():
    with pytest.raises(RecordError, match="demo summary: record_version must be 2, got 1"):
        DemoSummary.from_dict(dict(_summary().to_dict(), record_version=1))


def test_demo_summary_without_a_field_is_refused_naming_it():
    document = _summary().to_dict()
    del document["stages"]["train_v1"]["model_created"]
    with pytest.raises(RecordError, match=r"demo summary: stages\.train_v1\.model_created is missing"):
        DemoSummary.from_dict(document)
    document = _summary().to_dict()
    del document["rollout"]
    with pytest.raises(RecordError, match="demo summary: rollout is missing"):
        DemoSummary.from_dict(document)


def test_demo_summary_with_an_unknown_status_is_refused():
    with pytest.raises(RecordError, match="status must be one of"):
        DemoSummary.from_dict(dict(_summary().to_dict(), status="done"))
