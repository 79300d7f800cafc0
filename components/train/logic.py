"""Train logic (kfp-free): the train and eval Parquet splits in, a model version directory out.

``train_model``

1. reads the train and eval splits written by ingest (never the test split: that belongs to evaluate) and
   checks their labels with the one label check of :mod:`kfpkit.core.labels`;
2. fits the shared :class:`~kfpkit.core.preprocessing.PreprocessingSpec` on train;
3. hands the transformed splits to the framework's trainer (:mod:`kfpkit.components.train.trainer`):

   * ``framework="pytorch"``: an MLP over standardized numerics and categorical embeddings (index 0 of every
     vocabulary is the unknown bucket), plain ``BCEWithLogitsLoss``, AdamW, batch size and epochs chosen from
     the training rows unless set, early stopping on eval log loss, a checkpoint after every epoch (see
     :mod:`kfpkit.components.train.torch_trainer` for the GPU behaviour), exported as TorchScript;
   * ``framework="sklearn"``: a HistGradientBoostingClassifier baseline (native categorical splits,
     ``class_weight="balanced"``, early stopping seeded with ``seed``) saved with skops;

4. fits Platt scaling on the eval split, or cross-fitted over train and eval when eval holds fewer than 100
   rows of a class (:mod:`kfpkit.components.train.calibration`), then picks the
   decision threshold that maximizes F1 on the calibrated eval probabilities, and measures the eval metrics
   with :mod:`kfpkit.core.classification_metrics`;
5. assembles the model directory (:func:`assemble_model_dir`) in a staging folder beside ``output_dir``
   and publishes it with :func:`kfpkit.core.publish.publish_directory`, so it is complete or
   absent.

torch and sklearn are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from kfpkit.components.process_exit import skip_final_garbage_collection
from kfpkit.components.train.calibration import MIN_EVAL_CLASS_ROWS
from kfpkit.components.train.trainer import FittedModel, Trainer, TrainError, TrainingData, TrainParams
from kfpkit.core import classification_metrics as m
from kfpkit.core._version import __version__
from kfpkit.core.model_card import DataLineage, ModelCard, SplitLineage, write_model_card
from kfpkit.core.model_dir import PREPROCESSING_FILE, PlattCalibration
from kfpkit.core.monitoring_baseline import (
    MonitoringBaseline,
    build_baseline_from_parquet,
    write_baseline,
)
from kfpkit.core.preprocessing import PreprocessingError, PreprocessingSpec
from kfpkit.core.publish import publish_directory, staging_directory

logger = logging.getLogger("kfpkit.train")

FRAMEWORKS = ("pytorch", "sklearn")
SPLITS = ("train", "eval")
DECISION_RULE = "positive when the calibrated probability >= decision_threshold (max F1 on eval, after calibration)"


@dataclass
class TrainResult:
    """What ``train_model`` produced.

    Attributes:
        output_dir: The model directory written.
        framework: ``"pytorch"`` or ``"sklearn"``.
        metrics: Eval metrics of the exported, calibrated model (the card's ``metrics["eval"]``).
        best_epoch: Epoch whose weights were exported (sklearn: boosting iterations).
        epochs_run: Epochs trained in total, including those before a resume (sklearn: iterations).
        rows_per_second: pytorch: training rows per second of optimizer steps (all epochs of this
            process); sklearn: training rows / fit seconds.
        decision_threshold: Calibrated-probability threshold that maximizes F1 on eval.
        calibration: The Platt scaling fitted on eval (stored as ``calibration.json``).
        resumed_from_epoch: Epoch of the checkpoint training resumed from (0: started fresh).
        history: Per-epoch records (epoch, train_loss, pr_auc, roc_auc, rows_per_second, seconds).
    """

    output_dir: str
    framework: str
    metrics: Dict[str, float]
    best_epoch: int
    epochs_run: int
    rows_per_second: float
    decision_threshold: float
    calibration: PlattCalibration
    resumed_from_epoch: int = 0
    history: List[Dict[str, float]] = field(default_factory=list)


# --------------------------------------------------------------------------- data
def sha256_path(path: str) -> str:
    """sha256 of a file's bytes; for a directory of Parquet parts, of its sorted ``relpath  sha256`` lines."""
    if os.path.isdir(path):
        lines = []
        for root, _dirs, files in os.walk(path):
            for name in files:
                full = os.path.join(root, name)
                lines.append(f"{os.path.relpath(full, path)}  {sha256_path(full)}\n")
        return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_split(path: str, split: str, label_column: str) -> Tuple[Any, np.ndarray]:
    """Reads one Parquet split and checks its label (binary, no missing values, both classes present).

    Returns:
        The DataFrame and its labels as int64 ``[n]``.

    Raises:
        TrainError: the file cannot be read, has no rows, or the label is missing, not binary or one class.
    """
    from kfpkit.core.datasets import read_split_frame
    from kfpkit.core.labels import binary_labels, require_both_classes

    what = f"{split} data"
    frame = read_split_frame(path, what, error=TrainError, required=[("label", label_column)], allow_empty=False)
    where = f"{what} {path}"
    labels = binary_labels(frame[label_column], label_column, where, error=TrainError)
    require_both_classes(labels, label_column, where, error=TrainError)
    return frame, labels


def library_versions(framework: str) -> Dict[str, Optional[str]]:
    """The versions the model card records: python, numpy, pandas, sklearn and kfpkit, plus the framework's.

    ``pytorch`` adds torch and its CUDA version (``None`` on a CPU build); ``sklearn`` adds skops.
    """
    import platform

    import pandas as pd
    import sklearn

    versions: Dict[str, Optional[str]] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "sklearn": sklearn.__version__,
        "kfpkit": __version__,
    }
    if framework == "pytorch":
        import torch

        versions["torch"] = torch.__version__
        versions["cuda"] = torch.version.cuda
    else:
        import skops

        versions["skops"] = skops.__version__
    return versions


