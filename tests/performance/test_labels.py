"""Delayed labels in: reading label tables, the latest label per key, the join's counts, bad input."""

import functools
import http.server
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kfpkit.components.performance import labels as lab

AS_OF = int(pd.Timestamp("2026-02-01", tz="UTC").value)


def _write(frame, path):
    path = str(path)
    if path.endswith(".csv"):
        frame.to_csv(path, index=False)
    elif path.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def _keys(*pairs):
    return lab.key_columns(
        [pa.array([p[0] for p in pairs]), pa.array([p[1] for p in pairs], pa.int32())], ["r", "i"], "t"
    )


def _labels(rows):
    return pd.DataFrame(rows, columns=["request_id", "instance", "is_fraud", "labelled_at"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_the_latest_label_per_key_wins_whatever_the_order_and_format(tmp_path, suffix):
    path = _write(
        _labels(
            [
                ("a", 0, 1, "2026-01-03T00:00:00Z"),  # latest of a: wins though read first
                ("a", 0, 0, "2026-01-02T00:00:00Z"),
                ("b", 1, 0, "2026-01-02T00:00:00Z"),
                ("b", 1, 1, "2026-01-02T00:00:00Z"),  # same time: the row read last wins
            ]
        ),
        tmp_path / f"labels{suffix}",
    )
    table = lab.read_labels([path], "is_fraud")
    joined = lab.join_labels(_keys(("a", 0), ("b", 1), ("c", 0)), np.zeros(3, np.int64), table, AS_OF)
    assert joined.label.tolist() == [1, 1, -1]


def test_the_join_counts_duplicates_conflicts_out_of_order_unknown_and_late_labels_exactly(tmp_path):
    rows = [
        ("a", 0, 1, "2026-01-05"),
        ("a", 0, 1, "2026-01-06"),  # duplicate delivery (same label)
        ("b", 0, 0, "2026-01-04"),  # out of order (earlier than a row read before)
        ("b", 0, 1, "2026-01-07"),  # conflicting: b has 0 and 1, 1 wins
        ("c", 0, 1, "2026-01-03"),  # out of order
        ("z", 0, 1, "2026-01-08"),  # unknown key
        ("d", 0, 1, "2026-03-01"),  # known after as_of: left out
    ]
    table = lab.read_labels([_write(_labels(rows), tmp_path / "l.csv")], "is_fraud")
    times = np.full(4, int(pd.Timestamp("2026-01-04T12:00", tz="UTC").value))
    joined = lab.join_labels(_keys(("a", 0), ("b", 0), ("c", 0), ("d", 0)), times, table, AS_OF)
    assert joined.label.tolist() == [1, 1, 1, -1]
    c = joined.counts
    assert (c.rows, c.after_as_of, c.keys, c.superseded, c.duplicates) == (7, 1, 4, 2, 1)
    assert (c.conflicting_keys, c.out_of_order, c.unknown_keys, c.matched) == (1, 2, 1, 3)
    assert c.labelled_before_scored == 1  # c was labelled on the 3rd, scored on the 4th


def test_a_business_key_joins_whatever_its_type_in_either_table(tmp_path):
    labels = pd.DataFrame({"transaction_id": [101.0, 102.0], "y": [True, False], "labelled_at": ["2026-01-02"] * 2})
    table = lab.read_labels([_write(labels, tmp_path / "l.parquet")], "y", ["transaction_id"])
    live = lab.key_columns([pa.array(["101", "102", "103"])], ["transaction_id"], "live")
    assert lab.join_labels(live, np.zeros(3, np.int64), table, AS_OF).label.tolist() == [1, 0, -1]


def test_several_tables_are_read_in_order_and_their_rows_add_up(tmp_path):
    first = _write(_labels([("a", 0, 0, "2026-01-02")]), tmp_path / "1.csv")
    second = _write(_labels([("a", 0, 1, "2026-01-03"), ("b", 0, 0, "2026-01-01")]), tmp_path / "2.jsonl")
    table = lab.read_labels([first, second], "is_fraud")
    joined = lab.join_labels(_keys(("a", 0), ("b", 0)), np.zeros(2, np.int64), table, AS_OF)
    assert joined.label.tolist() == [1, 0]
    assert (joined.counts.rows, joined.counts.out_of_order) == (3, 1)


def test_labels_are_read_over_http(tmp_path):
    _write(_labels([("a", 0, 1, "2026-01-02")]), tmp_path / "labels.csv")
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        table = lab.read_labels([f"http://127.0.0.1:{server.server_port}/labels.csv"], "is_fraud")
    finally:
        server.shutdown()
    assert table.labels.tolist() == [1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("a", 0, 1, "2026-01-02"), ("b", 0, 2, "2026-01-02")], r"l\.csv: row 2, column 'is_fraud': bad label 2"),
        ([("a", 0, 1, "2026-01-02"), ("b", 0, "yes", "2026-01-02")], r"row 2, column 'is_fraud': bad label 'yes'"),
        ([("a", 0, None, "2026-01-02")], r"row 1, column 'is_fraud': the label is missing"),
        ([("a", 0, 1, "2026-01-02"), ("b", 0, 1, "soon")], r"row 2, column 'labelled_at': 'soon' is not an ISO-8601"),
        ([("a", 0, 1, None), ("b", 0, 1, "2026-01-02")], r"row 1, column 'labelled_at': .* missing"),
        ([("a", 0, 1, "2026-01-02"), (None, 0, 1, "2026-01-02")], r"row 2, column 'request_id': the key is missing"),
    ],
)
def test_a_bad_value_is_refused_naming_the_file_row_and_column(tmp_path, rows, message):
    path = _write(_labels(rows), tmp_path / "l.csv")
    with pytest.raises(lab.LabelError, match=message):
        lab.read_labels([path], "is_fraud")


