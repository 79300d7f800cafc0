"""The registry records a rolled-back canary and moves LATEST_BLESSED off it (local and object-store roots)."""

import json
import os

import pytest

from kfpkit.components.rollout.logic import record_rollback_in_registry
from kfpkit.core.registry import (
    POINTER_FILE,
    ROLLBACKS_DIR,
    RegistryError,
    RolledBackVersion,
    latest_blessed,
    push_version,
    record_rollback,
    rolled_back_versions,
)
from kfpkit.core.rollout_record import ROLLBACK, RolloutRecord

MODEL = "fraud-detector"


@pytest.fixture(params=["local", "memory"])
def any_root(request, root, memory_root):
    return root if request.param == "local" else memory_root


def push_two(tmp_path, model, root, make_model_dir):
    first = push_version(model, root, MODEL)
    second = push_version(make_model_dir(tmp_path / "model-b", weights=b"weights-v2"), root, MODEL)
    return first, second


def test_rolling_back_the_latest_points_latest_blessed_at_the_version_still_serving(
    tmp_path, model, any_root, make_model_dir
):
    first, _ = push_two(tmp_path, model, any_root, make_model_dir)
    assert latest_blessed(any_root, MODEL).version == 2

    after = record_rollback(any_root, MODEL, 2, reason="score_js 0.41 > 0.1 at 25 %")

    assert (after.version, after.content_sha256) == (1, first.content_sha256)
    assert latest_blessed(any_root, MODEL).version == 1
    assert rolled_back_versions(any_root, MODEL) == [2]


def test_the_rollback_record_is_a_typed_record_with_the_reason(tmp_path, model, root, make_model_dir):
    push_two(tmp_path, model, root, make_model_dir)

    record_rollback(root, MODEL, 2, reason="error rate")

    with open(os.path.join(root, MODEL, ROLLBACKS_DIR, "2.json"), encoding="utf-8") as fh:
        document = json.load(fh)
    record = RolledBackVersion.from_dict(document)
    assert (record.version, record.reason) == (2, "error rate")
    assert document["record"] == "rolled-back version"
    with open(os.path.join(root, MODEL, POINTER_FILE), encoding="utf-8") as fh:
        pointer = json.load(fh)
    assert (pointer["version"], pointer["created"]) == (1, False)


def test_rolling_back_a_version_the_pointer_does_not_name_leaves_the_pointer(tmp_path, model, root, make_model_dir):
    push_two(tmp_path, model, root, make_model_dir)

    assert record_rollback(root, MODEL, 1).version == 2

    assert latest_blessed(root, MODEL).version == 2
    assert rolled_back_versions(root, MODEL) == [1]


def test_rolling_back_the_only_version_removes_the_pointer(model, root):
    push_version(model, root, MODEL)

    assert record_rollback(root, MODEL, 1) is None

    assert not os.path.exists(os.path.join(root, MODEL, POINTER_FILE))
    assert latest_blessed(root, MODEL) is None


def test_the_fallback_without_a_pointer_skips_rolled_back_versions(tmp_path, model, root, make_model_dir):
    push_two(tmp_path, model, root, make_model_dir)
    record_rollback(root, MODEL, 2)
    os.remove(os.path.join(root, MODEL, POINTER_FILE))

    assert latest_blessed(root, MODEL).version == 1


def test_pushing_the_rolled_back_content_again_finds_it_without_moving_the_pointer(
    tmp_path, model, root, make_model_dir, caplog
):
    push_two(tmp_path, model, root, make_model_dir)
    record_rollback(root, MODEL, 2)

    again = push_version(str(tmp_path / "model-b"), root, MODEL)

    assert (again.version, again.created) == (2, False)  # created=False: the pipelines deploy nothing
    assert latest_blessed(root, MODEL).version == 1  # still the model serving, the next gate's baseline
    assert rolled_back_versions(root, MODEL) == [2]
    assert "its canary was rolled back: LATEST_BLESSED is not moved" in caplog.text


def test_rolling_back_a_version_that_does_not_exist_fails_naming_it(model, root):
    push_version(model, root, MODEL)

    with pytest.raises(RegistryError, match=r"fraud-detector/7: not a complete version"):
        record_rollback(root, MODEL, 7)

    assert rolled_back_versions(root, MODEL) == []


def rollout_record(canary: str, decision: str = ROLLBACK) -> RolloutRecord:
    return RolloutRecord(
        backend="kserve",
        namespace="ns",
        isvc=MODEL,
        stable_version="1",
        canary_version=canary,
        steps_config=[10, 100],
        interval_s=1.0,
        decision=decision,
        reason="score_js 0.41 > 0.1 at 10 %",
    )


def test_a_rolled_back_canary_is_recorded_in_the_registry_of_its_model_uri(tmp_path, model, root, make_model_dir):
    _, second = push_two(tmp_path, model, root, make_model_dir)

    record_rollback_in_registry(second.model_uri, rollout_record("2"))

    assert rolled_back_versions(root, MODEL) == [2]
    assert latest_blessed(root, MODEL).version == 1
    with open(os.path.join(root, MODEL, ROLLBACKS_DIR, "2.json"), encoding="utf-8") as fh:
        assert json.load(fh)["reason"] == "score_js 0.41 > 0.1 at 10 %"


@pytest.mark.parametrize("canary", ["1", "3"])
def test_a_canary_of_another_version_leaves_the_registry_alone(tmp_path, model, root, make_model_dir, canary, caplog):
    _, second = push_two(tmp_path, model, root, make_model_dir)

    record_rollback_in_registry(second.model_uri, rollout_record(canary))

    assert rolled_back_versions(root, MODEL) == []
    assert latest_blessed(root, MODEL).version == 2
    assert "the registry is not told" in caplog.text


def test_a_model_uri_outside_any_registry_is_left_alone(caplog):
    record_rollback_in_registry("gs://bucket/some/model-dir", rollout_record("2"))

    assert "the registry is not told" in caplog.text


def test_a_registry_refusing_the_rollback_record_does_not_fail_the_finished_rollback(model, root, caplog):
    """The traffic has moved back already: the decision, outputs and alert must not be lost to the registry
    (here it does not hold the version; an unwritable store takes the same path)."""
    push_version(model, root, MODEL)
    missing_version = os.path.join(root, MODEL, "9")

    record_rollback_in_registry(missing_version, rollout_record("9"))

    assert "could not be recorded in the registry" in caplog.text
    assert latest_blessed(root, MODEL).version == 1
