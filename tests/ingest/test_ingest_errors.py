"""Bad input fails with one IngestError naming the problem, and leaves no output files behind."""

import importlib.util
import os

import pandas as pd
import pytest

from kfpkit.components.ingest.logic import IngestError, run_ingest, split_eval_mask


def _assert_fails(source, outputs, match, label="label", **kwargs):
    train_path, eval_path, out = outputs
    with pytest.raises(IngestError, match=match) as raised:
        run_ingest(source, label, train_path, eval_path, **kwargs)
    assert not out.exists(), f"left behind: {list(out.rglob('*'))}"
    return str(raised.value)


def test_missing_file_fails_naming_the_file(tmp_path, outputs):
    message = _assert_fails(str(tmp_path / "nope.csv"), outputs, "not found")
    assert "nope.csv" in message


def test_missing_file_over_http_fails_naming_the_url(http_root, outputs):
    _, base_url = http_root
    message = _assert_fails(f"{base_url}/absent.csv", outputs, "not found")
    assert f"{base_url}/absent.csv" in message


def test_empty_file_fails_naming_the_file(tmp_path, outputs):
    (tmp_path / "empty.csv").write_bytes(b"")
    assert "empty.csv" in _assert_fails(str(tmp_path / "empty.csv"), outputs, "is empty")


def test_header_only_csv_fails_as_having_no_rows(tmp_path, outputs):
    (tmp_path / "header.csv").write_text("a,label\n")
    _assert_fails(str(tmp_path / "header.csv"), outputs, "no data rows")


def test_unparsable_csv_rows_fail_naming_the_line(tmp_path, outputs):
    (tmp_path / "bad.csv").write_text("a,label\n1,0\n2,1,extra\n3,0\n")
    message = _assert_fails(str(tmp_path / "bad.csv"), outputs, "unparsable CSV rows")
    assert "bad.csv" in message and "line 3" in message


def test_invalid_json_lines_fail_naming_the_first_bad_line(tmp_path, outputs):
    (tmp_path / "bad.jsonl").write_text('{"a": 1, "label": 0}\n{"a": 2, "label": \n{"a": 3, "label": 1}\n')
    message = _assert_fails(str(tmp_path / "bad.jsonl"), outputs, "unparsable JSON Lines")
    assert "line 2" in message and "bad.jsonl" in message


def test_a_non_parquet_file_with_a_parquet_extension_fails(tmp_path, outputs):
    (tmp_path / "fake.parquet").write_text("a,label\n1,0\n")
    _assert_fails(str(tmp_path / "fake.parquet"), outputs, "not a readable Parquet file")


def test_unknown_extension_fails_asking_for_file_format(tmp_path, outputs):
    (tmp_path / "data.bin").write_text("a,label\n1,0\n")
    _assert_fails(str(tmp_path / "data.bin"), outputs, r"cannot tell the format .*file_format")
    _assert_fails(str(tmp_path / "data.bin"), outputs, "unknown file_format 'xml'", file_format="xml")


def test_missing_label_column_fails_naming_the_column(tmp_path, small_frame, outputs):
    small_frame.to_csv(tmp_path / "t.csv", index=False)
    message = _assert_fails(str(tmp_path / "t.csv"), outputs, "label column 'is_fraud' not found", label="is_fraud")
    assert "'amount'" in message  # lists the columns that exist


def test_non_binary_label_fails_naming_the_offending_values(tmp_path, small_frame, outputs):
    frame = small_frame.astype({"label": object})
    frame.loc[3, "label"] = 2
    frame.loc[5, "label"] = "yes"
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    message = _assert_fails(str(tmp_path / "t.jsonl"), outputs, "label column 'label' .* is not binary")
    assert "2" in message and "'yes'" in message and "2 row(s)" in message


def test_integer_label_outside_zero_one_fails(tmp_path, outputs):
    pd.DataFrame({"a": range(20), "label": [0, 1, 2, 3] * 5}).to_parquet(tmp_path / "t.parquet")
    message = _assert_fails(str(tmp_path / "t.parquet"), outputs, "not binary")
    assert "offending values 2, 3" in message


