"""Push idempotence: the identity digest ignores what differs between identical training runs, nothing else."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from kfpkit.core import model_dir as md
from kfpkit.core import registry
from kfpkit.core.model_card import ModelCard, read_model_card, write_model_card
from kfpkit.core.registry import identity_sha256, list_versions, push_version

MODEL = "fraud-detector"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _training_output(path, run: str, seconds: float, threshold: float = 0.4, stats: bytes = b"stats") -> str:
    """A model directory as train writes it, with the facts of run ``run`` (its name, time and durations)."""
    os.makedirs(os.path.join(path, md.BASELINE_DIR), exist_ok=True)
    card = ModelCard(
        framework="sklearn",
        model_file=md.SKOPS_FILE,
        label_column="is_fraud",
        feature_order=["amount"],
        decision_threshold=threshold,
        metrics={"eval": {"pr_auc": 0.4, "best_epoch": 3, "rows_per_second": 1000.0 / seconds}},
        training={"device": "cpu", "fit_seconds": seconds, "history": [{"epoch": 1, "seconds": seconds}]},
        pipeline_run=run,
        created_at=f"2026-01-01T00:00:{int(seconds):02d}+00:00",
    )
    write_model_card(str(path), card)
    with open(os.path.join(path, md.PREPROCESSING_FILE), "w", encoding="utf-8") as fh:
        json.dump({"label_column": "is_fraud", "features": []}, fh)
    with open(os.path.join(path, md.SKOPS_FILE), "wb") as fh:
        fh.write(b"weights")
    with open(os.path.join(path, "monitoring_baseline.json"), "w", encoding="utf-8") as fh:
        json.dump({"format_version": 1, "created_at": run, "identity": {"model.skops": run}, "numeric": []}, fh)
    with open(os.path.join(path, md.BASELINE_DIR, "train_stats.pb"), "wb") as fh:
        fh.write(stats)  # TFDV orders equal counts in its rank histograms arbitrarily
    with open(os.path.join(path, md.BASELINE_DIR, "schema.pbtxt"), "w", encoding="utf-8") as fh:
        fh.write('feature { name: "amount" }\n')
    return str(path)


def _files(directory: str) -> dict:
    return {rel: os.path.join(directory, *rel.split("/")) for rel in md.list_files(directory)}


def test_a_second_identical_training_run_reuses_the_version_and_says_so(tmp_path):
    root = str(tmp_path / "registry")
    first = push_version(_training_output(tmp_path / "a", "run-a", 2.0, stats=b"order-a"), root, MODEL)
    again = _training_output(tmp_path / "b", "run-b", 7.0, stats=b"order-b")
    assert md.build_manifest(again)["content_sha256"] != first.content_sha256  # other bytes

    second = push_version(again, root, MODEL)

    assert (second.version, second.created, second.content_sha256) == (1, False, first.content_sha256)
    assert [e.version for e in list_versions(root, MODEL)] == [1]
    assert read_model_card(second.model_uri).pipeline_run == "run-a"  # the stored version is untouched


def test_a_different_decision_threshold_or_schema_is_a_new_version(tmp_path):
    root = str(tmp_path / "registry")
    push_version(_training_output(tmp_path / "a", "run-a", 2.0), root, MODEL)
    other_threshold = push_version(_training_output(tmp_path / "b", "run-b", 2.0, threshold=0.5), root, MODEL)
    other_schema = _training_output(tmp_path / "c", "run-c", 2.0)
    with open(os.path.join(other_schema, md.BASELINE_DIR, "schema.pbtxt"), "a", encoding="utf-8") as fh:
        fh.write('feature { name: "hour" }\n')
    assert (other_threshold.version, other_threshold.created) == (2, True)
    assert (push_version(other_schema, root, MODEL).version, len(list_versions(root, MODEL))) == (3, 3)


def test_the_manifest_records_the_identity_and_older_versions_match_by_content(tmp_path, monkeypatch):
    root = str(tmp_path / "registry")
    model = _training_output(tmp_path / "a", "run-a", 2.0)
    pushed = push_version(model, root, MODEL)
    manifest_path = os.path.join(pushed.model_uri, md.MANIFEST_FILE)
    with open(manifest_path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    assert (
        manifest["identity_sha256"] == identity_sha256(_files(model)) == list_versions(root, MODEL)[0].identity_sha256
    )
    # a version pushed before the manifest held the identity is still found when its bytes are equal
    del manifest["identity_sha256"]
    with open(manifest_path, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
    assert list_versions(root, MODEL)[0].identity_sha256 is None
    assert push_version(model, root, MODEL).created is False


def _save_in_a_fresh_interpreter(code: str, path: str, hash_seed: str) -> None:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    subprocess.run([sys.executable, "-c", textwrap.dedent(code), path], check=True, cwd=REPO, env=env, timeout=300)


TORCHSCRIPT = """
    import sys, torch
    from kfpkit.components.train.torch_trainer import TabularNet, export_torchscript
    torch.manual_seed(0)
    net = TabularNet(n_numeric=3, cardinalities=[4, 7], embedding_dim=4, hidden_units=8, hidden_layers=1, dropout=0.1)
    export_torchscript(net, [4, 7], sys.argv[1])
"""

SKOPS = """
    import sys, numpy as np
    from sklearn.linear_model import LogisticRegression
    from kfpkit.components.train.sklearn_trainer import save_skops
    x = np.random.RandomState(0).randn(200, 3)
    save_skops(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), sys.argv[1])
"""


@pytest.mark.parametrize(
    "code, name", [(TORCHSCRIPT, md.TORCHSCRIPT_FILE), (SKOPS, md.SKOPS_FILE)], ids=["pt", "skops"]
)
def test_the_same_model_saved_by_two_processes_has_other_bytes_but_one_identity(tmp_path, code, name):
    paths = [str(tmp_path / seed / name) for seed in ("1", "2")]
    os.makedirs(os.path.dirname(paths[0]))
    os.makedirs(os.path.dirname(paths[1]))
    _save_in_a_fresh_interpreter(code, paths[0], "1")
    time.sleep(2.1)  # zip timestamps have a 2 s resolution: the second save gets another one
    _save_in_a_fresh_interpreter(code, paths[1], "2")
    assert md.sha256_file(paths[0]) != md.sha256_file(paths[1])
    assert identity_sha256({name: paths[0]}) == identity_sha256({name: paths[1]})


def test_other_weights_in_the_same_format_have_another_identity(tmp_path):
    os.makedirs(tmp_path / "a")
    os.makedirs(tmp_path / "b")
    _save_in_a_fresh_interpreter(SKOPS, str(tmp_path / "a" / md.SKOPS_FILE), "1")
    _save_in_a_fresh_interpreter(
        SKOPS.replace("RandomState(0)", "RandomState(1)"), str(tmp_path / "b" / md.SKOPS_FILE), "1"
    )
    first, second = (identity_sha256({md.SKOPS_FILE: str(tmp_path / d / md.SKOPS_FILE)}) for d in "ab")
    assert first != second


def test_a_file_that_does_not_parse_as_its_format_counts_by_its_bytes(tmp_path):
    card = tmp_path / "model_card.json"
    card.write_text("not json")
    broken = registry._identity_digest("model_card.json", str(card))
    assert broken == md.sha256_file(str(card))
    card.write_text("not json either")
    assert registry._identity_digest("model_card.json", str(card)) != broken
