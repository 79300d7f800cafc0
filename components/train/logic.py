"""Train logic (kfp-free): Parquet splits in, a model version directory out.

``train_model`` reads the train and eval Parquet files written by ingest, fits the shared
:class:`~kfpkit.components.common.preprocessing.PreprocessingSpec` on train, trains either

* ``framework="pytorch"``: an MLP over standardized numerics and categorical embeddings (index 0 of every
  vocabulary is the unknown bucket), ``BCEWithLogitsLoss(pos_weight = negatives / positives of the train
  split)`` so both classes carry the same total weight, AdamW, early stopping on eval PR-AUC, a checkpoint
  after every epoch (see :mod:`kfpkit.components.train.torch_trainer` for the GPU behaviour), exported as
  TorchScript; or
* ``framework="sklearn"``: a HistGradientBoostingClassifier baseline (native categorical splits,
  ``class_weight="balanced"``, early stopping seeded with ``seed``) saved with skops,

picks the decision threshold that maximizes F1 on eval, and writes the model directory described in
:mod:`kfpkit.components.common.model_dir` atomically (built in a temporary folder beside ``output_dir``,
then renamed into place).

torch and sklearn are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from kfpkit.components._version import __version__
from kfpkit.components.common.model_dir import (
    MODEL_CARD_FILE,
    MODEL_FILES,
    PREPROCESSING_FILE,
    SKOPS_FILE,
    TORCHSCRIPT_FILE,
    write_model_card,
)
from kfpkit.components.common.preprocessing import PreprocessingError, PreprocessingSpec

logger = logging.getLogger("kfpkit.train")

FRAMEWORKS = ("pytorch", "sklearn")


class TrainError(ValueError):
    """Bad input to train: unreadable data, a missing or non-binary label, an invalid parameter."""


@dataclass
class TrainParams:
    """Hyperparameters of train (all of them are pipeline parameters).

    The defaults train 100k rows on two CPU cores in a few seconds; on a GPU raise ``batch_size``
    (e.g. 16384-65536) and ``epochs``.

    Attributes:
        framework: ``"pytorch"`` (MLP, exported as TorchScript) or ``"sklearn"`` (HistGradientBoosting
            baseline, saved with skops). The sklearn baseline uses only ``seed`` and ``max_vocabulary``.
        epochs: Maximum number of passes over the training split.
        batch_size: Rows per optimizer step.
        learning_rate: AdamW learning rate (constant).
        weight_decay: AdamW decoupled weight decay.
        embedding_dim: Width of every categorical embedding.
        hidden_units: Width of every hidden layer.
        hidden_layers: Number of hidden ``Linear -> ReLU -> Dropout`` blocks (0: a linear model).
        dropout: Dropout probability after every hidden layer.
        patience: Stop after this many epochs without a better eval PR-AUC (0: never stop early).
        seed: Seeds weight initialization, shuffling and dropout (and the sklearn early-stopping split).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; ``None`` picks CUDA when available.
        max_vocabulary: Most frequent values kept per categorical feature; the rest share the unknown
            bucket.
        exclude_columns: Columns that are not features (row ids, timestamps, leakage); names absent from the
            data are ignored. Every other column but the label is a feature, except categorical columns that
            look like identifiers (more distinct values than half the rows), which the preprocessing spec
            leaves out by itself (``preprocessing.json`` lists them under ``ignored_columns``).
        cpu_threads: torch intra-op threads while training on CPU; ``None`` means 1, which measured
            fastest for this model size (more threads spin on small matrices and oversubscribe CPU-limited
            pods, where torch sees every host core). Not a hyperparameter: excluded from the checkpoint
            fingerprint.
    """

    framework: str = "pytorch"
    epochs: int = 8
    batch_size: int = 4096
    learning_rate: float = 5e-3
    weight_decay: float = 1e-4
    embedding_dim: int = 8
    hidden_units: int = 128
    hidden_layers: int = 2
    dropout: float = 0.1
    patience: int = 2
    seed: int = 0
    device: Optional[str] = None
    max_vocabulary: int = 1000
    exclude_columns: Optional[List[str]] = None
    cpu_threads: Optional[int] = None


@dataclass
class TrainResult:
    """What ``train_model`` produced.

    Attributes:
        output_dir: The model directory written.
        framework: ``"pytorch"`` or ``"sklearn"``.
        metrics: Eval metrics of the exported model (also in the model card).
        best_epoch: Epoch whose weights were exported (sklearn: boosting iterations).
        epochs_run: Epochs trained in total, including those before a resume (sklearn: iterations).
        rows_per_second: pytorch: training rows per second of optimizer steps (all epochs of this
            process); sklearn: training rows / fit seconds.
        decision_threshold: Probability threshold that maximizes F1 on eval.
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
    resumed_from_epoch: int = 0
    history: List[Dict[str, float]] = field(default_factory=list)