def test_missing_label_values_fail(tmp_path, outputs):
    (tmp_path / "t.csv").write_text("a,label\n1,0\n2,\n3,1\n4,1\n")
    _assert_fails(str(tmp_path / "t.csv"), outputs, r"not binary: offending values 1 missing value\(s\)")


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("synthetic://payments?rows=10", "unknown synthetic generator 'payments'"),
        ("synthetic://fraud?rows=abc", "'rows'='abc' .* is not an integer"),
        ("synthetic://fraud?rows=0", "'rows' must be an integer >= 1"),
        ("synthetic://fraud?rows=100&drift=2", "'drift' must be in"),
        ("synthetic://fraud?rows=100&fraud_rate=x", "'fraud_rate'='x' .* is not a number"),
        ("synthetic://fraud?rows=100&fraud_rate=1", "'fraud_rate' must be in"),
        ("synthetic://fraud?rows=100&seed=-3", "'seed' must be an integer >= 0"),
        ("synthetic://fraud?rows=100&colour=red", "unknown synthetic parameter 'colour'"),
        ("synthetic://fraud?rows=100&rows=200", "'rows' given more than once"),
        ("synthetic://fraud/extra?rows=100", "takes no path"),
    ],
)
def test_bad_synthetic_source_fails_naming_the_parameter(source, match, outputs):
    _assert_fails(source, outputs, match, label="is_fraud")


def test_synthetic_source_with_another_label_column_fails(outputs):
    _assert_fails("synthetic://fraud?rows=100", outputs, "label column 'is_fraud'", label="fraud")


def test_empty_eval_split_fails(tmp_path, outputs):
    frame = pd.DataFrame({"k": range(3), "label": [0, 1, 0]})
    assert not split_eval_mask(frame, None, 0.01, 0).any()  # the case the test relies on
    frame.to_csv(tmp_path / "t.csv", index=False)
    _assert_fails(str(tmp_path / "t.csv"), outputs, "eval split is empty", eval_fraction=0.01)


def test_empty_train_split_fails(tmp_path, outputs):
    frame = pd.DataFrame({"k": [5, 5, 5], "label": [0, 1, 0]})
    seed = next(s for s in range(100) if split_eval_mask(frame, "k", 0.5, s).all())  # one shared key: all in eval
    frame.to_csv(tmp_path / "t.csv", index=False)
    _assert_fails(
        str(tmp_path / "t.csv"), outputs, "train split is empty", eval_fraction=0.5, split_key_column="k", seed=seed
    )


def test_missing_split_key_column_or_values_fail(tmp_path, small_frame, outputs):
    small_frame.to_csv(tmp_path / "t.csv", index=False)
    _assert_fails(str(tmp_path / "t.csv"), outputs, "split key column 'user' not found", split_key_column="user")
    (tmp_path / "gaps.csv").write_text("k,label\n1,0\n,1\n3,0\n")
    _assert_fails(str(tmp_path / "gaps.csv"), outputs, "'k' .* has 1 missing value", split_key_column="k")


def test_column_with_mixed_types_fails_naming_the_column(tmp_path, outputs):
    (tmp_path / "mixed.jsonl").write_text(
        "".join(f'{{"a": {i}, "label": {i % 2}}}\n' for i in range(20)) + '{"a": "x", "label": 0}\n'
    )
    _assert_fails(str(tmp_path / "mixed.jsonl"), outputs, "column 'a' .* cannot be stored in Parquet")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, float("nan")])
def test_eval_fraction_outside_zero_one_fails(fraction, outputs):
    _assert_fails(
        "synthetic://fraud?rows=100", outputs, "eval_fraction must be", label="is_fraud", eval_fraction=fraction
    )


def test_same_train_and_eval_path_fails(tmp_path):
    path = str(tmp_path / "x.parquet")
    with pytest.raises(IngestError, match="same file"):
        run_ingest("synthetic://fraud?rows=100", "is_fraud", path, path)
    assert not os.path.exists(path)


@pytest.mark.parametrize(("scheme", "extra"), [("gs", "kfpkit[gcs]"), ("s3", "kfpkit[s3]")])
def test_object_store_without_its_filesystem_package_names_the_extra(scheme, extra, outputs):
    package = {"gs": "gcsfs", "s3": "s3fs"}[scheme]
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed")
    _assert_fails(
        f"{scheme}://bucket/data/t.csv",
        outputs,
        rf"needs an optional package: pip install '{extra}'".replace("[", r"\["),
    )


def test_unknown_scheme_fails(outputs):
    _assert_fails("ftpx://host/t.csv", outputs, "unsupported source scheme 'ftpx://'")


def test_failure_while_writing_removes_the_partial_output(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the eval folder should be")
    train_path = tmp_path / "out" / "train.parquet"
    with pytest.raises(OSError):
        run_ingest("synthetic://fraud?rows=500", "is_fraud", str(train_path), str(blocker / "eval.parquet"))
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_unreachable_http_source_fails_with_one_ingest_error(outputs):
    import socket

    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _assert_fails(f"http://127.0.0.1:{port}/t.csv", outputs, f"cannot read source 'http://127.0.0.1:{port}/t.csv'")
