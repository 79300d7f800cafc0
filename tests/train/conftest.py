"""Fixtures of the train tests: tiny fraud-like Parquet splits and model directories trained once per module."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from kfpkit.components.train.logic import TrainParams, TrainResult, train_model

LABEL = "is_fraud"
MERCHANTS = [f"m{i}" for i in range(8)]

# Small and fast: a few thousand rows, a small network, a few epochs, one network (the automatic size
# rule would average 5 at 3,000 training rows; tests/train/test_small_table_ensemble.py covers that).
FAST = {
    "epochs": 6,
    "batch_size": 256,
    "hidden_units": 32,
    "learning_rate": 5e-3,
    "patience": 0,
    "ensemble_members": 1,
}


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """Transactions whose label rises with amount, two risky merchants, the online channel and night hours.

    Numeric (with missing values) and categorical (with missing values) features, an id column and an
    int64 0/1 label at roughly 10 %.
    """
    rng = np.random.default_rng(seed)
    merchant = rng.choice(MERCHANTS, size=rows)
    channel = rng.choice(np.array(["online", "pos", "atm"], dtype=object), size=rows, p=[0.4, 0.45, 0.15])
    channel[rng.random(rows) < 0.03] = None
    amount = rng.lognormal(3.0, 1.0, size=rows)
    hour = rng.integers(0, 24, size=rows)
    distance = rng.exponential(10.0, size=rows)
    distance[rng.random(rows) < 0.05] = np.nan
    logit = (
        -3.6
        + 1.3 * (np.log(amount) - 3.0)
        + 1.8 * np.isin(merchant, MERCHANTS[:2])
        + 1.2 * (channel == "online")
        + 1.0 * (hour < 6)
    )
    label = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(
        {
            "transaction_id": [f"t{seed}-{i}" for i in range(rows)],
            "amount": amount,
            "merchant_category": merchant,
            "channel": channel,
            "hour": hour,
            "distance_km": distance,
            LABEL: label,
        }
    )


@dataclass
class Splits:
    train: str
    eval: str
    train_frame: pd.DataFrame
    eval_frame: pd.DataFrame


def write_splits(folder: str, train_rows: int = 3000, eval_rows: int = 1500) -> Splits:
    os.makedirs(folder, exist_ok=True)
    train_frame, eval_frame = make_frame(train_rows, seed=1), make_frame(eval_rows, seed=2)
    paths = os.path.join(folder, "train.parquet"), os.path.join(folder, "eval.parquet")
    train_frame.to_parquet(paths[0], index=False)
    eval_frame.to_parquet(paths[1], index=False)
    return Splits(paths[0], paths[1], train_frame, eval_frame)


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> Splits:
    return write_splits(str(tmp_path_factory.mktemp("data")))


@dataclass
class Trained:
    result: TrainResult
    directory: str
    params: TrainParams


def fast_params(**overrides) -> TrainParams:
    values = {**FAST, "exclude_columns": ["transaction_id"], "device": "cpu", **overrides}
    return TrainParams(**values)


@pytest.fixture(scope="module")
def trained_pytorch(splits, tmp_path_factory) -> Trained:
    directory = str(tmp_path_factory.mktemp("pytorch") / "model")
    params = fast_params()
    result = train_model(
        splits.train, splits.eval, LABEL, directory, params, pipeline_run="run-42", source_uri="synthetic://test"
    )
    return Trained(result, directory, params)


@pytest.fixture(scope="module")
def trained_sklearn(splits, tmp_path_factory) -> Trained:
    directory = str(tmp_path_factory.mktemp("sklearn") / "model")
    params = fast_params(framework="sklearn")
    result = train_model(splits.train, splits.eval, LABEL, directory, params)
    return Trained(result, directory, params)


@pytest.fixture(scope="session")
def tools():
    """The helpers above, for test modules (conftest is not importable under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        LABEL=LABEL, make_frame=make_frame, write_splits=write_splits, fast_params=fast_params, FAST=dict(FAST)
    )