def trainer_for(framework: str) -> Trainer:
    """The trainer of ``framework`` (its module, and torch for pytorch, imported now)."""
    if framework == "pytorch":
        from kfpkit.components.train.torch_trainer import TorchTrainer

        return TorchTrainer()
    from kfpkit.components.train.sklearn_trainer import SklearnTrainer

    return SklearnTrainer()


def _prepare(
    train_path: str, eval_path: str, label_column: str, params: TrainParams
) -> Tuple[PreprocessingSpec, TrainingData, Dict[str, SplitLineage]]:
    train_frame, train_labels = read_split(train_path, "train", label_column)
    eval_frame, eval_labels = read_split(eval_path, "eval", label_column)
    excluded = set(params.exclude_columns or ())
    absent = sorted(excluded - set(train_frame.columns))
    if absent:
        logger.info("exclude_columns not in the train data (ignored): %s", absent)
    if label_column in excluded:
        raise TrainError(f"exclude_columns must not name the label column {label_column!r}")
    kept = [c for c in train_frame.columns if c not in excluded]
    if kept == [label_column]:
        raise TrainError(f"train data {train_path}: no feature columns besides the label and exclude_columns")
    try:
        # no feature_columns: the spec also leaves out identifier-like categoricals (listed in ignored_columns)
        spec = PreprocessingSpec.fit(train_frame[kept], label_column, max_vocabulary=params.max_vocabulary)
    except PreprocessingError as exc:
        raise TrainError(f"train data {train_path}: {exc}") from exc
    if spec.ignored_columns:
        logger.info("identifier-like columns left out of the features: %s", spec.ignored_columns)
    train_numeric, train_categorical = spec.transform(train_frame)
    try:
        eval_numeric, eval_categorical = spec.transform(eval_frame)
    except PreprocessingError as exc:
        raise TrainError(f"eval data {eval_path}: {exc}") from exc
    lineage = {
        split: SplitLineage(sha256=sha256_path(path), rows=len(labels), label_rate=float(labels.mean()))
        for split, path, labels in (("train", train_path, train_labels), ("eval", eval_path, eval_labels))
    }
    logger.info(
        "train: %d rows (label rate %.4f), eval: %d rows (label rate %.4f); %d numeric, %d categorical features",
        lineage["train"].rows,
        lineage["train"].label_rate,
        lineage["eval"].rows,
        lineage["eval"].label_rate,
        len(spec.numeric),
        len(spec.categorical),
    )
    data = TrainingData(
        train_numeric=train_numeric,
        train_categorical=train_categorical,
        train_labels=train_labels,
        eval_numeric=eval_numeric,
        eval_categorical=eval_categorical,
        eval_labels=eval_labels,
        cardinalities=list(spec.cardinalities),
        categorical_names=list(spec.categorical_names),
        fingerprint_source={
            "train_sha256": lineage["train"].sha256,
            "eval_sha256": lineage["eval"].sha256,
            "label_column": label_column,
        },
    )
    return spec, data, lineage


# --------------------------------------------------------------------------- model directory
def assemble_model_dir(
    directory: str,
    *,
    fitted: FittedModel,
    model_file: str,
    spec: PreprocessingSpec,
    calibration: PlattCalibration,
    card: ModelCard,
    baseline: Optional[MonitoringBaseline] = None,
) -> None:
    """Writes every file of a model directory into ``directory`` (an empty staging folder).

    The one place that knows the directory's contents: the model file, ``preprocessing.json``,
    ``calibration.json`` and ``model_card.json`` (see :mod:`kfpkit.core.model_dir`), and the
    monitoring baseline profile ``monitoring_baseline.json`` (written last: it records the other files' sha256).
    """
    fitted.save(os.path.join(directory, model_file))
    spec.save(os.path.join(directory, PREPROCESSING_FILE))
    calibration.save(directory)
    write_model_card(directory, card)
    if baseline is not None:
        write_baseline(directory, baseline)


