"""Size-aware defaults of the PyTorch trainer: batch size and epochs from the row count, user values win,
early stopping on eval log loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kfpkit.components.train import trainer as t
from kfpkit.components.train.logic import TrainParams, train_model
from kfpkit.components.train.trainer import TrainError, training_schedule
from kfpkit.core import classification_metrics as m
from kfpkit.core import model_dir as md

LABEL = "is_fraud"


@pytest.mark.parametrize("rows", [1, 40, 400, 3_500, 14_000, 70_000, 700_000, 10_000_000])
def test_auto_schedule_gives_every_size_enough_steps_per_epoch_and_enough_rows_in_all(rows):
    schedule = training_schedule(rows)
    assert schedule.auto == ("batch_size", "epochs", "ensemble_members")
    batch = schedule.batch_size
    assert batch & (batch - 1) == 0 and t.MIN_BATCH_SIZE <= batch <= t.MAX_BATCH_SIZE
    # at least 16 optimizer steps per epoch unless the batch is already at its floor; the largest such batch
    assert math.ceil(rows / batch) >= t.MIN_STEPS_PER_EPOCH or batch == t.MIN_BATCH_SIZE
    assert batch == t.MAX_BATCH_SIZE or math.ceil(rows / (2 * batch)) < t.MIN_STEPS_PER_EPOCH
    # about 560k rows shown to the optimizer, within the epoch bounds
    assert t.MIN_EPOCHS <= schedule.epochs <= t.MAX_EPOCHS
    assert schedule.epochs * rows >= t.ROWS_PER_RUN or schedule.epochs == t.MAX_EPOCHS
    assert (schedule.epochs - 1) * rows < t.ROWS_PER_RUN or schedule.epochs == t.MIN_EPOCHS


def test_auto_schedule_keeps_the_100k_sample_as_before_and_gives_small_tables_more_steps():
    sample = training_schedule(70_000)  # 100k rows of the generator
    assert (sample.batch_size, sample.epochs) == (4096, 8)
    small = training_schedule(14_000)  # 20k rows of the generator
    assert (small.batch_size, small.epochs) == (512, 40)
    steps = [math.ceil(n / s.batch_size) * s.epochs for n, s in ((n, training_schedule(n)) for n in (3_500, 14_000))]
    assert min(steps) >= 500  # the old 4096 x 8 gave 8 and 32 steps


def test_user_values_win_over_the_automatic_schedule():
    assert training_schedule(14_000, batch_size=100, epochs=3, ensemble_members=2) == t.Schedule(
        batch_size=100, epochs=3, auto=(), ensemble_members=2
    )
    only_batch = training_schedule(14_000, batch_size=100)
    assert (only_batch.batch_size, only_batch.auto) == (100, ("epochs", "ensemble_members"))
    assert only_batch.epochs == 40
    only_epochs = training_schedule(14_000, epochs=3)
    assert (only_epochs.batch_size, only_epochs.epochs) == (512, 3)
    assert only_epochs.auto == ("batch_size", "ensemble_members")


def test_defaults_are_auto_and_negative_values_or_unknown_stopping_metrics_are_refused():
    assert TrainParams().epochs == t.AUTO and TrainParams().batch_size == t.AUTO
    assert TrainParams().early_stopping_metric == "log_loss"
    TrainParams().validate(["pytorch"])
    with pytest.raises(TrainError, match="epochs must be an integer >= 1, or 0 for auto"):
        TrainParams(epochs=-1).validate(["pytorch"])
    with pytest.raises(TrainError, match="batch_size must be"):
        TrainParams(batch_size=-4).validate(["pytorch"])
    with pytest.raises(TrainError, match="early_stopping_metric must be one of"):
        TrainParams(early_stopping_metric="accuracy").validate(["pytorch"])


def test_train_model_records_the_automatically_chosen_schedule_in_the_model_card(splits, tmp_path, tools):
    params = tools.fast_params(epochs=0, batch_size=0, patience=1)
    result = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "model"), params)
    card = md.read_model_card(result.output_dir)
    expected = training_schedule(len(splits.train_frame))
    assert card.parameters["batch_size"] == expected.batch_size == 128  # 3,000 training rows
    assert card.parameters["epochs"] == expected.epochs == 187
    assert card.parameters["auto_parameters"] == ["batch_size", "epochs"]
    assert card.parameters["early_stopping_metric"] == "log_loss"
    assert result.epochs_run < expected.epochs and card.training["stopped_early"] is True


def test_train_model_keeps_the_users_batch_size_and_epochs(trained_pytorch):
    card = md.read_model_card(trained_pytorch.directory)
    assert card.parameters["batch_size"] == 256 and card.parameters["epochs"] == 6
    assert card.parameters["auto_parameters"] == []


def test_early_stopping_on_log_loss_exports_the_epoch_of_the_lowest_eval_log_loss(splits, tmp_path, tools):
    params = tools.fast_params(epochs=40, patience=2, learning_rate=2e-2)
    result = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "model"), params)
    losses = [h["log_loss"] for h in result.history]
    assert result.epochs_run < 40 and result.epochs_run - result.best_epoch == 2
    assert result.best_epoch == 1 + int(np.argmin(losses))
    assert min(losses[result.best_epoch :]) >= losses[result.best_epoch - 1]
    # the exported (uncalibrated) model is that epoch's: its eval log loss is the recorded one
    loaded = md.load_model(result.output_dir)
    raw = loaded.predict_uncalibrated_arrays(*loaded.spec.transform(splits.eval_frame))
    labels = splits.eval_frame[LABEL].to_numpy()
    assert m.log_loss(labels, raw) == pytest.approx(losses[result.best_epoch - 1], abs=1e-6)
