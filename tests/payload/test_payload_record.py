"""The payload record contract (kfpkit.core.payload_record): rows, Parquet files, version tag and hour layout."""

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfpkit.components.monitor import logic as monitor
from kfpkit.core import payload_record as pr
from kfpkit.core.records import RecordError
from kfpkit.serving.payload_log import PayloadLogger


def _record(request_id="req-1", instance=0, timestamp="2026-12-01T09:15:00.250000+00:00", **overrides):
    fields = {
        "request_id": request_id,
        "instance": instance,
        "timestamp": timestamp,
        "model_name": "fraud",
        "model_version": "3",
        "features": {"amount": 12.5, "hour": 3.0, "channel": "web", "country": None},
        "score": 0.25,
        "label": 0,
        "ground_truth": None,
    }
    fields.update(overrides)
    return pr.PayloadRecord(**fields)


def _tagged(table, kind=pr.RECORD_KIND, version=str(pr.RECORD_VERSION)):
    return table.replace_schema_metadata({pr.METADATA_KIND: kind.encode(), pr.METADATA_VERSION: version.encode()})


def test_a_payload_record_round_trips_through_its_document():
    record = _record()
    document = record.to_dict()
    assert document["record"] == "payload record" and document["record_version"] == 1
    assert pr.PayloadRecord.from_dict(document) == record
    assert pr.PayloadRecord.from_json(record.to_json()) == record


def test_a_payload_record_of_another_version_is_refused():
    document = {**_record().to_dict(), "record_version": 2}
    with pytest.raises(RecordError, match="record_version must be 1, got 2"):
        pr.PayloadRecord.from_dict(document)


def test_a_payload_record_missing_a_field_is_refused_naming_the_field():
    document = _record().to_dict()
    del document["score"]
    with pytest.raises(RecordError, match="payload record: score is missing"):
        pr.PayloadRecord.from_dict(document)


def test_a_payload_record_timestamp_without_an_offset_is_refused_naming_the_field():
    document = {**_record().to_dict(), "timestamp": "2026-12-01T09:15:00"}
    with pytest.raises(RecordError, match="timestamp must be an ISO-8601 time with a UTC offset"):
        pr.PayloadRecord.from_dict(document)
    assert _record(timestamp="2026-12-01T10:15:00+01:00").timestamp == "2026-12-01T09:15:00.000000+00:00"


def test_records_round_trip_through_the_partitioned_parquet_files(tmp_path, ph):
    schema = pr.PayloadSchema(ph.make_spec())
    records = [
        _record("a", 0),
        _record("a", 1, features={"amount": None, "hour": 23.0, "channel": None, "country": "DE"}, score=None),
        _record("b", 0, timestamp="2026-12-01T10:00:00+00:00", label=1, ground_truth=1),
    ]
    written = pr.write_partitioned(str(tmp_path), schema.records_table(records), "part-0.parquet")
    assert [pr.partition_of(path) for path in written] == [
        pr.Partition("fraud", "3", datetime(2026, 12, 1, hour, tzinfo=timezone.utc)) for hour in (9, 10)
    ]
    read = [r for path in written for r in pr.records_from_table(pq.read_table(path), where=path)]
    assert read == records


def test_the_logger_writes_tagged_files_whose_rows_read_back_as_records(tmp_path, ph):
    log = PayloadLogger(str(tmp_path / "log"), "fraud", "3", ph.make_spec(), flush_seconds=0.05)
    columns = {"amount": [1.5, np.nan], "hour": [2.0, 3.0], "channel": ["web", "pos"], "country": ["US", None]}
    log.log(columns, np.array([0.1, 0.9]), np.array([0, 1]), request_id="req-7")
    log.close()
    (path,) = [str(p) for p in (tmp_path / "log").rglob("*.parquet")]
    table = pq.read_table(path)
    assert pr.check_schema(table.schema, path) == pr.RECORD_VERSION
    first, second = pr.records_from_table(table, where=path)
    assert (first.request_id, first.instance, second.instance) == ("req-7", 0, 1)
    assert second.features == {"amount": None, "hour": 3.0, "channel": "pos", "country": None}
    assert (second.score, second.label, second.ground_truth) == (0.9, 1, None)
    assert pr.partition_of(path) == pr.Partition("fraud", "3", first.time.replace(minute=0, second=0, microsecond=0))


def test_a_payload_file_of_another_version_is_refused_by_the_reader_and_the_monitor(tmp_path, ph):
    schema = pr.PayloadSchema(ph.make_spec())
    table = _tagged(schema.records_table([_record()]), version="2")
    folder = tmp_path / "log" / "fraud" / "3" / "2026-12-01" / "09"
    folder.mkdir(parents=True)
    pq.write_table(table, str(folder / "part-0.parquet"))
    with pytest.raises(RecordError, match=r"part-0.parquet: payload record_version must be 1, got '2'"):
        pr.check_schema(pq.read_schema(str(folder / "part-0.parquet")), str(folder / "part-0.parquet"))
    with pytest.raises(monitor.MonitorError, match=r"09/part-0.parquet: payload record_version must be 1, got '2'"):
        list(monitor.iter_window(str(tmp_path / "log"), ["amount"]))


def test_a_tagged_payload_file_missing_or_mistyping_a_record_column_is_refused_naming_it(ph):
    table = pr.PayloadSchema(ph.make_spec()).records_table([_record()])
    with pytest.raises(RecordError, match=r"f.parquet: payload record column 'ground_truth' is missing"):
        pr.check_schema(_tagged(table.drop_columns(["ground_truth"])).schema, "f.parquet")
    retyped = table.set_column(table.schema.get_field_index("score"), "score", pa.array(["0.25"]))
    with pytest.raises(RecordError, match=r"column 'score' must be double, got string"):
        pr.check_schema(_tagged(retyped).schema, "f.parquet")
    with pytest.raises(RecordError, match=r"record must be 'payload record', got 'label record'"):
        pr.check_schema(_tagged(table, kind="label record").schema, "f.parquet")


def test_untagged_payload_files_are_read_as_they_are_but_still_need_the_record_columns(ph):
    table = pr.PayloadSchema(ph.make_spec()).records_table([_record()]).replace_schema_metadata(None)
    assert pr.check_schema(table.schema, "old.parquet") is None
    assert pr.records_from_table(table) == [_record()]
    with pytest.raises(RecordError, match=r"old.parquet: payload record column 'label' is missing"):
        pr.records_from_table(table.drop_columns(["label"]), where="old.parquet")


def test_a_records_table_refuses_records_whose_features_differ_from_the_schema(ph):
    schema = pr.PayloadSchema(ph.make_spec())
    with pytest.raises(RecordError, match=r"features lacks feature\(s\) \['country'\]"):
        schema.records_table([_record(features={"amount": 1.0, "hour": 2.0, "channel": "web"})])


def test_the_partition_path_and_its_parsers_agree():
    hour = datetime(2026, 1, 2, 3, tzinfo=timezone.utc)
    path = f"gs://bucket/log/{pr.partition_path('fraud', '12', hour)}/part-x.parquet"
    assert path == "gs://bucket/log/fraud/12/2026-01-02/03/part-x.parquet"
    assert pr.partition_of(path) == pr.Partition("fraud", "12", hour)
    assert pr.Partition("fraud", "12", hour).path == "fraud/12/2026-01-02/03"
    assert pr.partition_hour("2026-01-02/03/part.parquet") == hour
    assert pr.partition_of("2026-01-02/03/part.parquet") is None
    assert pr.partition_hour("fraud/12/latest/part.parquet") is None
    assert pr.model_prefix("fraud") == "fraud" and pr.model_prefix("fraud", "12") == "fraud/12"