# --------------------------------------------------------------------------- training
@dataclass
class _Calibrated:
    """The Platt calibration and what is chosen and measured on the calibrated eval probabilities.

    ``rows`` and ``positives`` count the rows the calibration was fitted on.
    """

    calibration: PlattCalibration
    probabilities: np.ndarray
    threshold: float
    metrics: Dict[str, float]
    rows: int = 0
    positives: int = 0


def cross_fitted_probabilities(
    trainer: Trainer, data: TrainingData, fitted: FittedModel, params: TrainParams
) -> Tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities of every train and eval row, for the cross-fitted calibration.

    The rows of both splits are dealt into :data:`~kfpkit.components.train.calibration.CROSS_FIT_FOLDS`
    stratified folds (seeded with ``params.seed``); each fold is predicted by a model of the same framework
    trained on the other folds. PyTorch fold models use the final run's batch size and ensemble size and
    train for its best epoch count (an ensemble's: the largest of its members') without early stopping
    (each keeps its best of those epochs on its held-out fold, the trainer's one rule; the folds have no
    other eval split).

    Returns:
        The labels and the out-of-fold probabilities, train rows first, then eval rows.
    """
    from kfpkit.components.train.calibration import CROSS_FIT_FOLDS, stratified_folds

    numeric = np.concatenate([data.train_numeric, data.eval_numeric])
    categorical = np.concatenate([data.train_categorical, data.eval_categorical])
    labels = np.concatenate([data.train_labels, data.eval_labels])
    fold_params = params
    if params.framework == "pytorch":
        fold_params = replace(
            params,
            epochs=max(1, fitted.best_epoch),
            batch_size=int(fitted.parameters["batch_size"]),
            ensemble_members=int(fitted.parameters.get("ensemble_members", 1)),
            patience=0,
        )
    folds = stratified_folds(labels, CROSS_FIT_FOLDS, params.seed)
    out_of_fold = np.empty(labels.size, dtype=np.float64)
    for fold in range(CROSS_FIT_FOLDS):
        held, kept = folds == fold, folds != fold
        fold_data = replace(
            data,
            train_numeric=numeric[kept],
            train_categorical=categorical[kept],
            train_labels=labels[kept],
            eval_numeric=numeric[held],
            eval_categorical=categorical[held],
            eval_labels=labels[held],
            fingerprint_source={**data.fingerprint_source, "cross_fit_fold": fold},
        )
        out_of_fold[held] = trainer.fit(fold_data, fold_params, None).eval_probabilities
    return labels, out_of_fold


def _calibrate(trainer: Trainer, data: TrainingData, fitted: FittedModel, params: TrainParams) -> _Calibrated:
    """Fits Platt scaling, picks the max-F1 threshold on the calibrated eval probabilities, measures eval.

    The scaling is fitted on eval, or cross-fitted over train and eval when eval is small (the rule of
    :mod:`~kfpkit.components.train.calibration`).
    """
    from kfpkit.components.train.calibration import FITTED_ON_EVAL, calibration_rows, fit_platt

    fitted_on = calibration_rows(data.eval_labels)
    labels = data.eval_labels
    if fitted_on == FITTED_ON_EVAL:
        calibration = fit_platt(labels, fitted.eval_probabilities)
    else:
        logger.info(
            "eval holds %d positive(s) of %d rows, fewer than %d of a class: cross-fitting the calibration",
            int(np.sum(data.eval_labels)),
            len(data.eval_labels),
            MIN_EVAL_CLASS_ROWS,
        )
        labels, out_of_fold = cross_fitted_probabilities(trainer, data, fitted, params)
        calibration = fit_platt(labels, out_of_fold, fitted_on=fitted_on)
    probabilities = calibration.apply(fitted.eval_probabilities)
    threshold = m.max_f1_threshold(data.eval_labels, probabilities)
    metrics = m.split_metrics(data.eval_labels, probabilities, threshold)
    metrics.update(best_epoch=fitted.best_epoch, epochs_run=fitted.epochs_run, rows_per_second=fitted.rows_per_second)
    return _Calibrated(calibration, probabilities, threshold, metrics, rows=len(labels), positives=int(np.sum(labels)))


def _model_card(
    *,
    params: TrainParams,
    model_file: str,
    label_column: str,
    spec: PreprocessingSpec,
    fitted: FittedModel,
    calibrated: _Calibrated,
    lineage: Dict[str, SplitLineage],
    pipeline_run: Optional[str],
    source_uri: Optional[str],
) -> ModelCard:
    return ModelCard(
        framework=params.framework,
        model_file=model_file,
        label_column=label_column,
        feature_order=list(spec.feature_order),
        decision_threshold=calibrated.threshold,
        decision_rule=DECISION_RULE,
        calibration=calibrated.calibration.method,
        data=DataLineage(source_uri=source_uri, splits=lineage),
        metrics={"eval": calibrated.metrics},
        parameters={**asdict(params), **fitted.parameters},
        training={
            **fitted.training,
            "calibration": {
                "method": calibrated.calibration.method,
                "fitted_on": calibrated.calibration.fitted_on,
                "rows": calibrated.rows,
                "positives": calibrated.positives,
            },
        },
        versions=library_versions(params.framework),
        pipeline_run=pipeline_run,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _publish_model_dir(output_dir: str, **contents: Any) -> None:
    """Assembles the model directory in a staging folder beside ``output_dir`` and renames it into place.

    ``contents`` are the keywords of :func:`assemble_model_dir`. The staging folder is removed when anything
    fails, so ``output_dir`` is complete or untouched.
    """
    staging = staging_directory(output_dir)
    try:
        assemble_model_dir(staging, **contents)
        publish_directory(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _log_written(params: TrainParams, output_dir: str, fitted: FittedModel, calibrated: _Calibrated) -> None:
    metrics = calibrated.metrics
    logger.info(
        "wrote %s model to %s: eval PR-AUC %.4f, ROC-AUC %.4f, Brier %.4f, ECE %.4f (Platt slope %.3f, "
        "intercept %.3f), threshold %.4f (F1 %.4f), best epoch %d of %d",
        params.framework,
        output_dir,
        metrics["pr_auc"],
        metrics["roc_auc"],
        metrics["brier_score"],
        metrics["ece"],
        calibrated.calibration.slope,
        calibrated.calibration.intercept,
        calibrated.threshold,
        metrics["f1"],
        fitted.best_epoch,
        fitted.epochs_run,
    )


def train_model(
    train_path: str,
    eval_path: str,
    label_column: str,
    output_dir: str,
    params: TrainParams,
    checkpoint_dir: Optional[str] = None,
    pipeline_run: Optional[str] = None,
    source_uri: Optional[str] = None,
) -> TrainResult:
    """Trains a binary classifier, calibrates it on eval and writes its model directory.

    Args:
        train_path: Parquet file of the training split (from ingest).
        eval_path: Parquet file of the eval split; drives early stopping, the calibration, the decision
            threshold and the card's metrics (under ``"eval"``).
        label_column: Binary 0/1 label column in both splits.
        output_dir: Model directory to write (replaced atomically when it exists).
        params: Hyperparameters.
        checkpoint_dir: Durable folder for the per-epoch checkpoint (pytorch only). Training resumes from
            a checkpoint there written for the same data and parameters (``epochs`` may differ). Without
            it (``None`` or ``""``) checkpoints go to a temporary folder and a retry starts over.
        pipeline_run: Pipeline run name/id recorded in the model card.
        source_uri: Where ingest read the data, recorded in the model card.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainError: invalid parameters, unreadable data, a missing or non-binary label, features missing
            from eval, or training that diverged. Nothing is left at ``output_dir`` then.
    """
    skip_final_garbage_collection()  # this task's process exits without collecting torch's and sklearn's objects
    params.validate(FRAMEWORKS)
    spec, data, lineage = _prepare(train_path, eval_path, label_column, params)
    trainer = trainer_for(params.framework)
    fitted = trainer.fit(data, params, checkpoint_dir)
    calibrated = _calibrate(trainer, data, fitted, params)
    card = _model_card(
        params=params,
        model_file=trainer.model_file,
        label_column=label_column,
        spec=spec,
        fitted=fitted,
        calibrated=calibrated,
        lineage=lineage,
        pipeline_run=pipeline_run,
        source_uri=source_uri,
    )
    if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
        raise TrainError(f"output {output_dir} exists and is not a directory")
    # the monitor's reference: raw training features and the calibrated eval scores (what serving returns)
    baseline = build_baseline_from_parquet(train_path, spec, calibrated.probabilities)
    _publish_model_dir(
        output_dir,
        fitted=fitted,
        model_file=trainer.model_file,
        spec=spec,
        calibration=calibrated.calibration,
        card=card,
        baseline=baseline,
    )
    _log_written(params, output_dir, fitted, calibrated)
    return TrainResult(
        output_dir=output_dir,
        framework=params.framework,
        metrics=calibrated.metrics,
        best_epoch=fitted.best_epoch,
        epochs_run=fitted.epochs_run,
        rows_per_second=fitted.rows_per_second,
        decision_threshold=calibrated.threshold,
        calibration=calibrated.calibration,
        resumed_from_epoch=fitted.resumed_from_epoch,
        history=fitted.history,
    )
