"""Concurrent pushes: 8 pushers (threads, and processes on a local folder) that all start from the same
candidate number get 8 distinct, complete versions with intact manifests, and losers never touch winners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import fsspec

from kfpkit.core import model_dir as md
from kfpkit.core import registry
from kfpkit.core.registry import latest_blessed, list_versions, materialize, push_version

MODEL = "fraud-detector"
PUSHERS = 8
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _models(tmp_path, make_model_dir) -> list:
    return [make_model_dir(tmp_path / f"model-{i}", weights=f"weights-{i}".encode()) for i in range(PUSHERS)]


def _assert_distinct_complete_versions(root: str, results: list, tmp_path) -> None:
    """8 versions 1..8, one per pusher and content, each verified against its manifest."""
    entries = list_versions(root, MODEL)
    assert [e.version for e in entries] == list(range(1, PUSHERS + 1))
    assert sorted(r.version for r in results) == list(range(1, PUSHERS + 1))
    assert all(r.created for r in results)
    by_version = {e.version: e.content_sha256 for e in entries}
    assert {r.version: r.content_sha256 for r in results} == by_version
    assert len(set(by_version.values())) == PUSHERS
    for entry in entries:
        local = materialize(entry.uri, str(tmp_path / "check" / str(entry.version)))
        assert md.verify_manifest(local)["content_sha256"] == entry.content_sha256
    assert latest_blessed(root, MODEL).version in by_version


def _push_concurrently(root: str, models: list, before=None) -> tuple:
    """``push_version`` of every model, each from its own thread (``before()`` runs first in each);
    returns ``({index: PushedModel}, {index: exception})``."""
    results, errors = {}, {}

    def run(i: int) -> None:
        if before is not None:
            before()
        try:
            results[i] = push_version(models[i], root, MODEL)
        except Exception as exc:
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(models))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def _push_in_threads(root: str, models: list, monkeypatch) -> tuple:
    """Pushes every model from its own thread; every thread's first candidate number is computed before any
    thread claims one, so they all race for the same number. Returns (results, failed claim count)."""
    barrier = threading.Barrier(PUSHERS, timeout=60)
    waited = threading.local()
    real_next = registry._ModelLocation.next_number
    real_claim = registry._ModelLocation.try_claim
    lost = []

    def next_number_together(self):
        number = real_next(self)
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait()
        return number

    def counting_claim(self, version, claim):
        won = real_claim(self, version, claim)
        if not won:
            lost.append(version)
        return won

    monkeypatch.setattr(registry._ModelLocation, "next_number", next_number_together)
    monkeypatch.setattr(registry._ModelLocation, "try_claim", counting_claim)
    results, errors = _push_concurrently(root, models)
    monkeypatch.undo()
    assert errors == {}
    return list(results.values()), lost


def test_eight_threads_pushing_to_a_local_folder_get_eight_distinct_complete_versions(
    tmp_path, monkeypatch, make_model_dir
):
    root = str(tmp_path / "registry")

    results, lost = _push_in_threads(root, _models(tmp_path, make_model_dir), monkeypatch)

    assert lost.count(1) == PUSHERS - 1  # all raced for version 1; one won it, the other 7 moved on
    _assert_distinct_complete_versions(root, results, tmp_path)
    claims = sorted(os.listdir(os.path.join(root, MODEL, registry.CLAIMS_DIR)))
    assert claims == [f"{n}.json" for n in range(1, PUSHERS + 1)]
    assert os.listdir(os.path.join(root, MODEL, registry.STAGING_DIR)) == []


def test_eight_threads_pushing_to_memory_get_eight_distinct_complete_versions(
    tmp_path, monkeypatch, make_model_dir, memory_root
):
    results, lost = _push_in_threads(memory_root, _models(tmp_path, make_model_dir), monkeypatch)

    assert lost.count(1) == PUSHERS - 1
    _assert_distinct_complete_versions(memory_root, results, tmp_path)
    fs, path = fsspec.core.url_to_fs(memory_root)
    for version in range(1, PUSHERS + 1):  # nothing but each version's own files and its manifest
        files = {p.rsplit(f"/{version}/", 1)[1] for p in fs.find(f"{path}/{MODEL}/{version}")}
        assert files == {*md.build_manifest(tmp_path / f"check/{version}")["files"], md.MANIFEST_FILE}


_PROCESS_PUSHER = textwrap.dedent(
    """
    import json, os, sys, time
    from kfpkit.core import registry
    model, root, name, barrier_dir, index, count = sys.argv[1:7]
    real_next = registry._ModelLocation.next_number
    state = {"waited": False}

    def next_number_together(self):
        number = real_next(self)
        if not state["waited"]:  # every process computes its first candidate before any of them claims
            state["waited"] = True
            open(os.path.join(barrier_dir, index), "w").close()
            deadline = time.monotonic() + 120
            while len(os.listdir(barrier_dir)) < int(count):
                if time.monotonic() > deadline:
                    sys.exit("barrier timeout")
                time.sleep(0.005)
        return number

    registry._ModelLocation.next_number = next_number_together
    result = registry.push_version(model, root, name)
    print(result.to_json(indent=None))
    """
)


def test_eight_processes_pushing_to_a_local_folder_get_eight_distinct_complete_versions(tmp_path, make_model_dir):
    root = str(tmp_path / "registry")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    models = _models(tmp_path, make_model_dir)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_PUSHER, models[i], root, MODEL, str(barrier), str(i), str(PUSHERS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        for i in range(PUSHERS)
    ]
    outputs = []
    deadline = time.monotonic() + 240
    for proc in procs:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0, err.decode()[-2000:]
        outputs.append(out.decode().strip().splitlines()[-1])

    results = [registry.PushedModel.from_json(line) for line in outputs]
    _assert_distinct_complete_versions(root, results, tmp_path)
    claims = [
        json.loads((tmp_path / "registry" / MODEL / registry.CLAIMS_DIR / f"{n}.json").read_text()) for n in range(1, 9)
    ]
    assert len({c["pid"] for c in claims}) == PUSHERS  # one claim per process
    assert sorted(os.listdir(barrier)) == sorted(str(i) for i in range(PUSHERS))


def test_a_pusher_failing_after_its_claim_among_eight_leaves_the_other_seven_versions_intact(
    tmp_path, monkeypatch, make_model_dir, memory_root
):
    models = _models(tmp_path, make_model_dir)
    real_upload = registry._upload_file

    def upload(fs, source, destination):
        if os.path.basename(source) == md.SKOPS_FILE and open(source, "rb").read() == b"weights-3":
            raise ConnectionError("network gone")  # pusher 3, after its claim, partway through its upload
        real_upload(fs, source, destination)

    monkeypatch.setattr(registry, "_upload_file", upload)
    results, errors = _push_concurrently(memory_root, models, before=threading.Barrier(PUSHERS, timeout=60).wait)
    monkeypatch.undo()

    assert list(errors) == [3] and isinstance(errors[3], ConnectionError) and len(results) == PUSHERS - 1
    entries = list_versions(memory_root, MODEL)
    assert sorted(e.version for e in entries) == sorted(r.version for r in results.values())
    fs, path = fsspec.core.url_to_fs(memory_root)
    claimed = {int(p.rsplit("/", 1)[1].split(".")[0]) for p in fs.find(f"{path}/{MODEL}/{registry.CLAIMS_DIR}")}
    (lost_number,) = claimed - {e.version for e in entries}  # the failed pusher's number: claimed, empty
    assert fs.find(f"{path}/{MODEL}/{lost_number}") == []
    for entry in entries:
        local = materialize(entry.uri, str(tmp_path / "check" / str(entry.version)))
        assert md.verify_manifest(local)["content_sha256"] == entry.content_sha256
