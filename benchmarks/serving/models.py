"""The benchmark's model: one LogisticRegression, packaged for kfpkit, MLServer and KServe's sklearnserver.

The model is trained on the numeric columns of the synthetic fraud data
(:func:`kfpkit.components.ingest.synthetic.generate_fraud`), so every server can take the same single FP32
tensor ``[n, k]`` in :data:`FEATURES` order:

* kfpkit: a model version directory -- ``PreprocessingSpec`` fitted on the numeric frame, the
  LogisticRegression fitted on ``sklearn_feature_matrix(*spec.transform(frame))``, saved with skops, model
  card and sha256 manifest. The predictor standardizes the raw features (the spec) and scores.
* MLServer and sklearnserver: ``model.joblib``, a sklearn ``Pipeline`` of a ``StandardScaler`` carrying the
  spec's mean and standard deviation and the *same* fitted LogisticRegression, fed the raw features.

So every server does the same work on the same input: standardize five numbers, one dot product, one
sigmoid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Tuple

import numpy as np

LABEL = "is_fraud"
FEATURES = ["amount", "hour", "distance_from_home_km", "transactions_last_24h", "account_age_days"]
JOBLIB_FILE = "model.joblib"
DEFAULT_TRAIN_ROWS = 20_000


@dataclass
class BenchModel:
    """Where the benchmark model was written.

    Attributes:
        kfpkit_dir: kfpkit model version directory (``kfpkit serve --model-dir``).
        joblib_dir: Directory holding only ``model.joblib`` (the sklearn Pipeline).
        feature_order: Columns of the FP32 tensor every server takes.
    """

    kfpkit_dir: str
    joblib_dir: str
    feature_order: List[str]

    @property
    def joblib_path(self) -> str:
        return os.path.join(self.joblib_dir, JOBLIB_FILE)


def training_frame(rows: int = DEFAULT_TRAIN_ROWS, seed: int = 0) -> Any:
    """The numeric columns and the label of ``generate_fraud(rows, seed)``."""
    from kfpkit.components.ingest.synthetic import generate_fraud

    return generate_fraud(rows, seed=seed)[[*FEATURES, LABEL]]


def fit_models(frame: Any) -> Tuple[Any, Any, Any]:
    """``(spec, logistic_regression, pipeline)`` fitted on ``frame`` (numeric features + label).

    The pipeline's scaler holds the spec's mean/std (population std, as ``PreprocessingSpec``), and its
    classifier is the very LogisticRegression object fitted on kfpkit's feature matrix.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from kfpkit.core.model_dir import sklearn_feature_matrix
    from kfpkit.core.preprocessing import PreprocessingSpec

    spec = PreprocessingSpec.fit(frame, LABEL, feature_columns=FEATURES)
    if spec.categorical or spec.feature_order != FEATURES:
        raise ValueError(f"the benchmark model needs the numeric features {FEATURES}, got {spec.feature_order}")
    matrix = sklearn_feature_matrix(*spec.transform(frame))
    classifier = LogisticRegression(max_iter=1000)
    classifier.fit(matrix, frame[LABEL].to_numpy())

    scaler = StandardScaler()
    mean = np.array([f.mean for f in spec.numeric], dtype=np.float64)
    std = np.array([f.std for f in spec.numeric], dtype=np.float64)
    # a fitted StandardScaler is exactly these attributes; fitting it again on the frame would give the same
    # numbers up to rounding, copying them makes the two servers' scaling identical
    scaler.mean_ = mean
    scaler.scale_ = std
    scaler.var_ = std**2
    scaler.n_features_in_ = len(FEATURES)
    scaler.n_samples_seen_ = np.int64(len(frame))
    pipeline = Pipeline([("scale", scaler), ("classifier", classifier)])
    return spec, classifier, pipeline


def build_bench_model(directory: str, rows: int = DEFAULT_TRAIN_ROWS, seed: int = 0) -> BenchModel:
    """Trains the benchmark LogisticRegression and writes it for every server under ``directory``.

    Writes ``<directory>/kfpkit/`` (model version directory with manifest) and
    ``<directory>/sklearn/model.joblib``.
    """
    import joblib
    import skops.io as sio

    from kfpkit.core import model_dir as md
    from kfpkit.core.model_card import DataLineage, ModelCard

    frame = training_frame(rows, seed)
    spec, classifier, pipeline = fit_models(frame)

    kfpkit_dir = os.path.join(directory, "kfpkit")
    os.makedirs(kfpkit_dir, exist_ok=True)
    sio.dump(classifier, os.path.join(kfpkit_dir, md.SKOPS_FILE))
    spec.save(os.path.join(kfpkit_dir, md.PREPROCESSING_FILE))
    md.write_model_card(
        kfpkit_dir,
        ModelCard(
            framework="sklearn",
            model_file=md.SKOPS_FILE,
            label_column=LABEL,
            feature_order=list(spec.feature_order),
            decision_threshold=0.5,
            decision_rule="fixed 0.5 (benchmark model)",
            data=DataLineage(source_uri=f"synthetic://fraud?rows={rows}&seed={seed}"),
            parameters={"model": "LogisticRegression", "max_iter": 1000},
            created_at="1970-01-01T00:00:00Z",
        ),
    )
    md.write_manifest(kfpkit_dir)

    joblib_dir = os.path.join(directory, "sklearn")
    os.makedirs(joblib_dir, exist_ok=True)
    joblib.dump(pipeline, os.path.join(joblib_dir, JOBLIB_FILE))
    return BenchModel(kfpkit_dir=kfpkit_dir, joblib_dir=joblib_dir, feature_order=list(spec.feature_order))


def request_rows(count: int, seed: int = 1) -> np.ndarray:
    """``count`` raw feature rows (float64 ``[count, k]``) from fresh synthetic data, each value exactly a float32.

    Rounding through float32 makes the FP32 tensor carry the same numbers to every server: kfpkit reads JSON
    numbers as float64, MLServer and KServe decode FP32 data into float32 arrays.
    """
    from kfpkit.components.ingest.synthetic import generate_fraud

    frame = generate_fraud(count, seed=seed)
    return frame[FEATURES].to_numpy(dtype=np.float64).astype(np.float32).astype(np.float64)
