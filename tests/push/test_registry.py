"""The registry behind push: versions, idempotence, atomicity, pointer, object stores, materialize."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import fsspec
import pytest

from kfpkit.core import model_dir as md
from kfpkit.core import registry
from kfpkit.core.registry import (
    POINTER_FILE,
    RegistryError,
    latest_blessed,
    list_versions,
    materialize,
    push_version,
)

MODEL = "fraud-detector"


def visible_entries(root: str):
    return [(e.version, e.content_sha256) for e in list_versions(root, MODEL)]


# ------------------------------------------------------------------------------------------ local roots


def test_first_push_creates_version_1_and_points_latest_at_it(model, root):
    result = push_version(model, root, MODEL)

    version_dir = os.path.join(root, MODEL, "1")
    assert (result.version, result.created) == (1, True)
    assert result.model_uri == os.path.abspath(version_dir)
    assert os.path.isabs(result.model_uri)
    assert (result.model_name, result.registry_root) == (MODEL, root)
    with open(os.path.join(root, MODEL, POINTER_FILE), encoding="utf-8") as fh:
        pointer = json.load(fh)
    assert pointer == result.to_dict()
    assert pointer["record"] == "pushed model" and pointer["record_version"] == 1
    entry = latest_blessed(root, MODEL)
    assert (entry.version, entry.uri, entry.content_sha256) == (1, result.model_uri, result.content_sha256)


def test_same_content_returns_same_version_without_copying(model, root, monkeypatch):
    first = push_version(model, root, MODEL)
    copies = []
    monkeypatch.setattr(registry, "_copy_file", lambda src, dst: copies.append(src))

    again = push_version(model, root, MODEL)

    assert (again.version, again.created, again.content_sha256) == (1, False, first.content_sha256)
    assert copies == []
    assert sorted(os.listdir(os.path.join(root, MODEL))) == [
        registry.CLAIMS_DIR,
        registry.STAGING_DIR,
        "1",
        POINTER_FILE,
    ]
    assert os.listdir(os.path.join(root, MODEL, registry.STAGING_DIR)) == []


def test_changed_content_creates_version_2_and_moves_the_pointer(tmp_path, model, root, make_model_dir):
    first = push_version(model, root, MODEL)
    changed = make_model_dir(tmp_path / "model-b", weights=b"weights-v2")

    second = push_version(changed, root, MODEL)

    assert (second.version, second.created) == (2, True)
    assert second.content_sha256 != first.content_sha256
    assert latest_blessed(root, MODEL).version == 2
    assert visible_entries(root) == [(1, first.content_sha256), (2, second.content_sha256)]
    # Re-pushing the older content finds version 1 and points the pointer at it.
    again = push_version(model, root, MODEL)
    assert (again.version, again.created) == (1, False)
    assert latest_blessed(root, MODEL).version == 1


def test_manifest_covers_every_file_and_verifies_on_the_published_version(model, root):
    result = push_version(model, root, MODEL)

    manifest = md.verify_manifest(result.model_uri)
    assert sorted(manifest["files"]) == md.list_files(result.model_uri)
    assert sorted(manifest["files"]) == sorted([md.MODEL_CARD_FILE, md.SKOPS_FILE, md.PREPROCESSING_FILE])
    assert manifest["content_sha256"] == result.content_sha256
    assert md.build_manifest(result.model_uri)["content_sha256"] == result.content_sha256
    with (
        open(os.path.join(model, md.SKOPS_FILE), "rb") as src,
        open(os.path.join(result.model_uri, md.SKOPS_FILE), "rb") as dst,
    ):
        assert src.read() == dst.read()


def test_a_source_manifest_is_replaced_by_the_registry_manifest(model, root):
    with open(os.path.join(model, md.MANIFEST_FILE), "w", encoding="utf-8") as fh:
        fh.write('{"files": {}, "content_sha256": "stale"}')

    result = push_version(model, root, MODEL)

    assert md.verify_manifest(result.model_uri)["content_sha256"] == result.content_sha256 != "stale"


def test_baseline_extra_dir_is_stored_and_covered_by_the_manifest(tmp_path, model, root, make_baseline):
    baseline = make_baseline(tmp_path / "baseline-src")
    schema_file = os.path.join(baseline, "schema.pbtxt")

    result = push_version(model, root, MODEL, extra_dirs={md.BASELINE_DIR: baseline})
    manifest = md.verify_manifest(result.model_uri)

    for rel in ("baseline/stats.tfrecord", "baseline/schema.pbtxt", "baseline/nested/extra.txt"):
        assert rel in manifest["files"]
        assert os.path.isfile(os.path.join(result.model_uri, *rel.split("/")))
    # The baseline is part of the content: without it the content differs; a single file source works too.
    without = push_version(model, root, MODEL)
    assert without.version == 2 and without.content_sha256 != result.content_sha256
    single = push_version(model, root, MODEL, extra_dirs={"baseline": schema_file})
    assert sorted(md.verify_manifest(single.model_uri)["files"]) == sorted(
        [md.MODEL_CARD_FILE, md.SKOPS_FILE, md.PREPROCESSING_FILE, "baseline/schema.pbtxt"]
    )


def test_bad_extra_dirs_fail_naming_the_entry(tmp_path, model, root):
    with pytest.raises(RegistryError, match=r"extra_dirs\['baseline'\].*does not exist"):
        push_version(model, root, MODEL, extra_dirs={"baseline": str(tmp_path / "missing")})
    with pytest.raises(RegistryError, match=r"'\.\./escape'"):
        push_version(model, root, MODEL, extra_dirs={"../escape": model})
    clash_dir = tmp_path / "clash"
    clash_dir.mkdir()
    (clash_dir / "x.txt").write_text("x")
    os.makedirs(os.path.join(model, "baseline"))
    with open(os.path.join(model, "baseline", "x.txt"), "w") as fh:
        fh.write("y")
    with pytest.raises(RegistryError, match=r"would overwrite 'baseline/x.txt'"):
        push_version(model, root, MODEL, extra_dirs={"baseline": str(clash_dir)})
    assert not os.path.exists(root) or list_versions(root, MODEL) == []


@pytest.mark.parametrize(
    "name", ["Fraud", "1fraud", "fraud_detector", "fraud-", "", "a" * 64, "fraud.detector", "fraud/x"]
)
def test_bad_model_name_fails_with_a_clear_error(model, root, name):
    with pytest.raises(RegistryError, match=r"model_name .* is invalid"):
        push_version(model, root, name)
    assert not os.path.exists(root)


def test_good_model_names_are_accepted(model, root):
    for name in ("a", "fraud-detector-2", "x" * 63):
        assert push_version(model, root, name).version == 1


def test_directory_without_model_card_is_rejected(tmp_path, root):
    not_a_model = tmp_path / "data"
    not_a_model.mkdir()
    (not_a_model / "train.parquet").write_bytes(b"PAR1")

    with pytest.raises(RegistryError, match=r"is not a model directory: no model_card\.json"):
        push_version(str(not_a_model), root, MODEL)
    with pytest.raises(RegistryError, match="not a directory"):
        push_version(str(tmp_path / "nowhere"), root, MODEL)
    assert not os.path.exists(root)


def test_copy_failure_midway_leaves_no_version_and_a_later_push_gets_the_right_number(
    model, root, monkeypatch, make_model_dir
):
    push_version(model, root, MODEL)
    changed = make_model_dir(os.path.join(os.path.dirname(model), "model-b"), weights=b"v2")
    real_copy = registry._copy_file
    calls = []

    def copy_then_fail(src, dst):
        calls.append(src)
        if len(calls) > 1:
            raise OSError("disk full")
        real_copy(src, dst)

    monkeypatch.setattr(registry, "_copy_file", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        push_version(changed, root, MODEL)

    assert len(calls) == 2
    assert [v for v, _ in visible_entries(root)] == [1]
    assert latest_blessed(root, MODEL).version == 1
    assert os.listdir(os.path.join(root, MODEL, registry.STAGING_DIR)) == []
    monkeypatch.setattr(registry, "_copy_file", real_copy)
    assert push_version(changed, root, MODEL).version == 2


def test_process_killed_midway_leaves_no_visible_version(model, root):
    script = textwrap.dedent(
        f"""
        import os
        from kfpkit.core import registry
        real = registry._copy_file
        count = []
        def copy_then_die(src, dst):
            count.append(src)
            real(src, dst)
            if len(count) == 2:
                os._exit(9)  # like SIGKILL: no cleanup, no finally blocks
        registry._copy_file = copy_then_die
        registry.push_version({model!r}, {root!r}, {MODEL!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=False)

    assert proc.returncode == 9, proc.stderr.decode()
    staging = os.path.join(root, MODEL, registry.STAGING_DIR)
    leftovers = os.listdir(staging)
    assert len(leftovers) == 1 and len(os.listdir(os.path.join(staging, leftovers[0]))) == 2
    assert list_versions(root, MODEL) == []
    assert latest_blessed(root, MODEL) is None
    result = push_version(model, root, MODEL)
    assert (result.version, result.created) == (1, True)
    md.verify_manifest(result.model_uri)


def test_staging_leftovers_and_directories_without_manifest_are_ignored(model, root, make_model_dir):
    first = push_version(model, root, MODEL)
    model_root = os.path.join(root, MODEL)
    # A killed push's staging copy, even one that got as far as its manifest.
    leftover = os.path.join(model_root, registry.STAGING_DIR, "deadbeef")
    os.makedirs(leftover)
    make_model_dir(leftover, weights=b"leftover")
    md.write_manifest(leftover)
    # A numbered directory without manifest and unrelated entries.
    os.makedirs(os.path.join(model_root, "7"))
    os.makedirs(os.path.join(model_root, "notes"))
    os.makedirs(os.path.join(model_root, "007"))

    assert visible_entries(root) == [(1, first.content_sha256)]
    assert latest_blessed(root, MODEL).version == 1
    # New versions never reuse a number that a directory already has.
    changed = make_model_dir(os.path.join(os.path.dirname(model), "model-b"), weights=b"v2")
    assert push_version(changed, root, MODEL).version == 8


def test_concurrent_pusher_winning_the_number_makes_us_take_the_next(
    tmp_path, model, root, monkeypatch, make_model_dir
):
    other = push_version(make_model_dir(tmp_path / "other", weights=b"other"), root, MODEL)
    real_next = registry._ModelLocation.next_number
    calls = []

    def stale_next(self):
        # The first candidate comes from a listing made before the other pusher claimed version 1.
        calls.append(1)
        return 1 if len(calls) == 1 else real_next(self)

    monkeypatch.setattr(registry._ModelLocation, "next_number", stale_next)
    result = push_version(model, root, MODEL)

    assert (result.version, result.created) == (2, True)
    monkeypatch.undo()
    assert visible_entries(root) == [(1, other.content_sha256), (2, result.content_sha256)]
    md.verify_manifest(os.path.join(root, MODEL, "1"))
    claims = {
        n: json.loads((tmp_path / "registry" / MODEL / registry.CLAIMS_DIR / f"{n}.json").read_text()) for n in (1, 2)
    }
    assert claims[1]["push_id"] != claims[2]["push_id"]
    assert claims[2]["version"] == 2 and claims[2]["pid"] == os.getpid() and claims[2]["host"]


def test_a_claimed_number_whose_folder_exists_unclaimed_is_skipped_and_the_folder_left_alone(
    tmp_path, model, root, monkeypatch
):
    stray = os.path.join(root, MODEL, "1")
    os.makedirs(stray)
    with open(os.path.join(stray, "notes.txt"), "w", encoding="utf-8") as fh:
        fh.write("made by hand")
    monkeypatch.setattr(registry._ModelLocation, "next_number", lambda self: 1)

    result = push_version(model, root, MODEL)

    assert result.version == 2
    assert os.listdir(stray) == ["notes.txt"]
    assert sorted(os.listdir(os.path.join(root, MODEL, registry.CLAIMS_DIR))) == ["1.json", "2.json"]


def test_local_push_failing_after_its_claim_removes_only_its_staging_and_keeps_the_number_claimed(
    tmp_path, model, root, monkeypatch, make_model_dir
):
    winner = push_version(model, root, MODEL)
    winner_files = sorted(md.list_files(winner.model_uri))

    def rename_fails(source, destination):
        raise OSError("I/O error")

    monkeypatch.setattr(registry.os, "rename", rename_fails)
    with pytest.raises(OSError, match="I/O error"):
        push_version(make_model_dir(tmp_path / "b", weights=b"b"), root, MODEL)
    monkeypatch.undo()

    model_root = os.path.join(root, MODEL)
    assert sorted(md.list_files(winner.model_uri)) == winner_files
    md.verify_manifest(winner.model_uri)
    assert os.listdir(os.path.join(model_root, registry.STAGING_DIR)) == []
    assert not os.path.exists(os.path.join(model_root, "2"))
    assert sorted(os.listdir(os.path.join(model_root, registry.CLAIMS_DIR))) == ["1.json", "2.json"]
    assert push_version(make_model_dir(tmp_path / "c", weights=b"c"), root, MODEL).version == 3


def test_pointer_missing_dangling_or_not_a_record_falls_back_to_highest_complete_version(
    tmp_path, model, root, make_model_dir
):
    push_version(model, root, MODEL)
    push_version(make_model_dir(tmp_path / "b", weights=b"b"), root, MODEL)
    pointer = os.path.join(root, MODEL, POINTER_FILE)

    pointer_to_1 = registry.PushedModel(os.path.join("/elsewhere", MODEL, "1"), 1, "0" * 64, True, MODEL, "/elsewhere")
    with open(pointer, "w", encoding="utf-8") as fh:
        fh.write(pointer_to_1.to_json())
    entry = latest_blessed(root, MODEL)
    assert entry.version == 1 and entry.uri == os.path.join(os.path.abspath(root), MODEL, "1")
    pointer_to_5 = dataclasses.replace(pointer_to_1, model_uri=os.path.join("/elsewhere", MODEL, "5"), version=5)
    with open(pointer, "w", encoding="utf-8") as fh:
        fh.write(pointer_to_5.to_json())
    assert latest_blessed(root, MODEL).version == 2
    with open(pointer, "w", encoding="utf-8") as fh:
        json.dump({"version": 1, "uri": "a pointer that is not a record"}, fh)
    assert latest_blessed(root, MODEL).version == 2
    os.remove(pointer)
    assert latest_blessed(root, MODEL).version == 2
    assert latest_blessed(root, "unknown-model") is None
    assert list_versions(root, "unknown-model") == []


def test_materialize_returns_local_versions_in_place(model, root, tmp_path):
    result = push_version(model, root, MODEL)
    target = tmp_path / "unused"

    assert materialize(result.model_uri, str(target)) == result.model_uri
    assert materialize("file://" + result.model_uri, str(target)) == result.model_uri
    assert not target.exists()
    with pytest.raises(RegistryError, match="no such directory"):
        materialize(os.path.join(root, MODEL, "9"), str(target))


# ------------------------------------------------------------------------------------------ object stores


def test_object_store_push_publishes_with_manifest_last(tmp_path, model, memory_root, monkeypatch, make_baseline):
    baseline = make_baseline(tmp_path / "baseline-src")
    real_upload = registry._upload_file
    seen_before_manifest = []

    def spy(fs, source, destination):
        if destination.endswith("/" + md.MANIFEST_FILE):
            # Every other file is uploaded already, yet the version is not visible.
            seen_before_manifest.append((len(fs.find(os.path.dirname(destination))), visible_entries(memory_root)))
        real_upload(fs, source, destination)

    monkeypatch.setattr(registry, "_upload_file", spy)
    result = push_version(model, memory_root, MODEL, extra_dirs={"baseline": baseline})

    assert seen_before_manifest == [(6, [])]
    assert (result.version, result.created) == (1, True)
    assert result.model_uri == f"{memory_root.replace('memory://', 'memory:///')}/{MODEL}/1"
    assert visible_entries(memory_root) == [(1, result.content_sha256)]
    assert latest_blessed(memory_root, MODEL).uri == result.model_uri
    fs, path = fsspec.core.url_to_fs(memory_root)
    pointer = json.loads(fs.cat_file(f"{path}/{MODEL}/{POINTER_FILE}"))
    assert registry.PushedModel.from_dict(pointer) == result
    assert not fs.exists(f"{path}/{MODEL}/{registry.STAGING_DIR}")


def test_object_store_is_idempotent_and_versions_increase(tmp_path, model, memory_root, monkeypatch, make_model_dir):
    first = push_version(model, memory_root, MODEL)
    uploads = []
    monkeypatch.setattr(registry, "_upload_file", lambda fs, s, d: uploads.append(d))
    assert push_version(model, memory_root, MODEL) == dataclasses.replace(first, created=False)
    assert uploads == []
    monkeypatch.undo()

    second = push_version(make_model_dir(tmp_path / "b", weights=b"b"), memory_root, MODEL)
    assert (second.version, second.created) == (2, True)
    assert latest_blessed(memory_root, MODEL).version == 2


def test_object_store_failure_before_manifest_leaves_nothing_visible(tmp_path, model, memory_root, monkeypatch):
    real_upload = registry._upload_file

    def fail_on_manifest(fs, source, destination):
        if destination.endswith(md.MANIFEST_FILE):
            raise ConnectionError("network gone")
        real_upload(fs, source, destination)

    monkeypatch.setattr(registry, "_upload_file", fail_on_manifest)
    with pytest.raises(ConnectionError):
        push_version(model, memory_root, MODEL)
    assert list_versions(memory_root, MODEL) == []
    assert latest_blessed(memory_root, MODEL) is None
    fs, path = fsspec.core.url_to_fs(memory_root)
    assert fs.find(f"{path}/{MODEL}/1") == []  # what it uploaded is gone; the number stays claimed
    monkeypatch.undo()
    assert push_version(model, memory_root, MODEL).version == 2


def test_object_store_loser_of_a_claim_never_deletes_the_winners_or_anyone_elses_files(
    tmp_path, model, memory_root, monkeypatch, make_model_dir
):
    winner = push_version(model, memory_root, MODEL)
    fs, path = fsspec.core.url_to_fs(memory_root)
    winner_files = sorted(fs.find(f"{path}/{MODEL}/1"))
    real_next = registry._ModelLocation.next_number
    first_candidate = []
    real_upload = registry._upload_file
    foreign = f"{path}/{MODEL}/2/written-by-someone-else.txt"

    def stale_next(self):
        first_candidate.append(1)
        return 1 if len(first_candidate) == 1 else real_next(self)

    def upload_then_fail(fs_, source, destination):
        if not fs_.exists(foreign):
            fs_.pipe_file(foreign, b"not ours")  # a writer that never claimed, racing into our folder
        if destination.endswith(md.MANIFEST_FILE):
            raise ConnectionError("network gone")
        real_upload(fs_, source, destination)

    monkeypatch.setattr(registry._ModelLocation, "next_number", stale_next)
    monkeypatch.setattr(registry, "_upload_file", upload_then_fail)
    with pytest.raises(ConnectionError):
        push_version(make_model_dir(tmp_path / "b", weights=b"b"), memory_root, MODEL)
    monkeypatch.undo()

    assert sorted(fs.find(f"{path}/{MODEL}/1")) == winner_files  # lost the claim on 1: never touched it
    assert visible_entries(memory_root) == [(1, winner.content_sha256)]
    assert fs.find(f"{path}/{MODEL}/2") == [foreign]  # removed only what it uploaded into 2/
    local = materialize(winner.model_uri, str(tmp_path / "v1"))
    assert md.verify_manifest(local)["content_sha256"] == winner.content_sha256
    assert push_version(make_model_dir(tmp_path / "c", weights=b"c"), memory_root, MODEL).version == 3


def test_object_store_killed_upload_is_invisible_and_its_number_skipped(model, memory_root):
    fs, path = fsspec.core.url_to_fs(memory_root)
    # What a push killed before its manifest leaves behind: files but no MANIFEST.json.
    fs.pipe_file(f"{path}/{MODEL}/1/{md.MODEL_CARD_FILE}", b"{}")
    fs.pipe_file(f"{path}/{MODEL}/1/{md.SKOPS_FILE}", b"partial")

    assert list_versions(memory_root, MODEL) == []
    assert latest_blessed(memory_root, MODEL) is None
    with pytest.raises(RegistryError, match="incomplete"):
        materialize(f"{memory_root}/{MODEL}/1", "/nonexistent/never-created")
    result = push_version(model, memory_root, MODEL)
    assert result.version == 2
    assert visible_entries(memory_root) == [(2, result.content_sha256)]


def test_materialize_copies_an_object_store_version_to_a_local_dir(tmp_path, model, memory_root, make_baseline):
    baseline = make_baseline(tmp_path / "baseline-src")
    result = push_version(model, memory_root, MODEL, extra_dirs={"baseline": baseline})
    local_dir = tmp_path / "materialized" / "v1"

    path = materialize(result.model_uri, str(local_dir))

    assert path == str(local_dir)
    assert md.verify_manifest(path)["content_sha256"] == result.content_sha256
    assert os.path.isfile(os.path.join(path, "baseline", "nested", "extra.txt"))
    assert md.read_model_card(path).decision_threshold == 0.4
    assert [n for n in os.listdir(tmp_path / "materialized") if n != "v1"] == []
    with pytest.raises(RegistryError, match="not an empty directory"):
        materialize(result.model_uri, str(local_dir))


def test_materialize_rejects_a_tampered_object_store_version(tmp_path, model, memory_root):
    result = push_version(model, memory_root, MODEL)
    fs, path = fsspec.core.url_to_fs(result.model_uri)
    fs.pipe_file(f"{path}/{md.SKOPS_FILE}", b"tampered")
    local_dir = tmp_path / "out"

    with pytest.raises(md.ModelDirError, match=r"sha256 mismatch in model\.skops"):
        materialize(result.model_uri, str(local_dir))
    assert not local_dir.exists()
    assert os.listdir(tmp_path) == ["model"]
