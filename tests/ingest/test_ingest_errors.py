"""Bad input fails with one IngestError naming the problem, and leaves no output files behind."""

import importlib.util

import pandas as pd
import pytest

from kfpkit.components.ingest.logic import IngestError, run_ingest, split_masks


def _assert_fails(source, outputs, match, label="label", **kwargs):
    *paths, out = outputs
    with pytest.raises(IngestError, match=match) as raised:
        run_ingest(source, label, *paths, **kwargs)
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
    message = _assert_fails(str(tmp_path / "t.jsonl"), outputs, "label column 'label' is not binary")
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


def test_empty_eval_split_fails_naming_the_fraction_to_raise(tmp_path, outputs):
    frame = pd.DataFrame({"k": range(3), "label": [0, 1, 0]})
    assert not split_masks(frame, None, 0.01, 0.5, 0)["eval"].any()  # the case the test relies on
    frame.to_csv(tmp_path / "t.csv", index=False)
    _assert_fails(str(tmp_path / "t.csv"), outputs, "eval split is empty.*raise eval_fraction", eval_fraction=0.01)


def test_empty_test_split_fails_naming_the_fraction_to_raise(tmp_path, outputs):
    frame = pd.DataFrame({"k": range(40), "label": [i % 2 for i in range(40)]})
    assert not split_masks(frame, None, 0.3, 0.001, 0)["test"].any()
    frame.to_csv(tmp_path / "t.csv", index=False)
    _assert_fails(
        str(tmp_path / "t.csv"),
        outputs,
        "test split is empty.*raise test_fraction",
        eval_fraction=0.3,
        test_fraction=0.001,
    )


def test_empty_train_split_fails(tmp_path, outputs):
    frame = pd.DataFrame({"k": [5, 5, 5], "label": [0, 1, 0]})
    # one shared key: every row in one split; find a seed that puts it in eval
    seed = next(s for s in range(100) if split_masks(frame, "k", 0.5, 0.3, s)["eval"].all())
    frame.to_csv(tmp_path / "t.csv", index=False)
    _assert_fails(
        str(tmp_path / "t.csv"),
        outputs,
        "train split is empty.*lower eval_fraction or test_fraction",
        eval_fraction=0.5,
        test_fraction=0.3,
        split_key_column="k",
        seed=seed,
    )


def test_a_single_class_train_or_eval_split_fails_naming_the_split(tmp_path, outputs):
    rows = 200
    masks = split_masks(pd.DataFrame({"x": range(rows)}), None, 0.15, 0.15, 0)
    frame = pd.DataFrame({"x": range(rows), "label": [int(i % 2 == 0 and not masks["eval"][i]) for i in range(rows)]})
    frame.to_csv(tmp_path / "no_positive_in_eval.csv", index=False)
    message = _assert_fails(str(tmp_path / "no_positive_in_eval.csv"), outputs, "eval split holds only label 0")
    assert "'label'" in message and "train needs both classes" in message
    ones = frame.assign(label=1)
    ones.to_csv(tmp_path / "all_ones.csv", index=False)
    _assert_fails(str(tmp_path / "all_ones.csv"), outputs, "train split holds only label 1")


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


@pytest.mark.parametrize("parameter", ["eval_fraction", "test_fraction"])
@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf"), True, "0.2"])
def test_a_fraction_outside_zero_one_fails_naming_the_parameter(parameter, fraction, outputs):
    message = _assert_fails(
        "synthetic://fraud?rows=100", outputs, f"^{parameter} must be", label="is_fraud", **{parameter: fraction}
    )
    assert repr(fraction) in message


@pytest.mark.parametrize(("eval_fraction", "test_fraction"), [(0.5, 0.5), (0.7, 0.4), (0.99, 0.01)])
def test_fractions_that_leave_no_room_for_train_fail_naming_both(eval_fraction, test_fraction, outputs):
    _assert_fails(
        "synthetic://fraud?rows=100",
        outputs,
        r"eval_fraction \+ test_fraction must be below 1 \(train gets the rest\)",
        label="is_fraud",
        eval_fraction=eval_fraction,
        test_fraction=test_fraction,
    )


def test_the_same_path_for_two_splits_fails_naming_both(tmp_path):
    path = str(tmp_path / "x.parquet")
    with pytest.raises(IngestError, match="eval_path and test_path are the same file"):
        run_ingest("synthetic://fraud?rows=100", "is_fraud", str(tmp_path / "train.parquet"), path, path)
    with pytest.raises(IngestError, match="train_path and test_path are the same file"):
        run_ingest("synthetic://fraud?rows=100", "is_fraud", path, str(tmp_path / "eval.parquet"), path)
    with pytest.raises(IngestError, match="missing: test_path"):
        run_ingest("synthetic://fraud?rows=100", "is_fraud", path, str(tmp_path / "eval.parquet"), "")
    assert list(tmp_path.iterdir()) == []


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
    blocker.write_text("a file where the test folder should be")
    out = tmp_path / "out"
    with pytest.raises(OSError):
        run_ingest(
            "synthetic://fraud?rows=500&fraud_rate=0.2",
            "is_fraud",
            str(out / "train.parquet"),
            str(out / "eval" / "eval.parquet"),
            str(blocker / "test.parquet"),
        )
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_unreachable_http_source_fails_with_one_ingest_error(outputs):
    import socket

    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _assert_fails(f"http://127.0.0.1:{port}/t.csv", outputs, f"cannot read source 'http://127.0.0.1:{port}/t.csv'")
