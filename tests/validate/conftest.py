"""Fixtures of the validate tests: small real frames written as Parquet, output paths, the TFDV interpreter.

The TFDV tests spawn the TFDV interpreter (``.venv-tfdv/bin/python``, or ``KFPKIT_TFDV_PYTHON``) through
``run_validation``; each spawn pays the TensorFlow import (5-12 s), so every scenario runs ONCE in a
module-scoped fixture and several tests assert on its result.
"""

import os
import types

import numpy as np
import pandas as pd
import pytest

from kfpkit.components.validate import logic

LABEL = "is_fraud"
CHANNELS = ["web", "pos", "app"]
COUNTRIES = ["US", "DE", "FR", "GB"]
DEVICES = ["ios", "android", "desktop"]


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """A few numeric and categorical columns plus an int64 0/1 label, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 30.0, rows).round(2),
            "hour": rng.integers(0, 24, rows).astype("int64"),
            "channel": rng.choice(CHANNELS, rows),
            "country": rng.choice(COUNTRIES, rows, p=[0.7, 0.1, 0.1, 0.1]),
            "device": rng.choice(DEVICES, rows),
            LABEL: (rng.random(rows) < 0.1).astype("int64"),
        }
    )


def write_parquet(frame: pd.DataFrame, path) -> str:
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    frame.to_parquet(str(path), index=False)
    return str(path)


def output_paths(root) -> logic.OutputPaths:
    root = str(root)
    return logic.OutputPaths(
        train_statistics=os.path.join(root, "train_statistics"),
        eval_statistics=os.path.join(root, "eval_statistics"),
        test_statistics=os.path.join(root, "test_statistics"),
        schema=os.path.join(root, "schema"),
        anomalies=os.path.join(root, "anomalies"),
        baseline=os.path.join(root, "baseline"),
        report=os.path.join(root, "report"),
    )


def tfdv_python_or_skip() -> str:
    """The TFDV interpreter the tests use; skips with a reason when the TFDV environment is missing."""
    try:
        return logic.resolve_tfdv_python()
    except logic.ValidateError as exc:
        pytest.skip(f"TFDV environment missing (create it with `make setup`): {exc}")


@pytest.fixture(scope="session")
def vh():
    """The helpers of this folder (test modules cannot import conftest under --import-mode=importlib)."""
    return types.SimpleNamespace(
        LABEL=LABEL, make_frame=make_frame, write_parquet=write_parquet, output_paths=output_paths
    )


@pytest.fixture(scope="session")
def tfdv_python() -> str:
    return tfdv_python_or_skip()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """train.parquet (400 rows), clean eval.parquet and test.parquet (200 rows each) from the same distribution."""
    root = tmp_path_factory.mktemp("validate-data")
    write_parquet(make_frame(400, seed=0), root / "train.parquet")
    write_parquet(make_frame(200, seed=1), root / "eval.parquet")
    write_parquet(make_frame(200, seed=5), root / "test.parquet")
    return root


@pytest.fixture(scope="session")
def clean_component_run(tfdv_python, data_dir, tmp_path_factory):
    """The validate component's ``python_func`` on clean splits, with tmp-path artifacts (one TFDV run)."""
    from kfp.dsl import Artifact, Dataset, Markdown

    from kfpkit.components.validate.component import validate

    root = tmp_path_factory.mktemp("validate-component-clean")
    artifacts = {
        "train_statistics": Artifact(uri=str(root / "train_statistics")),
        "eval_statistics": Artifact(uri=str(root / "eval_statistics")),
        "test_statistics": Artifact(uri=str(root / "test_statistics")),
        "schema": Artifact(uri=str(root / "schema")),
        "anomalies": Artifact(uri=str(root / "anomalies")),
        "baseline": Artifact(uri=str(root / "baseline")),
        "report": Markdown(uri=str(root / "report")),
    }
    outputs = validate.python_func(
        train_data=Dataset(uri=str(data_dir / "train.parquet")),
        eval_data=Dataset(uri=str(data_dir / "eval.parquet")),
        test_data=Dataset(uri=str(data_dir / "test.parquet")),
        label_column=LABEL,
        **artifacts,
    )
    return types.SimpleNamespace(outputs=outputs, artifacts=artifacts, root=root)
