"""run_monitor on files: payload logs with a time range, tables, bad input, outputs written together."""

import json
import os
import shutil
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from demo import shifts
from kfpkit.components.monitor import logic


def _payload_log(root, model="shifty", version="1", hours=((2026, 12, 1, 9), (2026, 12, 1, 10)), rows=3000, shift=()):
    """Payload records as the predictor writes them, one file per hour folder."""
    for i, (y, mo, d, h) in enumerate(hours):
        columns = shifts.generate(rows, seed=40 + i, shifts=shift if i == len(hours) - 1 else ())
        table = shifts.to_arrow(columns)
        start = datetime(y, mo, d, h, tzinfo=timezone.utc)
        stamps = [start + timedelta(seconds=s % 3600) for s in range(rows)]
        table = table.append_column("timestamp", pa.array(stamps, pa.timestamp("us", tz="UTC")))
        table = table.append_column("request_id", pa.array([f"r{i}-{k}" for k in range(rows)]))
        folder = os.path.join(root, model, version, f"{y:04d}-{mo:02d}-{d:02d}", f"{h:02d}")
        os.makedirs(folder, exist_ok=True)
        pq.write_table(table, os.path.join(folder, "part-0.parquet"))
    return str(root)


def test_payload_log_time_range_selects_the_drifted_hour_only(tmp_path, model_dir):
    root = _payload_log(tmp_path / "log", shift=["mean"])
    out = logic.OutputPaths.in_folder(str(tmp_path / "out"))
    calm = logic.run_monitor(model_dir, root, out, until="2026-12-01T10:00:00Z")
    assert calm.rows == 3000 and not calm.drift_detected
    both = logic.run_monitor(model_dir, root, out)
    drifted = logic.run_monitor(model_dir, root, out, since="2026-12-01T10:00:00", until="2026-12-01T11:00:00Z")
    assert both.rows == 6000 and drifted.rows == 3000
    assert drifted.drifted_features == ["f00"]
    summary = json.load(open(out.summary_json))
    assert summary["drift_detected"] is True and summary["drifted_features"] == ["f00"]
    assert set(summary["features"]["f00"]) == {"metric", "score", "threshold", "drifted"}
    assert summary["features"]["f00"]["drifted"] is True and summary["score_drift"] is None


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_table_of_raw_feature_rows_is_a_live_window(tmp_path, model_dir, mh, fmt):
    path = mh.write_window(tmp_path / f"live.{fmt}", 4000, seed=8, shift_names=["new_category"], score=True)
    result = logic.run_monitor(model_dir, path, logic.OutputPaths.in_folder(str(tmp_path / "out")), batch_rows=1000)
    assert result.rows == 4000
    assert result.drifted_features == ["c10"]
    c10 = next(f for f in result.features if f.name == "c10")
    assert c10.unseen_values == {shifts.NEW_CATEGORY: pytest.approx(200, abs=60)}
    assert result.score is not None and not result.score.drifted


def test_score_drift_sets_drift_detected_unless_disabled(tmp_path, model_dir, mh):
    path = str(tmp_path / "scored.parquet")
    frame = pa.table(shifts.generate(5000, seed=9)).to_pandas()
    frame["score"] = mh.eval_scores(5000, 9, shifted=True)
    frame.to_parquet(path)
    out = logic.OutputPaths.in_folder(str(tmp_path / "out"))
    result = logic.run_monitor(model_dir, path, out)
    assert result.drift_detected and result.drifted_features == [] and result.score.drifted
    assert not logic.run_monitor(model_dir, path, out, score_drift_triggers=False).drift_detected


def test_html_report_overlays_histograms_with_drifted_features_first(tmp_path, model_dir, mh):
    path = mh.write_window(tmp_path / "live.parquet", 5000, seed=10, shift_names=["variance", "integer_rate"])
    out = logic.OutputPaths.in_folder(str(tmp_path / "out"))
    result = logic.run_monitor(model_dir, path, out)
    page = open(out.report_html, encoding="utf-8").read()
    assert page.count("<svg") == len(shifts.COLUMNS)
    first_two = [page.index(f"<h2>{name} ") for name in result.drifted_features]
    assert max(first_two) < page.index("<h2>f00 ")
    assert set(result.drifted_features) == {"f01", "i_poisson"}


