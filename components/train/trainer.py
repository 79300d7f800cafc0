"""The trainer protocol of train: what every framework gets and gives back.

:mod:`kfpkit.components.train.logic` reads the splits, fits the preprocessing and hands a
:class:`TrainingData` to the framework's :class:`Trainer` (:class:`~kfpkit.components.train.torch_trainer.TorchTrainer`
or :class:`~kfpkit.components.train.sklearn_trainer.SklearnTrainer`); the :class:`FittedModel` it returns
carries the uncalibrated eval probabilities (calibration, threshold and metrics are chosen on them by logic,
the same way for every framework) and writes its own model file.

Nothing here imports torch or sklearn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence

import numpy as np


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

    def validate(self, frameworks: Sequence[str]) -> None:
        """Raises TrainError naming the first invalid parameter."""
        if self.framework not in frameworks:
            raise TrainError(f"framework must be one of {list(frameworks)}, got {self.framework!r}")
        for name in ("epochs", "batch_size", "embedding_dim", "hidden_units", "max_vocabulary"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TrainError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("hidden_layers", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TrainError(f"{name} must be an integer >= 0, got {value!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise TrainError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise TrainError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.dropout < 1:
            raise TrainError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.cpu_threads is not None and (not isinstance(self.cpu_threads, int) or self.cpu_threads < 1):
            raise TrainError(f"cpu_threads must be None or an integer >= 1, got {self.cpu_threads!r}")
        if self.exclude_columns is not None and (
            isinstance(self.exclude_columns, str) or not all(isinstance(c, str) for c in self.exclude_columns)
        ):
            raise TrainError(f"exclude_columns must be a list of column names, got {self.exclude_columns!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TrainError(f"seed must be an integer, got {self.seed!r}")


@dataclass
class TrainingData:
    """The transformed train and eval splits, as the preprocessing spec produced them.

    Attributes:
        fingerprint_source: Identifies the data (split sha256s, label column) for resumable checkpoints.
    """

    train_numeric: np.ndarray
    train_categorical: np.ndarray
    train_labels: np.ndarray
    eval_numeric: np.ndarray
    eval_categorical: np.ndarray
    eval_labels: np.ndarray
    cardinalities: List[int]
    categorical_names: List[str]
    fingerprint_source: Dict[str, Any] = field(default_factory=dict)


@dataclass
class FittedModel:
    """What a trainer gives back.

    Attributes:
        eval_probabilities: Uncalibrated positive-class probabilities of the eval rows, computed exactly as
            the saved model computes them when loaded (pytorch: float32 on CPU; sklearn: float64).
        best_epoch: Epoch (pytorch) or boosting iterations (sklearn) of the saved model.
        epochs_run: Epochs (iterations) trained in total, including those before a resume.
        rows_per_second: Training throughput.
        parameters: Framework-specific entries for the card's ``parameters`` (device, estimator, loss, ...).
        training: The card's ``training`` record (device, timings, history, ...).
        save: Writes the model file to the given path.
        resumed_from_epoch: Epoch of the checkpoint training resumed from (0: started fresh).
        history: Per-epoch records (pytorch).
    """

    eval_probabilities: np.ndarray
    best_epoch: int
    epochs_run: int
    rows_per_second: float
    parameters: Dict[str, Any]
    training: Dict[str, Any]
    save: Callable[[str], None]
    resumed_from_epoch: int = 0
    history: List[Dict[str, float]] = field(default_factory=list)


class Trainer(Protocol):
    """A framework of train."""

    framework: str
    model_file: str

    def fit(self, data: TrainingData, params: TrainParams, checkpoint_dir: Optional[str]) -> FittedModel:
        """Trains on ``data.train_*``, uses ``data.eval_*`` for early stopping only.

        Args:
            data: The transformed train and eval splits, with the feature names and cardinalities.
            params: The training parameters (seed, epochs, batch size, device, ...).
            checkpoint_dir: Durable checkpoint folder, or ``None`` (the trainer decides what that means).

        Raises:
            TrainError: the parameters cannot be used here (e.g. no CUDA) or training diverged.
        """
        ...
