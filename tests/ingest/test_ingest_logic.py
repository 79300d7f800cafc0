"""run_ingest on real files: formats, sources, label normalization, split and deterministic outputs."""

import concurrent.futures
import gzip
import hashlib
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kfpkit.components.ingest.logic import canonical_key, run_ingest, split_eval_mask
from kfpkit.components.ingest.sources import redact_uri

METADATA_KEYS = {
    "rows",
    "columns",
    "sha256",
    "source_uri",
    "label_column",
    "label_rate",
    "split",
    "format",
    "split_key",
    "eval_fraction",
    "split_seed",
}


def _read(path):
    return pd.read_parquet(path)


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_synthetic_ingest_writes_both_splits_with_their_metadata(outputs):
    train_path, eval_path, _ = outputs
    source = "synthetic://fraud?rows=5000&seed=3&fraud_rate=0.05&drift=0"
    result = run_ingest(source, "is_fraud", train_path, eval_path)

    train, evaluation = _read(train_path), _read(eval_path)
    assert len(train) + len(evaluation) == 5000
    assert 0.17 < len(evaluation) / 5000 < 0.23
    for frame, meta, split in ((train, result.train_metadata, "train"), (evaluation, result.eval_metadata, "eval")):
        assert set(meta) == METADATA_KEYS
        assert meta["rows"] == len(frame)
        assert meta["split"] == split
        assert meta["source_uri"] == source
        assert meta["label_column"] == "is_fraud"
        assert meta["format"] == "synthetic"
        assert meta["split_key"] == "row_number"
        assert meta["label_rate"] == pytest.approx(frame["is_fraud"].mean())
        assert meta["columns"] == {c: str(t) for c, t in frame.dtypes.items()}
        assert meta["columns"]["is_fraud"] == "int64"
    assert result.train_metadata["sha256"] == _sha256(train_path)
    assert result.eval_metadata["sha256"] == _sha256(eval_path)
    assert set(train["transaction_id"]).isdisjoint(evaluation["transaction_id"])


def test_parquet_files_have_no_index_column_and_snappy_compression(outputs):
    train_path, eval_path, _ = outputs
    run_ingest("synthetic://fraud?rows=300", "is_fraud", train_path, eval_path)
    parquet = pq.ParquetFile(train_path)
    assert parquet.schema_arrow.names == list(_read(train_path).columns)
    assert "__index_level_0__" not in parquet.schema_arrow.names
    assert parquet.metadata.row_group(0).column(0).compression == "SNAPPY"
    assert not (parquet.schema_arrow.metadata or {}).get(b"pandas")


def test_same_input_gives_byte_identical_files_across_runs_and_processes(tmp_path):
    source = "synthetic://fraud?rows=3000&seed=7"
    first = run_ingest(source, "is_fraud", str(tmp_path / "a" / "train"), str(tmp_path / "a" / "eval"))
    second = run_ingest(source, "is_fraud", str(tmp_path / "b" / "train"), str(tmp_path / "b" / "eval"))
    code = (
        "import sys; from kfpkit.components.ingest.logic import run_ingest; "
        "r = run_ingest(sys.argv[1], 'is_fraud', sys.argv[2], sys.argv[3]); "
        "print(r.train_metadata['sha256'], r.eval_metadata['sha256'])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, source, str(tmp_path / "c" / "train"), str(tmp_path / "c" / "eval")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    assert (tmp_path / "a" / "train").read_bytes() == (tmp_path / "b" / "train").read_bytes()
    assert (tmp_path / "a" / "eval").read_bytes() == (tmp_path / "c" / "eval").read_bytes()
    assert first.train_metadata["sha256"] == second.train_metadata["sha256"]
    assert out.stdout.split() == [first.train_metadata["sha256"], first.eval_metadata["sha256"]]


def test_csv_parquet_and_jsonl_sources_give_the_same_splits(tmp_path, small_frame):
    small_frame.to_csv(tmp_path / "t.csv", index=False)
    small_frame.to_parquet(tmp_path / "t.parquet", index=False)
    small_frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    results = {}
    for name in ("t.csv", "t.parquet", "t.jsonl"):
        out = tmp_path / name.replace(".", "_")
        result = run_ingest(str(tmp_path / name), "label", str(out / "train"), str(out / "eval"), eval_fraction=0.3)
        results[name] = (result, _read(out / "train"), _read(out / "eval"))
    formats = [r.train_metadata["format"] for r, _, _ in results.values()]
    assert formats == ["csv", "parquet", "jsonl"]
    reference_train = results["t.csv"][1]
    for _, train, evaluation in results.values():
        pd.testing.assert_frame_equal(train, reference_train)
        assert len(train) + len(evaluation) == len(small_frame)
        assert set(train["id"]).isdisjoint(evaluation["id"])
    # identical data give identical bytes whatever the format it came from
    assert len({r.train_metadata["sha256"] for r, _, _ in results.values()}) == 1


def test_file_uri_gzip_and_format_override_are_read(tmp_path, small_frame, outputs):
    train_path, eval_path, _ = outputs
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(small_frame.to_csv(index=False).encode()))
    via_gzip = run_ingest((tmp_path / "t.csv.gz").as_uri(), "label", train_path, eval_path)
    assert via_gzip.train_metadata["source_uri"].startswith("file://")
    assert via_gzip.train_metadata["rows"] + via_gzip.eval_metadata["rows"] == len(small_frame)

    (tmp_path / "export.txt").write_text(small_frame.to_json(orient="records", lines=True))
    forced = run_ingest(
        str(tmp_path / "export.txt"),
        "label",
        str(tmp_path / "f" / "tr"),
        str(tmp_path / "f" / "ev"),
        file_format="jsonl",
    )
    assert forced.train_metadata["format"] == "jsonl"
    assert forced.train_metadata["sha256"] == via_gzip.train_metadata["sha256"]


