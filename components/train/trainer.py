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
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np


class TrainError(ValueError):
    """Bad input to train: unreadable data, a missing or non-binary label, an invalid parameter."""


AUTO = 0
"""``epochs`` / ``batch_size`` value meaning "choose from the number of training rows"."""

# early stopping criteria: name -> whether higher is better
STOPPING_METRICS = {"log_loss": False, "pr_auc": True, "roc_auc": True}

# The size-aware schedule (see training_schedule and the README's measurements).
MIN_BATCH_SIZE = 32
MAX_BATCH_SIZE = 4096
MIN_STEPS_PER_EPOCH = 16
ROWS_PER_RUN = 560_000
MIN_EPOCHS = 4
MAX_EPOCHS = 200
# The size-aware ensemble (see training_schedule): as many members as one model on ENSEMBLE_ROWS rows costs.
ENSEMBLE_ROWS = 20_000
MAX_ENSEMBLE_MEMBERS = 5


@dataclass(frozen=True)
class Schedule:
    """The batch size, the epoch budget and the ensemble size a PyTorch run uses, and which were chosen automatically.

    Attributes:
        batch_size: Rows per optimizer step.
        epochs: Maximum number of passes over the training split (early stopping may end sooner).
        auto: Names of the parameters chosen from the number of training rows (``"batch_size"``,
            ``"epochs"``, ``"ensemble_members"``); the others are the user's values.
        ensemble_members: Networks trained from different initializations and averaged (1: a single network).
    """

    batch_size: int
    epochs: int
    auto: Tuple[str, ...]
    ensemble_members: int = 1


def training_schedule(
    train_rows: int, batch_size: int = AUTO, epochs: int = AUTO, ensemble_members: int = AUTO
) -> Schedule:
    """Chooses the batch size, the epoch budget and the ensemble size from the number of training rows.

    Set values win, each one separately.

    * ``batch_size``: the largest power of two with at least :data:`MIN_STEPS_PER_EPOCH` (16) optimizer steps
      per epoch, within [:data:`MIN_BATCH_SIZE`, :data:`MAX_BATCH_SIZE`] (32 to 4096);
    * ``epochs``: enough passes to show the optimizer about :data:`ROWS_PER_RUN` (560k) rows, within
      [:data:`MIN_EPOCHS`, :data:`MAX_EPOCHS`] (4 to 200);
    * ``ensemble_members``: ``round(ENSEMBLE_ROWS / train_rows)`` within [1, :data:`MAX_ENSEMBLE_MEMBERS`]:
      small tables average up to 5 networks (their initialization noise is a large part of their error)
      for about the cost of one network on :data:`ENSEMBLE_ROWS` (20k) rows: 5 up to 4,444 training rows,
      a single network above 13,333 (14k training rows: 20k of the generator), as before.

    70k training rows (100k of the generator) give 4096 x 8 and one network, as before; 14k give 512 x 40
    and one network; 3.5k give 128 x 160 and 5 networks; 700k give 4096 x 4. Early stopping usually ends
    small runs well before the budget.

    Args:
        train_rows: Number of training rows (>= 1).
        batch_size: The user's batch size, or :data:`AUTO` (0).
        epochs: The user's epoch budget, or :data:`AUTO` (0).
        ensemble_members: The user's number of averaged networks, or :data:`AUTO` (0).
    """
    rows = max(1, int(train_rows))
    auto: List[str] = []
    if batch_size == AUTO:
        auto.append("batch_size")
        fitting = max(1, rows // MIN_STEPS_PER_EPOCH)
        batch_size = min(MAX_BATCH_SIZE, max(MIN_BATCH_SIZE, 1 << (fitting.bit_length() - 1)))
    if epochs == AUTO:
        auto.append("epochs")
        epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(ROWS_PER_RUN / rows)))
    if ensemble_members == AUTO:
        auto.append("ensemble_members")
        ensemble_members = min(MAX_ENSEMBLE_MEMBERS, max(1, int(ENSEMBLE_ROWS / rows + 0.5)))
    return Schedule(
        batch_size=int(batch_size), epochs=int(epochs), auto=tuple(auto), ensemble_members=int(ensemble_members)
    )


