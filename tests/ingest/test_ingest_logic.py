"""run_ingest on real files: formats, sources, label normalization, three-way split and deterministic outputs."""

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

from kfpkit.components.ingest.logic import SPLITS, canonical_key, run_ingest, split_masks
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
    "test_fraction",
    "split_seed",
}


def _read(path):
    return pd.read_parquet(path)


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _paths(root):
    """train/eval/test paths under ``root`` (a folder that need not exist)."""
    return [str(root / split) for split in SPLITS]


def _metadata(result):
    return {"train": result.train_metadata, "eval": result.eval_metadata, "test": result.test_metadata}


def test_synthetic_ingest_writes_three_splits_with_their_metadata(outputs):
    *paths, _ = outputs
    source = "synthetic://fraud?rows=5000&seed=3&fraud_rate=0.05&drift=0"
    result = run_ingest(source, "is_fraud", *paths)

    frames = {split: _read(path) for split, path in zip(SPLITS, paths, strict=True)}
    assert sum(len(frame) for frame in frames.values()) == 5000
    for split, meta in _metadata(result).items():
        frame = frames[split]
        assert set(meta) == METADATA_KEYS
        assert meta["rows"] == len(frame)
        assert meta["split"] == split
        assert meta["source_uri"] == source
        assert meta["label_column"] == "is_fraud"
        assert meta["format"] == "synthetic"
        assert meta["split_key"] == "row_number"
        assert meta["eval_fraction"] == 0.15 and meta["test_fraction"] == 0.15
        assert meta["label_rate"] == pytest.approx(frame["is_fraud"].mean())
        assert meta["columns"] == {c: str(t) for c, t in frame.dtypes.items()}
        assert meta["columns"]["is_fraud"] == "int64"
        assert meta["sha256"] == _sha256(paths[SPLITS.index(split)])
    ids = [set(frames[split]["transaction_id"]) for split in SPLITS]
    assert ids[0].isdisjoint(ids[1]) and ids[0].isdisjoint(ids[2]) and ids[1].isdisjoint(ids[2])


@pytest.mark.parametrize(("eval_fraction", "test_fraction"), [(0.15, 0.15), (0.1, 0.3), (0.25, 0.05)])
def test_fractions_are_honoured_within_sampling_error(tmp_path, eval_fraction, test_fraction):
    rows = 20_000
    result = run_ingest(f"synthetic://fraud?rows={rows}", "is_fraud", *_paths(tmp_path), eval_fraction, test_fraction)
    shares = {split: meta["rows"] / rows for split, meta in _metadata(result).items()}
    # binomial standard error at 20k rows is at most 0.0036; allow about four of them
    assert shares["eval"] == pytest.approx(eval_fraction, abs=0.015)
    assert shares["test"] == pytest.approx(test_fraction, abs=0.015)
    assert shares["train"] == pytest.approx(1 - eval_fraction - test_fraction, abs=0.015)


def test_parquet_files_have_no_index_column_and_snappy_compression(outputs):
    *paths, _ = outputs
    run_ingest("synthetic://fraud?rows=600", "is_fraud", *paths)
    for path in paths:
        parquet = pq.ParquetFile(path)
        assert parquet.schema_arrow.names == list(_read(path).columns)
        assert "__index_level_0__" not in parquet.schema_arrow.names
        assert parquet.metadata.row_group(0).column(0).compression == "SNAPPY"
        assert not (parquet.schema_arrow.metadata or {}).get(b"pandas")