def test_http_source_is_read_through_fsspec(http_root, tmp_path, small_frame):
    folder, base_url = http_root
    small_frame.to_csv(folder / "table.csv", index=False)
    small_frame.to_csv(tmp_path / "table.csv", index=False)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(
            run_ingest, f"{base_url}/table.csv", "label", str(tmp_path / "h" / "train"), str(tmp_path / "h" / "eval")
        )
        remote = future.result(timeout=60)
    local = run_ingest(
        str(tmp_path / "table.csv"), "label", str(tmp_path / "l" / "train"), str(tmp_path / "l" / "eval")
    )
    assert remote.train_metadata["source_uri"] == f"{base_url}/table.csv"
    assert remote.train_metadata["sha256"] == local.train_metadata["sha256"]
    assert remote.eval_metadata["rows"] == local.eval_metadata["rows"] > 0


@pytest.mark.parametrize(
    ("values", "stored"),
    [
        ([True, False, True, False], [1, 0, 1, 0]),
        (["true", "False", " TRUE ", "false"], [1, 0, 1, 0]),
        (["1", "0", "1", "0"], [1, 0, 1, 0]),
        ([1.0, 0.0, 1.0, 0.0], [1, 0, 1, 0]),
        ([1, 0, 1, 1], [1, 0, 1, 1]),
    ],
)
def test_labels_are_normalized_to_int64_zero_one(tmp_path, values, stored):
    rows = 40
    frame = pd.DataFrame({"id": range(rows), "label": pd.Series(values * (rows // 4), dtype=object)})
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    run_ingest(str(tmp_path / "t.parquet"), "label", str(tmp_path / "train"), str(tmp_path / "eval"))
    both = pd.concat([_read(tmp_path / "train"), _read(tmp_path / "eval")]).sort_values("id")
    assert both["label"].dtype == np.int64
    assert both["label"].tolist() == stored * (rows // 4)


def test_csv_true_false_labels_are_normalized(tmp_path, outputs):
    train_path, eval_path, _ = outputs
    (tmp_path / "t.csv").write_text("x,label\n" + "".join(f"{i},{'true' if i % 2 else 'false'}\n" for i in range(30)))
    result = run_ingest(str(tmp_path / "t.csv"), "label", train_path, eval_path)
    assert result.train_metadata["columns"]["label"] == "int64"
    assert set(_read(train_path)["label"]) == {0, 1}


def test_split_by_row_number_is_stable_disjoint_and_complete(tmp_path, small_frame):
    small_frame.to_csv(tmp_path / "t.csv", index=False)
    ids = {}
    for run in ("a", "b"):
        run_ingest(str(tmp_path / "t.csv"), "label", str(tmp_path / run / "tr"), str(tmp_path / run / "ev"))
        ids[run] = (set(_read(tmp_path / run / "tr")["id"]), set(_read(tmp_path / run / "ev")["id"]))
    train_ids, eval_ids = ids["a"]
    assert ids["a"] == ids["b"]
    assert train_ids.isdisjoint(eval_ids) and train_ids | eval_ids == set(range(len(small_frame)))
    run_ingest(str(tmp_path / "t.csv"), "label", str(tmp_path / "s" / "tr"), str(tmp_path / "s" / "ev"), seed=1)
    assert set(_read(tmp_path / "s" / "ev")["id"]) != eval_ids


def test_split_by_key_keeps_rows_that_share_a_key_together(tmp_path, small_frame):
    shuffled = small_frame.sample(frac=1.0, random_state=0)
    shuffled.to_csv(tmp_path / "t.csv", index=False)
    result = run_ingest(
        str(tmp_path / "t.csv"),
        "label",
        str(tmp_path / "tr"),
        str(tmp_path / "ev"),
        eval_fraction=0.4,
        split_key_column="customer",
    )
    train, evaluation = _read(tmp_path / "tr"), _read(tmp_path / "ev")
    assert result.eval_metadata["split_key"] == "customer"
    assert set(train["customer"]).isdisjoint(evaluation["customer"])
    assert len(train) + len(evaluation) == len(small_frame)
    # the split depends on the key, not on the row order
    small_frame.to_csv(tmp_path / "ordered.csv", index=False)
    run_ingest(str(tmp_path / "ordered.csv"), "label", str(tmp_path / "o_tr"), str(tmp_path / "o_ev"), 0.4, "customer")
    assert set(_read(tmp_path / "o_ev")["customer"]) == set(evaluation["customer"])


def test_split_follows_the_documented_keyed_blake2b_hash():
    keys = [f"k{i}" for i in range(200)]
    mask = split_eval_mask(pd.DataFrame({"key": keys}), "key", 0.25, seed=3)
    salt = hashlib.sha256(b"kfpkit-ingest-split/3").digest()
    expected = [
        int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8, key=salt).digest(), "big") < int(0.25 * 2**64)
        for k in keys
    ]
    assert mask.tolist() == expected
    assert 30 < sum(expected) < 70
    row_mask = split_eval_mask(pd.DataFrame({"x": range(200)}), None, 0.25, seed=3)
    assert (
        row_mask.tolist()
        == split_eval_mask(pd.DataFrame({"key": [str(i) for i in range(200)]}), "key", 0.25, 3).tolist()
    )


def test_integer_float_and_string_keys_hash_alike():
    as_int = split_eval_mask(pd.DataFrame({"k": [7, 8, 9, 10]}), "k", 0.5, 0)
    as_float = split_eval_mask(pd.DataFrame({"k": [7.0, 8.0, 9.0, 10.0]}), "k", 0.5, 0)
    as_str = split_eval_mask(pd.DataFrame({"k": ["7", "8", "9", "10"]}), "k", 0.5, 0)
    assert as_int.tolist() == as_float.tolist() == as_str.tolist()
    assert canonical_key(True) == "true" and canonical_key(2.5) == "2.5" and canonical_key(float("nan")) is None


def test_redact_uri_hides_credentials_and_signatures():
    uri = "https://user:pw@host.example/data/t.csv?X-Amz-Signature=abc&X-Amz-Credential=me&version=3"
    redacted = redact_uri(uri)
    assert "pw" not in redacted and "abc" not in redacted and "user" not in redacted
    assert (
        redacted == "https://host.example/data/t.csv?X-Amz-Signature=<redacted>&X-Amz-Credential=<redacted>&version=3"
    )
    assert redact_uri("/local/t.csv") == "/local/t.csv"


def test_100k_row_synthetic_ingest_splits_every_row_exactly_once(tmp_path):
    result = run_ingest("synthetic://fraud?rows=100000", "is_fraud", str(tmp_path / "tr"), str(tmp_path / "ev"))
    assert result.train_metadata["rows"] + result.eval_metadata["rows"] == 100_000
    assert 0.15 < result.eval_metadata["rows"] / 100_000 < 0.25


def test_train_and_eval_share_one_schema_even_when_a_split_sees_only_missing_values(tmp_path, outputs):
    train_path, eval_path, _ = outputs
    rows = 60
    mask = split_eval_mask(pd.DataFrame({"x": range(rows)}), None, 0.2, 0)
    frame = pd.DataFrame(
        {
            "note": [None if evaluation else f"n{i}" for i, evaluation in enumerate(mask)],
            "label": [i % 2 for i in range(rows)],
        }
    )
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    result = run_ingest(str(tmp_path / "t.jsonl"), "label", train_path, eval_path)
    assert pq.read_schema(train_path) == pq.read_schema(eval_path)
    assert str(pq.read_schema(eval_path).field("note").type) == "string"
    assert _read(eval_path)["note"].isna().all() and result.eval_metadata["columns"]["note"] == "object"