@dataclass
class TrainParams:
    """Hyperparameters of train (all of them are pipeline parameters).

    ``epochs`` and ``batch_size`` default to 0, "auto": :func:`training_schedule` chooses them from the
    number of training rows, so that a small table gets enough optimizer steps and a large one no more
    passes than it needs (100k rows of the generator: 8 epochs of 4096 rows, a few seconds on two CPU
    cores). A value the user sets wins. On a GPU raise ``batch_size`` (e.g. 16384-65536).

    Attributes:
        framework: ``"pytorch"`` (MLP, exported as TorchScript) or ``"sklearn"`` (HistGradientBoosting
            baseline, saved with skops). The sklearn baseline uses only ``seed`` and ``max_vocabulary``.
        epochs: Maximum number of passes over the training split; 0 (default): chosen from the training
            rows (:func:`training_schedule`).
        batch_size: Rows per optimizer step; 0 (default): chosen from the training rows.
        learning_rate: AdamW learning rate (constant).
        weight_decay: AdamW decoupled weight decay.
        embedding_dim: Width of every categorical embedding.
        hidden_units: Width of every hidden layer.
        hidden_layers: Number of hidden ``Linear -> ReLU -> Dropout`` blocks (0: a linear model).
        dropout: Dropout probability after every hidden layer.
        patience: Stop after this many epochs without a better ``early_stopping_metric`` on eval (0: never
            stop early).
        early_stopping_metric: What early stopping and the choice of the exported epoch watch on eval:
            ``"log_loss"`` (default; lower is better) or ``"pr_auc"`` (higher is better). Eval log loss
            uses every row and moves smoothly; PR-AUC rests on the few eval positives and, on small splits,
            its epoch-to-epoch noise ends training early (see the README's measurements).
        seed: Seeds weight initialization, shuffling and dropout (and the sklearn early-stopping split).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; ``None`` picks CUDA when available.
        max_vocabulary: Most frequent values kept per categorical feature; the rest share the unknown
            bucket.
        exclude_columns: Columns that are not features (row ids, timestamps, leakage); names absent from the
            data are ignored. Every other column but the label is a feature, except categorical columns that
            look like identifiers (more distinct values than half the rows), which the preprocessing spec
            leaves out by itself (``preprocessing.json`` lists them under ``ignored_columns``).
        ensemble_members: Networks trained from different initializations (seeds derived from ``seed``),
            each early-stopped on eval, whose logits the exported model averages; 0 (default): chosen from
            the training rows (:func:`training_schedule`: 5 up to 4,444 training rows, 1 above 13,333).
        cpu_threads: torch intra-op threads while training on CPU; ``None`` means 1, which measured
            fastest for this model size (more threads spin on small matrices and oversubscribe CPU-limited
            pods, where torch sees every host core). Not a hyperparameter: excluded from the checkpoint
            fingerprint.
    """

    framework: str = "pytorch"
    epochs: int = AUTO
    batch_size: int = AUTO
    learning_rate: float = 5e-3
    weight_decay: float = 1e-4
    embedding_dim: int = 8
    hidden_units: int = 128
    hidden_layers: int = 2
    dropout: float = 0.1
    patience: int = 2
    early_stopping_metric: str = "log_loss"
    seed: int = 0
    device: Optional[str] = None
    max_vocabulary: int = 1000
    exclude_columns: Optional[List[str]] = None
    cpu_threads: Optional[int] = None
    ensemble_members: int = AUTO

    def _validate_schedule(self) -> None:
        for name in ("epochs", "batch_size", "ensemble_members"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TrainError(f"{name} must be an integer >= 1, or 0 for auto, got {value!r}")
        if self.early_stopping_metric not in STOPPING_METRICS:
            raise TrainError(
                f"early_stopping_metric must be one of {list(STOPPING_METRICS)}, got {self.early_stopping_metric!r}"
            )

    def validate(self, frameworks: Sequence[str]) -> None:
        """Raises TrainError naming the first invalid parameter."""
        if self.framework not in frameworks:
            raise TrainError(f"framework must be one of {list(frameworks)}, got {self.framework!r}")
        for name in ("embedding_dim", "hidden_units", "max_vocabulary"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TrainError(f"{name} must be an integer >= 1, got {value!r}")
        self._validate_schedule()
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