def test_same_input_gives_byte_identical_splits_across_runs_and_processes(tmp_path):
    source = "synthetic://fraud?rows=3000&seed=7"
    first = run_ingest(source, "is_fraud", *_paths(tmp_path / "a"))
    second = run_ingest(source, "is_fraud", *_paths(tmp_path / "b"))
    code = (
        "import sys; from kfpkit.components.ingest.logic import run_ingest; "
        "r = run_ingest(sys.argv[1], 'is_fraud', *sys.argv[2:5]); "
        "print(r.train_metadata['sha256'], r.eval_metadata['sha256'], r.test_metadata['sha256'])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, source, *_paths(tmp_path / "c")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    for split in SPLITS:
        reference = (tmp_path / "a" / split).read_bytes()
        assert (tmp_path / "b" / split).read_bytes() == reference, split
        assert (tmp_path / "c" / split).read_bytes() == reference, split
    digests = [first.train_metadata["sha256"], first.eval_metadata["sha256"], first.test_metadata["sha256"]]
    assert len(set(digests)) == 3
    assert [second.train_metadata["sha256"], second.eval_metadata["sha256"], second.test_metadata["sha256"]] == digests
    assert out.stdout.split() == digests


def test_csv_parquet_and_jsonl_sources_give_the_same_splits(tmp_path, small_frame):
    small_frame.to_csv(tmp_path / "t.csv", index=False)
    small_frame.to_parquet(tmp_path / "t.parquet", index=False)
    small_frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    results = {}
    for name in ("t.csv", "t.parquet", "t.jsonl"):
        out = tmp_path / name.replace(".", "_")
        result = run_ingest(str(tmp_path / name), "label", *_paths(out), eval_fraction=0.3, test_fraction=0.2)
        results[name] = (result, [_read(path) for path in _paths(out)])
    formats = [r.train_metadata["format"] for r, _ in results.values()]
    assert formats == ["csv", "parquet", "jsonl"]
    reference = results["t.csv"][1]
    for _, frames in results.values():
        for frame, expected in zip(frames, reference, strict=True):
            pd.testing.assert_frame_equal(frame, expected)
        assert sum(len(frame) for frame in frames) == len(small_frame)
    # identical data give identical bytes whatever the format it came from
    for split in SPLITS:
        assert len({_metadata(r)[split]["sha256"] for r, _ in results.values()}) == 1


def test_file_uri_gzip_and_format_override_are_read(tmp_path, small_frame, outputs):
    *paths, _ = outputs
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(small_frame.to_csv(index=False).encode()))
    via_gzip = run_ingest((tmp_path / "t.csv.gz").as_uri(), "label", *paths)
    assert via_gzip.train_metadata["source_uri"].startswith("file://")
    assert sum(meta["rows"] for meta in _metadata(via_gzip).values()) == len(small_frame)

    (tmp_path / "export.txt").write_text(small_frame.to_json(orient="records", lines=True))
    forced = run_ingest(str(tmp_path / "export.txt"), "label", *_paths(tmp_path / "f"), file_format="jsonl")
    assert forced.train_metadata["format"] == "jsonl"
    assert forced.train_metadata["sha256"] == via_gzip.train_metadata["sha256"]
    assert forced.test_metadata["sha256"] == via_gzip.test_metadata["sha256"]


