"""Calibration on small eval splits: cross-fitted Platt scaling over train and eval, on real small data.

The table is scikit-learn's bundled breast cancer table (569 rows; positive = malignant, 37 %), split by
ingest's hash into train / eval / test (0.70 / 0.15 / 0.15): about 30 eval positives, below the rule's 100.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kfpkit.components.ingest.logic import run_ingest
from kfpkit.components.train import calibration as c
from kfpkit.components.train.logic import TrainParams, train_model
from kfpkit.core import classification_metrics as m
from kfpkit.core import model_dir as md

LABEL = "malignant"
SEEDS = (1, 2, 3, 4)


def test_the_rule_cross_fits_below_100_eval_rows_of_a_class_and_fits_on_eval_otherwise():
    assert c.calibration_rows(np.r_[np.ones(99), np.zeros(5000)]) == c.FITTED_ON_CROSS_FIT
    assert c.calibration_rows(np.r_[np.ones(100), np.zeros(100)]) == c.FITTED_ON_EVAL
    assert c.calibration_rows(np.r_[np.ones(5000), np.zeros(60)]) == c.FITTED_ON_CROSS_FIT


def test_stratified_folds_deal_each_class_evenly_and_depend_on_the_seed():
    labels = np.r_[np.ones(23), np.zeros(177)].astype(np.int64)
    folds = c.stratified_folds(labels, 5, seed=3)
    for fold in range(5):
        assert int(labels[folds == fold].sum()) in (4, 5)
        assert int((folds == fold).sum()) in (39, 40, 41)  # at most one row more or less per class
    np.testing.assert_array_equal(folds, c.stratified_folds(labels, 5, seed=3))
    assert not np.array_equal(folds, c.stratified_folds(labels, 5, seed=4))


@pytest.fixture(scope="module")
def breast_cancer_runs(tmp_path_factory):
    """Per split seed: test labels, the served probabilities and the raw ones, and the train result."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.drop(columns=["target"])
    frame[LABEL] = (bunch.target == 0).astype(np.int64)
    folder = tmp_path_factory.mktemp("breast-cancer")
    source = str(folder / "table.parquet")
    frame.to_parquet(source, index=False)
    runs = {}
    for seed in SEEDS:
        paths = [str(folder / f"{seed}-{split}.parquet") for split in ("train", "eval", "test")]
        run_ingest(source, LABEL, *paths, seed=seed)
        result = train_model(
            paths[0], paths[1], LABEL, str(folder / f"model-{seed}"), TrainParams(seed=seed, device="cpu")
        )
        loaded = md.load_model(result.output_dir)
        test = pd.read_parquet(paths[2])
        eval_frame = pd.read_parquet(paths[1])
        runs[seed] = {
            "result": result,
            "labels": test[LABEL].to_numpy(),
            "served": loaded.predict_proba(test),
            "raw": loaded.predict_uncalibrated_arrays(*loaded.spec.transform(test)),
            "eval_labels": eval_frame[LABEL].to_numpy(),
            "eval_raw": loaded.predict_uncalibrated_arrays(*loaded.spec.transform(eval_frame)),
            "card": loaded.card,
        }
    return runs


def test_a_small_eval_split_gets_the_cross_fitted_calibration_and_the_card_says_so(breast_cancer_runs):
    for run in breast_cancer_runs.values():
        assert int(run["eval_labels"].sum()) < c.MIN_EVAL_CLASS_ROWS
        assert run["result"].calibration.fitted_on == c.FITTED_ON_CROSS_FIT
        record = run["card"].training["calibration"]
        assert record["fitted_on"] == c.FITTED_ON_CROSS_FIT and record["method"] == "platt"
        # fitted on every train and eval row: more than four times the eval split
        assert record["rows"] > 4 * len(run["eval_labels"])
        # monotonic: the ranking is the raw model's
        assert m.roc_auc(run["labels"], run["served"]) == pytest.approx(m.roc_auc(run["labels"], run["raw"]), abs=1e-9)


def test_cross_fitted_calibration_does_at_least_as_well_as_platt_on_eval_on_the_test_split(breast_cancer_runs):
    """Against the previous rule (Platt scaling fitted on the ~85 eval rows), summed over split seeds."""
    cross_fit, on_eval = [], []
    for run in breast_cancer_runs.values():
        before = c.fit_platt(run["eval_labels"], run["eval_raw"]).apply(run["raw"])
        cross_fit.append(m.log_loss(run["labels"], run["served"]))
        on_eval.append(m.log_loss(run["labels"], before))
    assert sum(cross_fit) <= sum(on_eval), (cross_fit, on_eval)
