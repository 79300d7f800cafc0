"""Fixtures of the evaluate tests: tiny fraud-like frames and sklearn model directories in train's format."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import pytest

from kfpkit.components.common import model_dir as md
from kfpkit.components.common.preprocessing import PreprocessingSpec

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


def max_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The rule train uses for ``decision_threshold``: the max-F1 threshold on the eval split."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def build_model_dir(
    directory: str,
    train: pd.DataFrame,
    eval_frame: pd.DataFrame,
    *,
    features: Sequence[str],
    threshold: Optional[float] = None,
    manifest: bool = False,
) -> str:
    """Writes an sklearn baseline model directory exactly as train does (skops + spec + card)."""
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier

    spec = PreprocessingSpec.fit(train, LABEL, feature_columns=list(features))
    numeric, categorical = spec.transform(train)
    model = HistGradientBoostingClassifier(max_iter=25, random_state=0)
    model.fit(md.sklearn_feature_matrix(numeric, categorical), train[LABEL].to_numpy())
    eval_scores = model.predict_proba(md.sklearn_feature_matrix(*spec.transform(eval_frame)))[:, 1]
    if threshold is None:
        threshold = max_f1_threshold(eval_frame[LABEL].to_numpy(), eval_scores)
    os.makedirs(directory)
    sio.dump(model, os.path.join(directory, md.SKOPS_FILE))
    spec.save(os.path.join(directory, md.PREPROCESSING_FILE))
    md.write_model_card(
        directory,
        {
            "framework": "sklearn",
            "model_file": md.SKOPS_FILE,
            "label_column": LABEL,
            "feature_order": spec.feature_order,
            "decision_threshold": threshold,
            "parameters": {"max_iter": 25},
            "data": {"train_rows": len(train), "eval_rows": len(eval_frame)},
            "metrics": {},
            "versions": {},
            "created_at": "2024-01-01T00:00:00Z",
        },
    )
    if manifest:
        md.write_manifest(directory)
    return directory


@dataclass
class Models:
    """Paths shared by the tests (built once per session; tests copy what they modify)."""

    root: str
    eval_path: str
    eval_frame: pd.DataFrame
    strong: str  # all features
    weak: str  # the country only: PR-AUC near the positive rate
    strong_with_manifest: str


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("evaluate-models")
    train = make_frame(3000, seed=1)
    eval_frame = make_frame(2000, seed=2)
    eval_path = str(root / "eval.parquet")
    eval_frame.to_parquet(eval_path, index=False)
    all_features = ["amount", "channel", "country", "hour"]
    return Models(
        root=str(root),
        eval_path=eval_path,
        eval_frame=eval_frame,
        strong=build_model_dir(str(root / "strong"), train, eval_frame, features=all_features),
        weak=build_model_dir(str(root / "weak"), train, eval_frame, features=["country"]),
        strong_with_manifest=build_model_dir(
            str(root / "strong-manifest"), train, eval_frame, features=all_features, manifest=True
        ),
    )


@pytest.fixture(scope="session")
def frame_factory():
    """``make_frame(rows, seed)``."""
    return make_frame


@pytest.fixture(scope="session")
def model_dir_factory():
    """``build_model_dir(directory, train, eval_frame, *, features, threshold=None, manifest=False)``."""
    return build_model_dir


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_openmp():
    """HistGradientBoosting's OpenMP threads crawl on a busy 2-core machine; the data here is tiny."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield
