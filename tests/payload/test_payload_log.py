"""The predictor-side payload logger: partitioned Parquet records off the request path, drops counted."""

import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from prometheus_client import REGISTRY

from kfpkit.core.payload_record import RESERVED_COLUMNS, PayloadSchema
from kfpkit.serving.payload_log import PayloadLogger


def _columns(rows):
    return {
        "amount": np.linspace(1.0, 2.0, rows),
        "hour": np.arange(rows, dtype=np.float64),
        "channel": ["web"] * rows,
        "country": [None] + ["DE"] * (rows - 1),
    }


def _dropped(model, reason):
    return REGISTRY.get_sample_value("kfpkit_payload_dropped_total", {"model_name": model, "reason": reason}) or 0.0


def _read(root):
    files = sorted(glob.glob(os.path.join(root, "**", "*.parquet"), recursive=True))
    return files, (pq.ParquetDataset(files).read() if files else None)


def test_records_are_partitioned_by_model_version_date_hour_with_the_documented_columns(tmp_path, ph):
    spec = ph.make_spec()
    log = PayloadLogger(str(tmp_path / "log"), "fraud", "3", spec, flush_seconds=0.05)
    log.log(_columns(3), np.array([0.1, 0.7, 0.2]), np.array([0, 1, 0]), request_id="req-1")
    log.log(_columns(2), np.array([0.9, 0.3]), np.array([1, 0]))
    log.close()
    files, table = _read(str(tmp_path / "log"))
    assert files and all("/fraud/3/" in f for f in files)
    day, hour = files[0].split("/")[-3:-1]
    assert len(day) == 10 and day[4] == "-" and len(hour) == 2
    assert table.num_rows == 5
    assert table.schema.names == [*RESERVED_COLUMNS[:5], *spec.feature_order, *RESERVED_COLUMNS[5:]]
    rows = table.sort_by([("request_id", "ascending"), ("instance", "ascending")]).to_pylist()
    first = next(r for r in rows if r["request_id"] == "req-1" and r["instance"] == 0)
    assert first["country"] is None and first["channel"] == "web" and first["score"] == 0.1
    assert first["label"] == 0 and first["ground_truth"] is None and first["model_version"] == "3"
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"


def test_sampling_logs_whole_requests_at_about_the_rate(tmp_path, ph):
    log = PayloadLogger(str(tmp_path / "log"), "sampled", "1", ph.make_spec(), sample_rate=0.25, seed=3)
    for _ in range(400):
        log.log(_columns(2), np.array([0.5, 0.5]), np.array([1, 1]))
    log.close()
    _, table = _read(str(tmp_path / "log"))
    assert 60 <= table.num_rows / 2 <= 140 and table.num_rows % 2 == 0
    with pytest.raises(ValueError, match="sample rate"):
        PayloadLogger(str(tmp_path / "x"), "m", "1", ph.make_spec(), sample_rate=0)


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path, ph):
    before = _dropped("full", "queue_full")
    log = PayloadLogger(str(tmp_path / "log"), "full", "1", ph.make_spec(), max_queue=1, flush_seconds=5.0)
    start = time.perf_counter()
    for _ in range(200):
        log.log(_columns(1), np.array([0.5]), np.array([1]))
    assert time.perf_counter() - start < 0.5
    log.close()
    _, table = _read(str(tmp_path / "log"))
    dropped = _dropped("full", "queue_full") - before
    assert dropped > 0 and dropped + table.num_rows == 200


def test_a_failing_sink_counts_the_dropped_records(tmp_path, ph):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log root should be")
    before = _dropped("broken", "write_error")
    log = PayloadLogger(str(blocker), "broken", "1", ph.make_spec(), flush_seconds=0.01)
    log.log(_columns(4), np.full(4, 0.5), np.ones(4))
    log.close()
    assert _dropped("broken", "write_error") - before == 4


def test_features_named_like_record_columns_are_refused(ph):
    spec = ph.make_spec()
    spec.feature_order = [*spec.feature_order, "score"]
    with pytest.raises(ValueError, match=r"\['score'\] collide with payload record columns"):
        PayloadSchema(spec)


def test_sigterm_flushes_what_is_queued(tmp_path, ph):
    spec_path = tmp_path / "preprocessing.json"
    ph.make_spec().save(str(spec_path))
    code = textwrap.dedent(
        f"""
        import sys, time, numpy as np
        from kfpkit.core.preprocessing import PreprocessingSpec
        from kfpkit.serving.payload_log import PayloadLogger
        log = PayloadLogger({str(tmp_path / "log")!r}, "term", "1", PreprocessingSpec.load({str(spec_path)!r}),
                            flush_seconds=3600)
        log.install_sigterm_flush()
        for i in range(50):
            log.log({{"amount": [1.0], "hour": [2.0], "channel": ["web"], "country": ["US"]}}, np.array([0.5]),
                    np.array([1]), request_id=f"r{{i}}")
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    _, table = _read(str(tmp_path / "log"))
    assert table.num_rows == 50
