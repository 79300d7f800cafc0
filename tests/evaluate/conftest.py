"""Fixtures of the evaluate tests: tiny fraud-like frames and sklearn model directories in train's format."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import pytest

from kfpkit.core import model_dir as md
from kfpkit.core.model_card import ModelCard
from kfpkit.core.preprocessing import PreprocessingSpec

LABEL = "is_fraud"


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """Transactions whose fraud probability rises with amount, the web channel and night hours."""
    rng = np.random.default_rng(seed)
    channel = rng.choice(["web", "pos", "atm"], size=rows, p=[0.5, 0.3, 0.2])
    country = rng.choice(["DE", "FR", "US"], size=rows).astype(object)
    country[rng.random(rows) < 0.05] = None
    amount = rng.lognormal(3.0, 1.0, size=rows)
    hour = rng.integers(0, 24, size=rows)
    logit = -5.0 + 1.4 * (np.log(amount) - 3.0) + 1.6 * (channel == "web") + 1.0 * (hour < 6)
    label = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(
        {
            "transaction_id": [f"t{seed}-{i}" for i in range(rows)],
            "amount": amount,
            "channel": channel,
            "country": country,
            "hour": hour,
            LABEL: label,
        }
    )


def build_model_dir(
    directory: str,
    train: pd.DataFrame,
    *,
    features: Sequence[str],
    threshold: float = 0.3,
    manifest: bool = False,
) -> str:
    """Writes an sklearn model directory in train's format (skops + spec + card), without calibration."""
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier

    spec = PreprocessingSpec.fit(train, LABEL, feature_columns=list(features))
    numeric, categorical = spec.transform(train)
    model = HistGradientBoostingClassifier(max_iter=25, random_state=0)
    model.fit(md.sklearn_feature_matrix(numeric, categorical), train[LABEL].to_numpy())
    os.makedirs(directory)
    sio.dump(model, os.path.join(directory, md.SKOPS_FILE))
    spec.save(os.path.join(directory, md.PREPROCESSING_FILE))
    md.write_model_card(
        directory,
        ModelCard(
            framework="sklearn",
            model_file=md.SKOPS_FILE,
            label_column=LABEL,
            feature_order=list(spec.feature_order),
            decision_threshold=threshold,
            parameters={"max_iter": 25},
            created_at="2024-01-01T00:00:00Z",
        ),
    )
    if manifest:
        md.write_manifest(directory)
    return directory


@dataclass
class Models:
    """Paths shared by the tests (built once per session; tests copy what they modify)."""

    root: str
    test_path: str
    test_frame: pd.DataFrame
    strong: str  # all features
    weak: str  # the country only: PR-AUC near the positive rate
    strong_with_manifest: str


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("evaluate-models")
    train = make_frame(3000, seed=1)
    test_frame = make_frame(2000, seed=2)
    test_path = str(root / "test.parquet")
    test_frame.to_parquet(test_path, index=False)
    all_features = ["amount", "channel", "country", "hour"]
    return Models(
        root=str(root),
        test_path=test_path,
        test_frame=test_frame,
        strong=build_model_dir(str(root / "strong"), train, features=all_features),
        weak=build_model_dir(str(root / "weak"), train, features=["country"]),
        strong_with_manifest=build_model_dir(
            str(root / "strong-manifest"), train, features=all_features, manifest=True
        ),
    )


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_openmp():
    """HistGradientBoosting's OpenMP threads crawl on a busy 2-core machine; the data here is tiny."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield
