"""Fixtures of the monitor tests: a model version folder whose baseline profile comes from designed-shift data.

The "model" is its preprocessing spec and a stand-in model file: the monitor reads only the profile and the
identity files' sha256, never the model itself.
"""

import os
import types

import numpy as np
import pandas as pd
import pytest

from demo import shifts
from kfpkit.core import monitoring_baseline as mb
from kfpkit.core.preprocessing import PreprocessingSpec

BASELINE_ROWS = 100_000


def eval_scores(rows: int, seed: int, shifted: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.beta(1.2 if shifted else 0.6, 6.0, rows)


def make_model_dir(path, rows: int = BASELINE_ROWS, seed: int = 0) -> str:
    """A model version folder with preprocessing.json, a model file and monitoring_baseline.json."""
    os.makedirs(path, exist_ok=True)
    frame = pd.DataFrame(shifts.generate(rows, seed))
    frame["label"] = 0
    spec = PreprocessingSpec.fit(frame, "label")
    spec.save(os.path.join(path, "preprocessing.json"))
    with open(os.path.join(path, "model.skops"), "wb") as fh:
        fh.write(b"stand-in model bytes %d" % seed)
    mb.write_baseline(str(path), mb.build_baseline(frame, spec, eval_scores(20_000, seed)))
    return str(path)


def write_window(path, rows: int, seed: int, shift_names=(), score: bool = False) -> str:
    """Designed-shift rows as a table; the format follows the suffix (.parquet, .csv, .jsonl)."""
    fmt = str(path).rsplit(".", 1)[-1]
    columns = shifts.generate(rows, seed, shift_names)
    frame = pd.DataFrame(columns)
    if score:
        frame["score"] = eval_scores(rows, seed + 100)
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("registry") / "shifty" / "1")


@pytest.fixture(scope="session")
def baseline(model_dir):
    return mb.read_baseline(model_dir)


@pytest.fixture(scope="session")
def mh():
    """The helpers of this folder (test modules cannot import conftest under --import-mode=importlib)."""
    return types.SimpleNamespace(make_model_dir=make_model_dir, write_window=write_window, eval_scores=eval_scores)