def validate_params(params: TrainParams) -> None:
    """Raises TrainError naming the first invalid parameter."""
    if params.framework not in FRAMEWORKS:
        raise TrainError(f"framework must be one of {list(FRAMEWORKS)}, got {params.framework!r}")
    positive_ints = ("epochs", "batch_size", "embedding_dim", "hidden_units", "max_vocabulary")
    for name in positive_ints:
        value = getattr(params, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TrainError(f"{name} must be an integer >= 1, got {value!r}")
    for name in ("hidden_layers", "patience"):
        value = getattr(params, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TrainError(f"{name} must be an integer >= 0, got {value!r}")
    if not (params.learning_rate > 0 and math.isfinite(params.learning_rate)):
        raise TrainError(f"learning_rate must be > 0, got {params.learning_rate!r}")
    if not (params.weight_decay >= 0 and math.isfinite(params.weight_decay)):
        raise TrainError(f"weight_decay must be >= 0, got {params.weight_decay!r}")
    if not 0 <= params.dropout < 1:
        raise TrainError(f"dropout must be in [0, 1), got {params.dropout!r}")
    if params.cpu_threads is not None and (not isinstance(params.cpu_threads, int) or params.cpu_threads < 1):
        raise TrainError(f"cpu_threads must be None or an integer >= 1, got {params.cpu_threads!r}")
    if params.exclude_columns is not None and (
        isinstance(params.exclude_columns, str) or not all(isinstance(c, str) for c in params.exclude_columns)
    ):
        raise TrainError(f"exclude_columns must be a list of column names, got {params.exclude_columns!r}")
    if isinstance(params.seed, bool) or not isinstance(params.seed, int):
        raise TrainError(f"seed must be an integer, got {params.seed!r}")


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
    """Reads one Parquet split and checks its label: present, no missing values, only 0/1.

    Returns:
        The DataFrame and its labels as int64 ``[n]``.

    Raises:
        TrainError: the file cannot be read, has no rows, or the label is missing or not binary.
    """
    from kfpkit.components.common.datasets import read_split_frame

    frame = read_split_frame(
        path, f"{split} data", error=TrainError, required=[("label", label_column)], allow_empty=False
    )
    column = frame[label_column]
    missing = int(column.isna().sum())
    if missing:
        raise TrainError(f"{split} data {path}: label column {label_column!r} has {missing} missing value(s)")
    if column.dtype.kind == "b":
        labels = column.to_numpy(dtype=np.int64)
    elif column.dtype.kind in "iuf":
        values = column.to_numpy(dtype=np.float64)
        unexpected = np.setdiff1d(np.unique(values), [0.0, 1.0])
        if unexpected.size:
            raise TrainError(
                f"{split} data {path}: label column {label_column!r} must be binary 0/1; "
                f"found other values {unexpected[:5].tolist()}"
            )
        labels = values.astype(np.int64)
    else:
        examples = column.drop_duplicates().head(5).tolist()
        raise TrainError(
            f"{split} data {path}: label column {label_column!r} must be binary 0/1 integers; "
            f"it has dtype {column.dtype} (values such as {examples})"
        )
    positives = int(labels.sum())
    if positives in (0, len(labels)):
        only = 1 if positives else 0
        raise TrainError(
            f"{split} data {path}: label column {label_column!r} holds only class {only}; train and eval "
            "both need positive and negative rows"
        )
    return frame, labels


# --------------------------------------------------------------------------- metrics
def score_probabilities(labels: np.ndarray, probabilities: np.ndarray) -> Dict[str, float]:
    """PR-AUC (average precision) and ROC-AUC with sklearn.metrics."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "pr_auc": float(average_precision_score(labels, probabilities)),
        "roc_auc": float(roc_auc_score(labels, probabilities)),
    }


def max_f1_threshold(labels: np.ndarray, probabilities: np.ndarray) -> Dict[str, float]:
    """The probability threshold (predict positive when ``p >= threshold``) that maximizes F1.

    Returns:
        ``threshold``, ``f1``, ``precision`` and ``recall`` at that threshold.
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    best = int(np.argmax(f1))
    return {
        "threshold": float(thresholds[best]),
        "f1": float(f1[best]),
        "precision": float(precision[best]),
        "recall": float(recall[best]),
    }


def final_metrics(labels: np.ndarray, probabilities: np.ndarray) -> Tuple[Dict[str, float], float]:
    from sklearn.metrics import log_loss

    metrics = score_probabilities(labels, probabilities)
    chosen = max_f1_threshold(labels, probabilities)
    metrics["log_loss"] = float(log_loss(labels, np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)))
    metrics["f1"] = chosen["f1"]
    metrics["precision"] = chosen["precision"]
    metrics["recall"] = chosen["recall"]
    return metrics, chosen["threshold"]


def library_versions(framework: str) -> Dict[str, Optional[str]]:
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


# --------------------------------------------------------------------------- output directory
def _staging_dir(output_dir: str) -> str:
    parent = os.path.dirname(os.path.abspath(output_dir)) or "."
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output_dir))}.tmp-", dir=parent)