def test_per_feature_threshold_overrides_silence_a_feature(tmp_path, model_dir, mh):
    path = mh.write_window(tmp_path / "live.parquet", 5000, seed=10, shift_names=["integer_rate"])
    quiet = {"i_poisson": {"js": 0.9, "psi": 9.0}}
    result = logic.run_monitor(model_dir, path, logic.OutputPaths(), thresholds=quiet)
    assert not result.drift_detected
    with pytest.raises(logic.MonitorError, match="unknown metric 'ks'"):
        logic.run_monitor(model_dir, path, logic.OutputPaths(), thresholds={"f00": {"ks": 0.1}})


def _assert_nothing_written(out):
    assert not os.path.exists(out) or not os.listdir(out)


def test_a_live_table_missing_a_feature_is_refused_naming_the_column(tmp_path, model_dir, mh):
    path = mh.write_window(tmp_path / "live.parquet", 500, seed=1)
    pq.write_table(pq.read_table(path).drop(["c35"]), path)
    out = str(tmp_path / "out")
    with pytest.raises(logic.MonitorError, match=r"live.parquet: live data lacks feature column\(s\) \['c35'\]"):
        logic.run_monitor(model_dir, path, logic.OutputPaths.in_folder(out))
    _assert_nothing_written(out)


def test_an_empty_window_is_refused(tmp_path, model_dir):
    root = _payload_log(tmp_path / "log", hours=((2026, 12, 1, 9),), rows=100)
    out = str(tmp_path / "out")
    with pytest.raises(logic.MonitorError, match="has no rows between 2026-12-02"):
        logic.run_monitor(model_dir, root, logic.OutputPaths.in_folder(out), since="2026-12-02T00:00:00Z")
    _assert_nothing_written(out)


def test_a_baseline_from_another_model_version_is_refused(tmp_path, model_dir, mh):
    other = mh.make_model_dir(tmp_path / "m" / "2", rows=2000, seed=1)
    shutil.copy(os.path.join(other, "monitoring_baseline.json"), tmp_path / "copied.json")
    forged = tmp_path / "forged" / "1"
    shutil.copytree(model_dir, forged)
    shutil.copy(tmp_path / "copied.json", forged / "monitoring_baseline.json")
    path = mh.write_window(tmp_path / "live.parquet", 500, seed=1)
    with pytest.raises(logic.MonitorError, match="belongs to another model version"):
        logic.run_monitor(str(forged), path, logic.OutputPaths.in_folder(str(tmp_path / "out")))
    _assert_nothing_written(str(tmp_path / "out"))


def test_a_corrupt_parquet_file_is_refused_naming_the_file(tmp_path, model_dir):
    root = _payload_log(tmp_path / "log", hours=((2026, 12, 1, 9), (2026, 12, 1, 10)), rows=200)
    bad = tmp_path / "log" / "shifty" / "1" / "2026-12-01" / "10" / "part-0.parquet"
    bad.write_bytes(bad.read_bytes()[:300] + b"garbage" * 10)
    with pytest.raises(logic.MonitorError, match=r"10/part-0.parquet: not a readable Parquet file"):
        logic.run_monitor(model_dir, root, logic.OutputPaths.in_folder(str(tmp_path / "out")))
    _assert_nothing_written(str(tmp_path / "out"))


def test_a_numeric_feature_holding_strings_is_refused_naming_it(tmp_path, model_dir, mh):
    path = mh.write_window(tmp_path / "live.csv", 300, seed=1)
    text = open(path).read().splitlines()
    header = text[0].split(",")
    col = header.index("f05")
    rows = [line.split(",") for line in text[1:]]
    for row in rows:
        row[col] = "twelve"
    open(path, "w").write("\n".join([text[0], *(",".join(r) for r in rows)]) + "\n")
    with pytest.raises(logic.MonitorError, match=r"numeric feature 'f05' holds string values \(e.g. 'twelve'\)"):
        logic.run_monitor(model_dir, path, logic.OutputPaths())
