"""Per-epoch checkpoints and resuming after a preemption."""

from __future__ import annotations

import logging
import os

import torch

from kfpkit.components.train.logic import train_model
from kfpkit.components.train.torch_trainer import CHECKPOINT_FILE
from kfpkit.core import model_dir as md

LABEL = "is_fraud"
SPEED = ("rows_per_second",)


def _weights(directory: str) -> dict:
    return torch.jit.load(os.path.join(directory, md.TORCHSCRIPT_FILE)).state_dict()


def _without_speed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in SPEED}


def test_resume_continues_from_epoch_3_and_ends_equal_to_an_uninterrupted_run(splits, tmp_path, tools, caplog):
    checkpoints = str(tmp_path / "ckpt")
    # the "preempted" run: two epochs, checkpointed
    first = train_model(
        splits.train, splits.eval, LABEL, str(tmp_path / "first"), tools.fast_params(epochs=2), checkpoints
    )
    assert first.epochs_run == 2 and first.resumed_from_epoch == 0
    assert os.listdir(checkpoints) == [CHECKPOINT_FILE]  # no temp files left behind

    caplog.clear()  # only the resumed run's log lines count (another test may have enabled INFO already)
    with caplog.at_level(logging.INFO, logger="kfpkit.train"):
        resumed = train_model(
            splits.train, splits.eval, LABEL, str(tmp_path / "resumed"), tools.fast_params(epochs=5), checkpoints
        )
    assert resumed.resumed_from_epoch == 2
    assert "resuming from checkpoint" in caplog.text
    epoch_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["3/5", "4/5", "5/5"]
    assert resumed.epochs_run == 5
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4, 5]

    straight = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "straight"), tools.fast_params(epochs=5))
    assert straight.resumed_from_epoch == 0
    resumed_weights, straight_weights = _weights(resumed.output_dir), _weights(straight.output_dir)
    for key, value in straight_weights.items():
        assert torch.equal(resumed_weights[key], value), key
    assert _without_speed(resumed.metrics) == _without_speed(straight.metrics)
    assert resumed.best_epoch == straight.best_epoch
    assert [h["pr_auc"] for h in resumed.history] == [h["pr_auc"] for h in straight.history]


def test_checkpoint_holds_model_optimizer_epoch_best_state_and_rng(splits, tmp_path, tools):
    checkpoints = tmp_path / "ckpt"
    train_model(splits.train, splits.eval, LABEL, str(tmp_path / "m"), tools.fast_params(epochs=2), str(checkpoints))
    state = torch.load(checkpoints / CHECKPOINT_FILE, weights_only=True)  # plain tensors and containers only
    assert state["epoch"] == 2
    assert {"model", "optimizer", "best_state", "best_epoch", "best_value", "rng_cpu", "rng_shuffle"} <= set(state)
    assert state["format"] == 2  # 2: the best value of early_stopping_metric (1 held best_pr_auc)
    assert state["optimizer"]["state"], "optimizer moments are saved"
    assert len(state["history"]) == 2


def test_checkpoint_of_other_parameters_is_ignored_and_training_starts_over(splits, tmp_path, tools, caplog):
    checkpoints = str(tmp_path / "ckpt")
    train_model(splits.train, splits.eval, LABEL, str(tmp_path / "a"), tools.fast_params(epochs=2), checkpoints)
    with caplog.at_level(logging.WARNING, logger="kfpkit.train"):
        other = train_model(
            splits.train,
            splits.eval,
            LABEL,
            str(tmp_path / "b"),
            tools.fast_params(epochs=2, learning_rate=1e-3),
            checkpoints,
        )
    assert other.resumed_from_epoch == 0
    assert "belongs to other data, parameters or device" in caplog.text


def test_unreadable_checkpoint_is_ignored(splits, tmp_path, tools, caplog):
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    (checkpoints / CHECKPOINT_FILE).write_bytes(b"torn write")
    with caplog.at_level(logging.WARNING, logger="kfpkit.train"):
        result = train_model(
            splits.train, splits.eval, LABEL, str(tmp_path / "m"), tools.fast_params(epochs=1), str(checkpoints)
        )
    assert result.resumed_from_epoch == 0 and result.epochs_run == 1
    assert "ignoring unreadable checkpoint" in caplog.text
    assert torch.load(checkpoints / CHECKPOINT_FILE, weights_only=True)["epoch"] == 1


def test_resuming_a_finished_run_exports_the_stored_best_weights_without_training(splits, tmp_path, tools):
    checkpoints = str(tmp_path / "ckpt")
    done = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "a"), tools.fast_params(epochs=2), checkpoints)
    again = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "b"), tools.fast_params(epochs=2), checkpoints)
    assert again.resumed_from_epoch == 2 and again.epochs_run == 2
    for key, value in _weights(done.output_dir).items():
        assert torch.equal(_weights(again.output_dir)[key], value), key