def _publish(staging: str, output_dir: str) -> None:
    """Moves the finished ``staging`` directory to ``output_dir`` (replacing an existing one).

    A rename is atomic; where the file system cannot rename directories (e.g. some gcsfuse mounts) the
    files are copied with ``model_card.json`` last, so a reader never sees a card without its model.
    """
    if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
        raise TrainError(f"output {output_dir} exists and is not a directory")
    previous = None
    if os.path.isdir(output_dir):
        if os.listdir(output_dir):
            previous = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.old-", dir=os.path.dirname(staging))
            os.rmdir(previous)
            os.replace(output_dir, previous)
        else:
            os.rmdir(output_dir)
    try:
        os.replace(staging, output_dir)
    except OSError as exc:
        logger.warning("cannot rename %s to %s (%s); copying the files instead", staging, output_dir, exc)
        os.makedirs(output_dir, exist_ok=True)
        names = sorted(os.listdir(staging), key=lambda n: n == MODEL_CARD_FILE)
        for name in names:
            shutil.copy2(os.path.join(staging, name), os.path.join(output_dir, name))
        shutil.rmtree(staging, ignore_errors=True)
    if previous:
        shutil.rmtree(previous, ignore_errors=True)


# --------------------------------------------------------------------------- training
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
    """Trains a binary classifier and writes its model directory.

    Args:
        train_path: Parquet file of the training split (from ingest).
        eval_path: Parquet file of the eval split; drives early stopping, the decision threshold and
            the card's metrics.
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
    validate_params(params)
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
    del train_frame, eval_frame
    data = {
        "train_sha256": sha256_path(train_path),
        "eval_sha256": sha256_path(eval_path),
        "train_rows": len(train_labels),
        "eval_rows": len(eval_labels),
        "source_uri": source_uri,
        "train_label_rate": float(train_labels.mean()),
        "eval_label_rate": float(eval_labels.mean()),
    }
    logger.info(
        "train: %d rows (label rate %.4f), eval: %d rows (label rate %.4f); %d numeric, %d categorical features",
        data["train_rows"],
        data["train_label_rate"],
        data["eval_rows"],
        data["eval_label_rate"],
        len(spec.numeric),
        len(spec.categorical),
    )

    staging = _staging_dir(output_dir)
    try:
        parameters: Dict[str, Any] = asdict(params)
        training: Dict[str, Any]
        if params.framework == "pytorch":
            from kfpkit.components.train import torch_trainer

            try:
                device = torch_trainer.resolve_device(params.device)
            except ValueError as exc:
                raise TrainError(str(exc)) from exc
            positives = int(train_labels.sum())
            pos_weight = (len(train_labels) - positives) / positives
            parameters.update(
                device=str(device),
                autocast="bfloat16" if device.type == "cuda" else None,
                pos_weight=pos_weight,
                optimizer="AdamW",
                loss="BCEWithLogitsLoss(pos_weight=negatives/positives of train)",
            )
            fingerprint_source = {k: v for k, v in parameters.items() if k not in ("epochs", "device", "cpu_threads")}
            fingerprint_source.update(
                device_type=device.type,
                train_sha256=data["train_sha256"],
                eval_sha256=data["eval_sha256"],
                label_column=label_column,
            )
            fingerprint = hashlib.sha256(json.dumps(fingerprint_source, sort_keys=True).encode()).hexdigest()
            with tempfile.TemporaryDirectory(prefix="kfpkit-train-ckpt-") as scratch:
                if not checkpoint_dir:
                    logger.info("no checkpoint_dir: checkpoints go to %s and a retry starts over", scratch)
                try:
                    fit = torch_trainer.fit_torch(
                        train_numeric=train_numeric,
                        train_categorical=train_categorical,
                        train_labels=train_labels,
                        eval_numeric=eval_numeric,
                        eval_categorical=eval_categorical,
                        eval_labels=eval_labels,
                        cardinalities=spec.cardinalities,
                        params=params,
                        device=device,
                        pos_weight=pos_weight,
                        checkpoint_dir=checkpoint_dir or scratch,
                        fingerprint=fingerprint,
                        score=score_probabilities,
                    )
                except FloatingPointError as exc:
                    raise TrainError(str(exc)) from exc
            torch_trainer.export_torchscript(fit.model, spec.cardinalities, os.path.join(staging, TORCHSCRIPT_FILE))
            probabilities = fit.eval_probabilities
            best_epoch, epochs_run, rows_per_second = fit.best_epoch, fit.epochs_run, fit.rows_per_second
            resumed_from = fit.resumed_from_epoch
            history = [asdict(r) for r in fit.history]
            training = {
                "device": str(device),
                "resumed_from_epoch": resumed_from,
                "stopped_early": fit.stopped_early,
                "train_seconds": fit.train_seconds,
                "fit_seconds": fit.fit_seconds,
                "history": history,
            }
        else:
            from kfpkit.components.train import sklearn_trainer

            if checkpoint_dir:
                logger.info("framework=sklearn does not checkpoint; ignoring checkpoint_dir %s", checkpoint_dir)
            sk = sklearn_trainer.fit_sklearn(
                train_numeric=train_numeric,
                train_categorical=train_categorical,
                train_labels=train_labels,
                eval_numeric=eval_numeric,
                eval_categorical=eval_categorical,
                categorical_names=spec.categorical_names,
                cardinalities=spec.cardinalities,
                seed=params.seed,
            )
            sklearn_trainer.save_skops(sk.model, os.path.join(staging, SKOPS_FILE))
            parameters.update(
                estimator="HistGradientBoostingClassifier",
                estimator_params=sk.estimator_params,
                native_categorical=sk.native_categorical,
                ordinal_categorical=sk.ordinal_categorical,
            )
            probabilities = sk.eval_probabilities
            best_epoch = epochs_run = sk.iterations
            rows_per_second = sk.rows_per_second
            resumed_from = 0
            history = []
            training = {"device": "cpu", "fit_seconds": sk.fit_seconds, "iterations": sk.iterations}
            logger.info(
                "sklearn baseline: %d boosting iterations in %.2f s (%.0f rows/s)",
                sk.iterations,
                sk.fit_seconds,
                sk.rows_per_second,
            )

        metrics, threshold = final_metrics(eval_labels, probabilities)
        metrics.update(best_epoch=best_epoch, epochs_run=epochs_run, rows_per_second=rows_per_second)
        spec.save(os.path.join(staging, PREPROCESSING_FILE))
        card = {
            "framework": params.framework,
            "model_file": MODEL_FILES[params.framework],
            "label_column": label_column,
            "feature_order": list(spec.feature_order),
            "decision_threshold": threshold,
            "decision_rule": "positive when probability >= decision_threshold (max F1 on eval)",
            "parameters": parameters,
            "data": data,
            "metrics": metrics,
            "training": training,
            "versions": library_versions(params.framework),
            "pipeline_run": pipeline_run,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_model_card(staging, card)
        _publish(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(
        "wrote %s model to %s: eval PR-AUC %.4f, ROC-AUC %.4f, threshold %.4f (F1 %.4f), best epoch %d of %d",
        params.framework,
        output_dir,
        metrics["pr_auc"],
        metrics["roc_auc"],
        threshold,
        metrics["f1"],
        best_epoch,
        epochs_run,
    )
    return TrainResult(
        output_dir=output_dir,
        framework=params.framework,
        metrics=metrics,
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        rows_per_second=rows_per_second,
        decision_threshold=threshold,
        resumed_from_epoch=resumed_from,
        history=history,
    )