def test_a_missing_column_or_file_is_refused_naming_it(tmp_path):
    path = _write(_labels([("a", 0, 1, "2026-01-02")]).drop(columns="labelled_at"), tmp_path / "l.csv")
    with pytest.raises(lab.LabelError, match=r"l\.csv: label table lacks column\(s\) \['labelled_at'\]"):
        lab.read_labels([path], "is_fraud")
    with pytest.raises(lab.LabelError, match="not found"):
        lab.read_labels([str(tmp_path / "absent.csv")], "is_fraud")


def test_keys_compare_as_text_across_types_and_a_row_without_key_gets_no_label(tmp_path):
    labels = pd.DataFrame(
        {
            "request_id": ["a", "b", "c"],
            "instance": [1.0, 0.0, 2.0],
            "is_fraud": [1, 0, 1],
            "labelled_at": ["2026-01-02"] * 3,
        }
    )
    table = lab.read_labels([_write(labels, tmp_path / "l.parquet")], "is_fraud")
    # instance as int32 (payload log) and as text: 1 = 1.0 = "1"; a null key matches nothing
    as_ints = lab.key_columns([pa.array(["a", "b", None, "c"]), pa.array([1, 0, 2, 1], pa.int32())], ["r", "i"], "t")
    as_text = lab.key_columns([pa.array(["a", "b", "c", "c"]), pa.array(["1", "0", None, "2"])], ["r", "i"], "t")
    assert lab.join_labels(as_ints, np.zeros(4, np.int64), table, AS_OF).label.tolist() == [1, 0, -1, -1]
    joined = lab.join_labels(as_text, np.zeros(4, np.int64), table, AS_OF)
    assert joined.label.tolist() == [1, 0, -1, 1]
    assert (joined.counts.matched, joined.counts.unknown_keys) == (3, 0)


def test_tables_whose_key_types_differ_are_joined_as_text(tmp_path):
    first = _write(_labels([("a", 0, 0, "2026-01-02")]), tmp_path / "1.parquet")
    second = _write(
        pd.DataFrame({"request_id": ["a"], "instance": ["0"], "is_fraud": [1], "labelled_at": ["2026-01-03"]}),
        tmp_path / "2.parquet",
    )
    table = lab.read_labels([first, second], "is_fraud")
    joined = lab.join_labels(_keys(("a", 0)), np.zeros(1, np.int64), table, AS_OF)
    assert joined.label.tolist() == [1]
    assert (joined.counts.keys, joined.counts.conflicting_keys) == (1, 1)


