"""Small tables get an averaged ensemble of networks: the size rule, user values win, what is exported, resume."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from kfpkit.components.train import trainer as t
from kfpkit.components.train.calibration import FITTED_ON_CROSS_FIT
from kfpkit.components.train.logic import train_model
from kfpkit.components.train.torch_trainer import CHECKPOINT_FILE, MEMBER_FOLDER, member_seed
from kfpkit.components.train.trainer import training_schedule
from kfpkit.core import model_dir as md

LABEL = "is_fraud"


@pytest.mark.parametrize(
    ("rows", "members"),
    [(40, 5), (400, 5), (3_500, 5), (4_444, 5), (7_000, 3), (10_000, 2), (13_334, 1), (14_000, 1), (70_000, 1)],
)
def test_auto_schedule_averages_five_networks_on_small_tables_and_one_from_14k_training_rows(rows, members):
    schedule = training_schedule(rows)
    assert schedule.ensemble_members == members and "ensemble_members" in schedule.auto
    # an ensemble costs about one network on ENSEMBLE_ROWS rows (or is at its cap on the smallest tables)
    assert members == 1 or members * rows <= 1.5 * t.ENSEMBLE_ROWS or members == t.MAX_ENSEMBLE_MEMBERS


def test_the_users_ensemble_size_wins_and_large_tables_keep_a_single_network():
    mine = training_schedule(3_500, ensemble_members=2)
    assert mine.ensemble_members == 2 and mine.auto == ("batch_size", "epochs")
    assert training_schedule(3_500, ensemble_members=1).ensemble_members == 1
    assert training_schedule(700_000).ensemble_members == 1
    with pytest.raises(t.TrainError, match="ensemble_members must be an integer >= 1, or 0 for auto"):
        t.TrainParams(ensemble_members=-1).validate(["pytorch"])


def _torchscript_probabilities(directory: str, frame) -> np.ndarray:
    """The raw (uncalibrated) probabilities of model.pt on a frame, through the stored preprocessing."""
    from kfpkit.core.preprocessing import PreprocessingSpec

    spec = PreprocessingSpec.load(os.path.join(directory, md.PREPROCESSING_FILE))
    numeric, categorical = spec.transform(frame)
    module = torch.jit.load(os.path.join(directory, md.TORCHSCRIPT_FILE))
    with torch.no_grad():
        out = module(torch.from_numpy(numeric.astype(np.float32)), torch.from_numpy(categorical.astype(np.int64)))
    return out.numpy().astype(np.float64)


def test_an_ensemble_exports_the_mean_logit_of_networks_trained_alone_with_the_member_seeds(splits, tmp_path, tools):
    params = tools.fast_params(epochs=3, ensemble_members=3, seed=5)
    result = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "ensemble"), params)
    card = md.read_model_card(result.output_dir)
    assert card.parameters["ensemble_members"] == 3 and "ensemble_members" not in card.parameters["auto_parameters"]
    seeds = [member_seed(5, k) for k in range(3)]
    assert seeds[0] == 5 and len(set(seeds)) == 3
    assert [m["seed"] for m in card.training["members"]] == seeds
    assert result.best_epoch == max(m["best_epoch"] for m in card.training["members"])
    singles = []
    for k, seed in enumerate(seeds):
        alone = train_model(
            splits.train, splits.eval, LABEL, str(tmp_path / f"alone-{k}"), tools.fast_params(epochs=3, seed=seed)
        )
        singles.append(_torchscript_probabilities(alone.output_dir, splits.eval_frame))
    logits = np.mean([np.log(p) - np.log1p(-p) for p in singles], axis=0)
    expected = 1.0 / (1.0 + np.exp(-logits))
    exported = _torchscript_probabilities(result.output_dir, splits.eval_frame)
    np.testing.assert_allclose(exported, expected, atol=2e-6)
    # the ensemble is not one of its members, and the served (calibrated) model ranks like the exported one
    assert not np.allclose(exported, singles[0], atol=1e-4)
    served = md.load_model(result.output_dir).predict_proba(splits.eval_frame)
    assert np.array_equal(np.argsort(served, kind="stable"), np.argsort(exported, kind="stable"))


def test_ensemble_members_checkpoint_in_their_own_folders_and_a_rerun_resumes_every_member(
    splits, tmp_path, tools, caplog
):
    checkpoints = tmp_path / "ckpt"
    params = tools.fast_params(epochs=2, ensemble_members=3)
    first = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "a"), params, str(checkpoints))
    assert (checkpoints / CHECKPOINT_FILE).is_file()
    for k in (1, 2):
        assert (checkpoints / MEMBER_FOLDER.format(k) / CHECKPOINT_FILE).is_file()
    with caplog.at_level("INFO", logger="kfpkit.train"):
        again = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "b"), params, str(checkpoints))
    assert caplog.text.count("resuming from checkpoint") == 3
    assert again.metrics["pr_auc"] == first.metrics["pr_auc"] and again.metrics["log_loss"] == first.metrics["log_loss"]


def test_a_small_eval_split_cross_fits_the_calibration_with_ensembles_of_the_same_size(tmp_path, tools):
    small = tools.write_splits(str(tmp_path / "data"), train_rows=600, eval_rows=300)  # ~30 eval positives
    params = tools.fast_params(epochs=2, ensemble_members=2)
    result = train_model(small.train, small.eval, LABEL, str(tmp_path / "m"), params)
    card = md.read_model_card(result.output_dir)
    assert result.calibration.fitted_on == FITTED_ON_CROSS_FIT
    assert card.parameters["ensemble_members"] == 2
    assert card.training["calibration"]["rows"] == 900