def test_http_source_is_read_through_fsspec(http_root, tmp_path, small_frame):
    folder, base_url = http_root
    small_frame.to_csv(folder / "table.csv", index=False)
    small_frame.to_csv(tmp_path / "table.csv", index=False)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(run_ingest, f"{base_url}/table.csv", "label", *_paths(tmp_path / "h"))
        remote = future.result(timeout=60)
    local = run_ingest(str(tmp_path / "table.csv"), "label", *_paths(tmp_path / "l"))
    assert remote.train_metadata["source_uri"] == f"{base_url}/table.csv"
    assert remote.train_metadata["sha256"] == local.train_metadata["sha256"]
    assert remote.test_metadata["rows"] == local.test_metadata["rows"] > 0


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
    rows = 80
    frame = pd.DataFrame({"id": range(rows), "label": pd.Series(values * (rows // 4), dtype=object)})
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    run_ingest(str(tmp_path / "t.parquet"), "label", *_paths(tmp_path / "out"))
    every = pd.concat([_read(path) for path in _paths(tmp_path / "out")]).sort_values("id")
    assert every["label"].dtype == np.int64
    assert every["label"].tolist() == stored * (rows // 4)


def test_csv_true_false_labels_are_normalized(tmp_path, outputs):
    *paths, _ = outputs
    (tmp_path / "t.csv").write_text("x,label\n" + "".join(f"{i},{'true' if i % 2 else 'false'}\n" for i in range(60)))
    result = run_ingest(str(tmp_path / "t.csv"), "label", *paths)
    assert result.train_metadata["columns"]["label"] == "int64"
    assert set(_read(paths[0])["label"]) == {0, 1}


def test_split_by_row_number_is_stable_disjoint_and_complete(tmp_path, small_frame):
    small_frame.to_csv(tmp_path / "t.csv", index=False)
    ids = {}
    for run in ("a", "b"):
        run_ingest(str(tmp_path / "t.csv"), "label", *_paths(tmp_path / run))
        ids[run] = [set(_read(path)["id"]) for path in _paths(tmp_path / run)]
    train_ids, eval_ids, test_ids = ids["a"]
    assert ids["a"] == ids["b"]
    assert train_ids.isdisjoint(eval_ids) and train_ids.isdisjoint(test_ids) and eval_ids.isdisjoint(test_ids)
    assert train_ids | eval_ids | test_ids == set(range(len(small_frame)))
    run_ingest(str(tmp_path / "t.csv"), "label", *_paths(tmp_path / "s"), seed=1)
    assert set(_read(tmp_path / "s" / "test")["id"]) != test_ids


def test_split_by_key_keeps_rows_that_share_a_key_together(tmp_path, small_frame):
    shuffled = small_frame.sample(frac=1.0, random_state=0)
    shuffled.to_csv(tmp_path / "t.csv", index=False)
    result = run_ingest(
        str(tmp_path / "t.csv"),
        "label",
        *_paths(tmp_path / "shuffled"),
        eval_fraction=0.3,
        test_fraction=0.3,
        split_key_column="customer",
    )
    frames = [_read(path) for path in _paths(tmp_path / "shuffled")]
    customers = [set(frame["customer"]) for frame in frames]
    assert result.test_metadata["split_key"] == "customer"
    assert customers[0].isdisjoint(customers[1]) and customers[0].isdisjoint(customers[2])
    assert customers[1].isdisjoint(customers[2])
    assert sum(len(frame) for frame in frames) == len(small_frame)
    # the split depends on the key, not on the row order
    small_frame.to_csv(tmp_path / "ordered.csv", index=False)
    run_ingest(str(tmp_path / "ordered.csv"), "label", *_paths(tmp_path / "ordered"), 0.3, 0.3, "customer")
    assert [set(_read(path)["customer"]) for path in _paths(tmp_path / "ordered")] == customers


def test_split_follows_the_documented_keyed_blake2b_hash():
    keys = [f"k{i}" for i in range(400)]
    masks = split_masks(pd.DataFrame({"key": keys}), "key", 0.25, 0.15, seed=3)
    salt = hashlib.sha256(b"kfpkit-ingest-split/3").digest()
    eval_end = int(0.25 * 2**64)
    test_end = eval_end + int(0.15 * 2**64)
    hashes = [int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8, key=salt).digest(), "big") for k in keys]
    assert masks["eval"].tolist() == [h < eval_end for h in hashes]
    assert masks["test"].tolist() == [eval_end <= h < test_end for h in hashes]
    assert masks["train"].tolist() == [h >= test_end for h in hashes]
    assert 60 < masks["eval"].sum() < 140 and 30 < masks["test"].sum() < 90
    row_masks = split_masks(pd.DataFrame({"x": range(400)}), None, 0.25, 0.15, seed=3)
    key_masks = split_masks(pd.DataFrame({"key": [str(i) for i in range(400)]}), "key", 0.25, 0.15, 3)
    assert all(row_masks[split].tolist() == key_masks[split].tolist() for split in SPLITS)


def test_the_eval_split_does_not_depend_on_test_fraction():
    frame = pd.DataFrame({"x": range(2000)})
    small_test = split_masks(frame, None, 0.2, 0.05, seed=0)
    large_test = split_masks(frame, None, 0.2, 0.4, seed=0)
    assert small_test["eval"].tolist() == large_test["eval"].tolist()
    assert (small_test["test"] & ~large_test["test"]).sum() == 0  # the larger test split contains the smaller


def test_integer_float_and_string_keys_hash_alike():
    as_int = split_masks(pd.DataFrame({"k": [7, 8, 9, 10]}), "k", 0.3, 0.3, 0)
    as_float = split_masks(pd.DataFrame({"k": [7.0, 8.0, 9.0, 10.0]}), "k", 0.3, 0.3, 0)
    as_str = split_masks(pd.DataFrame({"k": ["7", "8", "9", "10"]}), "k", 0.3, 0.3, 0)
    for split in SPLITS:
        assert as_int[split].tolist() == as_float[split].tolist() == as_str[split].tolist()
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
    result = run_ingest("synthetic://fraud?rows=100000", "is_fraud", *_paths(tmp_path))
    rows = {split: meta["rows"] for split, meta in _metadata(result).items()}
    assert sum(rows.values()) == 100_000
    assert 0.14 < rows["eval"] / 100_000 < 0.16 and 0.14 < rows["test"] / 100_000 < 0.16
    assert all(meta["label_rate"] > 0 for meta in _metadata(result).values())


def test_every_split_shares_one_schema_even_when_a_split_sees_only_missing_values(tmp_path, outputs):
    *paths, _ = outputs
    rows = 80
    test_mask = split_masks(pd.DataFrame({"x": range(rows)}), None, 0.15, 0.15, 0)["test"]
    frame = pd.DataFrame(
        {
            "note": [None if in_test else f"n{i}" for i, in_test in enumerate(test_mask)],
            "label": [i % 2 for i in range(rows)],
        }
    )
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    result = run_ingest(str(tmp_path / "t.jsonl"), "label", *paths)
    schemas = [pq.read_schema(path) for path in paths]
    assert schemas[0] == schemas[1] == schemas[2]
    assert str(schemas[2].field("note").type) == "string"
    assert _read(paths[2])["note"].isna().all() and result.test_metadata["columns"]["note"] == "object"