def test_reading_parquet_labels_and_the_join_import_no_pandas(tmp_path):
    """pandas' import costs ~0.3 s of CPU per run: Arrow and numpy alone read Parquet labels and join them."""
    import subprocess
    import sys

    path = _write(
        _labels([("a", 0, 1, "2026-01-03T00:00:00Z"), ("", 1, 0, "2026-01-02T00:00:00Z")]), tmp_path / "l.parquet"
    )
    good = _write(_labels([("a", 0, 1, "2026-01-03T00:00:00Z")]), tmp_path / "good.parquet")
    rows = _write(_labels([("a", 0, 0, "2026-01-01"), ("b", 0, 0, "2026-01-01")]), tmp_path / "rows.parquet")
    script = (
        "import sys, numpy as np, pyarrow.parquet as pq\n"
        "from kfpkit.components.performance import labels as lab\n"
        f"table = lab.read_labels([{good!r}], 'is_fraud')\n"
        f"rows = pq.ParquetFile({rows!r}).read()\n"
        "keys = lab.key_columns([rows.column('request_id'), rows.column('instance')], ['r', 'i'], 't')\n"
        "joined = lab.join_labels(keys, np.zeros(2, np.int64), table, 2**62)\n"
        "assert joined.label.tolist() == [1, -1], joined.label\n"
        f"try:\n    lab.read_labels([{path!r}], 'is_fraud')\nexcept lab.LabelError as exc:\n    print(exc)\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [f"{path}: row 2, column 'request_id': the key is missing", "False"]


def test_a_local_table_and_model_folder_are_read_without_fsspec_or_the_registry(ph, tmp_path):
    """fsspec's and the registry's imports cost ~0.1 s per run: local paths are opened directly."""
    import subprocess
    import sys

    generated = ph.traffic.generate(2000, 3, "none", days=2)
    live = str(tmp_path / "live.parquet")
    generated.frame.to_parquet(live, index=False)
    labels = str(tmp_path / "labels.csv")
    ph.traffic.labels_frame(generated).to_csv(labels, index=False)
    script = (
        "import sys\n"
        "from kfpkit.components.performance import logic\n"
        f"inputs = logic.PerformanceInputs({ph.model_dir!r}, {live!r}, [{labels!r}], 'is_fraud',"
        " as_of='2026-02-01T00:00:00Z')\n"
        "summary = logic.run_performance(inputs, logic.PerformanceSettings(resamples=20), logic.OutputPaths())\n"
        "print(summary.rows, sorted(m for m in sys.modules if m.startswith(('fsspec', 'kfpkit.core.registry'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "2000 []"


def test_live_times_of_any_unit_and_scores_of_any_float_width_are_read_alike(tmp_path):
    import pyarrow.parquet as pq

    from kfpkit.components.performance.live import read_live

    stamps = np.array(["2026-01-01T00:00:01.5", "2026-01-01T00:00:03", "2026-01-02T10:00:00"], "datetime64[ns]")
    scores = np.array([0.25, 0.5, 0.75])
    as_of = pd.Timestamp("2026-02-01", tz="UTC").to_pydatetime()
    read = {}
    for name, times, values in (
        ("ns", pa.array(stamps, pa.timestamp("ns", tz="UTC")), pa.array(scores)),
        ("ms", pa.array(stamps.astype("datetime64[ms]"), pa.timestamp("ms")), pa.array(scores, pa.float32())),
    ):
        path = str(tmp_path / f"{name}.parquet")
        pq.write_table(pa.table({"timestamp": times, "score": values}), path)
        read[name] = read_live(path, [], "timestamp", "score", as_of)
    assert read["ns"].times.tolist() == read["ms"].times.tolist() == stamps.astype(np.int64).tolist()
    assert read["ns"].scores.tolist() == read["ms"].scores.tolist() == scores.tolist()


def test_table_formats_agree_with_the_monitors_without_importing_it_for_parquet_names():
    from kfpkit.components.monitor.logic import table_format as monitor_table_format
    from kfpkit.components.performance.tables import table_format

    names = ["a.parquet", "A.PARQUET", "/x/.parquet", "..parquet", "x/y.parquet?v=1", "gs://b/a.parquet", "a.pq"]
    names += ["a.parquet.gz", "a.csv", "a.jsonl.gz", "dir/", "s3://b/log", "http://h/a.parquet?sig=1/2", ".a.parquet"]
    assert [table_format(n) for n in names] == [monitor_table_format(n) for n in names]
