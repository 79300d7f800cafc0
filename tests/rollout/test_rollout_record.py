"""The rollout record: one typed, versioned record built by the analysis and written by one writer."""

from __future__ import annotations

import json

import pytest

from kfpkit.components.rollout import analysis
from kfpkit.components.rollout.analysis import Measurement, RolloutConfig
from kfpkit.components.rollout.logic import run_rollout_task
from kfpkit.core.records import RecordError
from kfpkit.core.rollout_record import (
    CHECK_NAMES,
    RolloutRecord,
    read_rollout_record,
    to_markdown,
    write_rollout_record,
)
from kfpkit.core.traffic import Side, Traffic

EDGES = [0.25, 0.5, 0.75, 1.0, float("inf")]


class _Backend:
    """A backend with a canary at 0 %, recording every call."""

    NAME = "fake"

    def __init__(self):
        self.percent, self.calls = 0, []

    def current(self):
        return Traffic("models", "fraud", Side("1"), Side("2"), self.percent, url="http://fraud.models")

    def set_canary_percent(self, percent):
        self.calls.append(percent)
        self.percent = percent
        return self.current()

    def promote(self):
        self.calls.append("promote")
        self.percent = 100
        return self.current()

    def rollback(self):
        self.calls.append("rollback")
        self.percent = 0
        return self.current()


class _Source:
    """The same healthy numbers for both versions."""

    def measure(self, traffic, side, interval_s, at=None):
        return Measurement(200.0, 0.0, 0.02, [400, 300, 200, 100, 0], list(EDGES))


def _promoted_record(on_step=None) -> RolloutRecord:
    config = RolloutConfig(steps=(50, 100), interval_s=1.0, min_requests=10)
    clock = iter(float(t) for t in range(100))
    return analysis.run_rollout(
        _Backend(), _Source(), config, clock=lambda: next(clock), sleep=lambda _s: None, on_step=on_step
    )


def test_a_promoted_rollout_records_every_check_of_every_step_then_the_decision():
    record = _promoted_record()
    assert record.backend == "fake" and record.url == "http://fraud.models"
    assert [(s.weight, s.verdict) for s in record.steps] == [(50, "pass"), (100, "pass")]
    assert [c.metric for c in record.steps[0].metrics] == list(CHECK_NAMES)
    assert record.decision == "promote" and record.final_traffic == {"2": 100} and record.final_canary_percent == 100
    assert record.steps[0].canary.requests == 200.0 and record.steps[1].stable.requests is None  # 100 %: no stable


def test_the_record_round_trips_through_its_json_file(tmp_path):
    record = _promoted_record()
    write_rollout_record(record, str(tmp_path / "rollout.json"), str(tmp_path / "rollout.md"))
    assert read_rollout_record(str(tmp_path / "rollout.json")) == record
    document = json.loads((tmp_path / "rollout.json").read_text())
    assert document["record"] == "rollout record" and document["record_version"] == RolloutRecord.VERSION
    assert RolloutRecord.from_json(record.to_json()) == record


def test_the_writer_rewrites_the_json_every_step_and_writes_the_markdown_once_decided(tmp_path):
    json_path, md_path = tmp_path / "rollout.json", tmp_path / "rollout.md"
    seen = []

    def on_step(record):
        write_rollout_record(record, str(json_path), str(md_path))
        seen.append((len(read_rollout_record(str(json_path)).steps), md_path.exists()))

    record = _promoted_record(on_step)
    assert seen == [(1, False), (2, False), (2, True)]
    text = md_path.read_text()
    assert text == to_markdown(record)
    assert "# Rollout of models/fraud: **promote**" in text and "| 2 | 100% | score_psi | relative |" in text
    assert "`score_js_distance`: Jensen-Shannon distance, base 2" in text
    assert "`score_psi`: PSI, counts smoothed by 0.5" in text


def test_a_record_of_another_version_is_refused(tmp_path):
    path = tmp_path / "rollout.json"
    path.write_text(json.dumps(dict(_promoted_record().to_dict(), record_version=RolloutRecord.VERSION + 1)))
    with pytest.raises(RecordError, match=rf"rollout.json: record_version must be {RolloutRecord.VERSION}"):
        read_rollout_record(str(path))


def test_an_unversioned_record_of_the_old_shape_is_refused():
    old = {k: v for k, v in _promoted_record().to_dict().items() if k not in ("record", "record_version")}
    with pytest.raises(RecordError, match="record must be 'rollout record'"):
        RolloutRecord.from_dict(dict(old, intervals_to_decision=2))


def test_a_missing_field_is_refused_naming_it():
    document = _promoted_record().to_dict()
    del document["canary_version"]
    with pytest.raises(RecordError, match="rollout record: canary_version is missing"):
        RolloutRecord.from_dict(document)
    document = _promoted_record().to_dict()
    del document["steps"][1]["metrics"][3]["threshold"]
    with pytest.raises(RecordError, match=r"steps\[1\]\.metrics\[3\]\.threshold is missing"):
        RolloutRecord.from_dict(document)


def test_a_verdict_or_decision_outside_the_vocabulary_is_refused_naming_the_field():
    document = _promoted_record().to_dict()
    document["steps"][0]["metrics"][2]["verdict"] = "ok"
    with pytest.raises(RecordError, match=r"steps\[0\]\.metrics\[2\]\.verdict must be one of .*got 'ok'"):
        RolloutRecord.from_dict(document)
    with pytest.raises(RecordError, match="decision must be one of"):
        RolloutRecord.from_dict(dict(_promoted_record().to_dict(), decision="promoted"))


def test_the_rollout_component_logic_writes_the_record_through_the_writer(tmp_path, monkeypatch):
    from kfpkit.components.rollout import logic

    monkeypatch.setattr(logic, "PrometheusSource", lambda client, templates: _Source())
    record = run_rollout_task(
        name="fraud",
        namespace="models",
        prometheus_url="http://127.0.0.1:9",
        record_markdown_path=str(tmp_path / "record.md"),
        record_json_path=str(tmp_path / "record.json"),
        steps=[50, 100],
        interval_s=0.01,
        min_requests=10,
        backend=_Backend(),
    )
    assert read_rollout_record(str(tmp_path / "record.json")) == record
    assert (tmp_path / "record.md").read_text() == to_markdown(record)
    assert record.decision == "promote"
