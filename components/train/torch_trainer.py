"""PyTorch side of train: the tabular network, the device-resident training loop, checkpoints, export.

:class:`TorchTrainer` is the :class:`~kfpkit.components.train.trainer.Trainer` of ``framework="pytorch"``.
Imported lazily by :mod:`kfpkit.components.train.logic` (this module imports torch at the top).

The loss is plain ``BCEWithLogitsLoss`` (no ``pos_weight``): on the 100k-row synthetic sample, weighting
positives by negatives/positives left PR-AUC 0.013 lower and the probabilities far from calibrated
(Brier 0.135 against 0.017); the eval-fitted Platt calibration of train then only corrects what is left.

GPU behaviour (``device="cuda"``):

* the transformed train and eval arrays are copied to the device once; every epoch shuffles with
  ``torch.randperm`` on the device and gathers each batch by indexing the device tensors, so there is no
  DataLoader, no per-batch host copy and no per-batch ``.item()`` (the loss is summed on the device and
  read once per epoch);
* forward passes run under ``torch.autocast(dtype=torch.bfloat16)``; the weights, the optimizer state and
  the loss stay float32; AdamW uses its fused CUDA kernel;
* eval predictions are computed once per epoch in large chunks and copied to the host once for the
  sklearn metrics; the final metrics and the exported model are float32 (no autocast).

On CPU everything is float32 and, for a given seed, bit-for-bit reproducible (same process, same
thread count). On CUDA the embedding backward uses atomic adds, so runs agree only to rounding.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from kfpkit.components.train.trainer import (
    STOPPING_METRICS,
    FittedModel,
    TrainError,
    TrainingData,
    TrainParams,
    training_schedule,
)
from kfpkit.core.classification_metrics import log_loss, ranking_metrics
from kfpkit.core.model_dir import TORCHSCRIPT_FILE
from kfpkit.core.publish import atomic_path

logger = logging.getLogger("kfpkit.train")

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_FORMAT = 2  # 2: early stopping on a named metric (best_value), log_loss in the history
EVAL_CHUNK_ROWS = 65536
MEMBER_SEED_STRIDE = 1_000_003  # member k of seed s trains with seed s + k * stride (a prime)
MEMBER_FOLDER = "member-{}"  # checkpoint folder of ensemble member k >= 1 (member 0 uses checkpoint_dir itself)


class TabularNet(nn.Module):
    """MLP over standardized numerics and one embedding per categorical feature; returns logits ``[n]``.

    All categorical features share one embedding table; feature ``j`` owns rows
    ``offsets[j] .. offsets[j] + cardinalities[j] - 1`` of it (row ``offsets[j]`` is its unknown bucket), so
    the lookup is a single gather.
    """

    def __init__(
        self,
        *,
        n_numeric: int,
        cardinalities: Sequence[int],
        embedding_dim: int,
        hidden_units: int,
        hidden_layers: int,
        dropout: float,
    ) -> None:
        super().__init__()
        cards = [int(c) for c in cardinalities]
        self.n_numeric = int(n_numeric)
        self.n_categorical = len(cards)
        self.embedding_dim = int(embedding_dim)
        offsets = [0]
        for card in cards[:-1]:
            offsets.append(offsets[-1] + card)
        # a buffer, declared for the type checker (a class-level annotation would be read by TorchScript)
        self.offsets: torch.Tensor
        self.register_buffer("offsets", torch.tensor(offsets[: len(cards)], dtype=torch.int64), persistent=True)
        self.embedding = nn.Embedding(max(1, sum(cards)), self.embedding_dim)
        nn.init.normal_(self.embedding.weight, std=0.1)
        width = self.n_numeric + self.n_categorical * self.embedding_dim
        layers: List[nn.Module] = []
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_units), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_units
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """Logits ``[n]`` of standardized numerics and in-range category indices (no checks: see ProbabilityModel)."""
        embedded = self.embedding(categorical + self.offsets)
        flat = embedded.reshape(embedded.shape[0], self.n_categorical * self.embedding_dim)
        features = torch.cat([numeric.to(flat.dtype), flat], dim=1)
        return self.mlp(features).squeeze(1)


class TabularEnsemble(nn.Module):
    """Several :class:`TabularNet` of one architecture, trained from different seeds; returns their mean logit ``[n]``.

    Averaging the logits of networks that differ only in their initialization and shuffling removes much of
    the seed-to-seed variance of a network trained on a small table (see ``training_schedule``).
    """

    def __init__(self, members: Sequence[TabularNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.n_numeric = members[0].n_numeric
        self.n_categorical = members[0].n_categorical

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """Mean of the members' logits ``[n]`` (same inputs as :meth:`TabularNet.forward`)."""
        logits: List[torch.Tensor] = []
        for member in self.members:
            logits.append(member(numeric, categorical))
        return torch.stack(logits).mean(dim=0)


def member_seed(seed: int, member: int) -> int:
    """The seed of ensemble member ``member``: ``seed`` itself for member 0, so one member is the single network."""
    return int(seed) + member * MEMBER_SEED_STRIDE


class ProbabilityModel(nn.Module):
    """The exported module: the model-directory TorchScript contract around a :class:`TabularNet` or ensemble.

    It checks shapes, maps out-of-range category indices to the unknown bucket (0) and returns float32
    probabilities ``[n]``.
    """

    def __init__(self, net: nn.Module, cardinalities: Sequence[int]) -> None:
        super().__init__()
        self.net = net
        self.n_numeric = net.n_numeric
        self.n_categorical = net.n_categorical
        self.cardinalities: torch.Tensor  # a buffer, declared for the type checker (see TabularNet)
        self.register_buffer("cardinalities", torch.tensor([int(c) for c in cardinalities], dtype=torch.int64))

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """Float32 probabilities ``[n]``; raises RuntimeError when a shape or the row counts do not fit."""
        if numeric.dim() != 2 or numeric.size(1) != self.n_numeric:
            raise RuntimeError(f"numeric must be float32[n, {self.n_numeric}], got shape {list(numeric.shape)}")
        if categorical.dim() != 2 or categorical.size(1) != self.n_categorical:
            raise RuntimeError(
                f"categorical must be int64[n, {self.n_categorical}], got shape {list(categorical.shape)}"
            )
        if numeric.size(0) != categorical.size(0):
            raise RuntimeError(f"numeric has {numeric.size(0)} rows but categorical has {categorical.size(0)}")
        index = categorical.to(torch.int64)
        known = (index >= 0) & (index < self.cardinalities)
        index = torch.where(known, index, torch.zeros_like(index))
        return torch.sigmoid(self.net(numeric.to(torch.float32), index)).to(torch.float32)


@dataclass
class EpochRecord:
    """One epoch of the training history: mean train loss, eval log loss, PR-AUC and ROC-AUC, throughput, duration."""

    epoch: int
    train_loss: float
    log_loss: float
    pr_auc: float
    roc_auc: float
    rows_per_second: float
    seconds: float


@dataclass
class TorchFitResult:
    """What :func:`fit_torch` gives back.

    Attributes:
        model: The best weights, float32, on CPU, in eval mode.
        best_epoch: Epoch of the best eval ``early_stopping_metric``.
        epochs_run: Epochs trained in total, including those before a resume.
        resumed_from_epoch: Epoch of the checkpoint training resumed from (0: started fresh).
        stopped_early: Whether ``patience`` ended training before ``epochs``.
        rows_per_second: Training throughput (see ``TrainingState.rows_per_second``).
        train_seconds: Time of the optimizer steps only, in this process.
        fit_seconds: The whole fit in this process: steps, per-epoch eval, checkpoints.
        eval_probabilities: Float32 eval predictions of the best model (no autocast).
        history: One record per epoch, resumed ones included.
    """

    model: TabularNet
    best_epoch: int
    epochs_run: int
    resumed_from_epoch: int
    stopped_early: bool
    rows_per_second: float
    train_seconds: float
    fit_seconds: float
    eval_probabilities: np.ndarray
    history: List[EpochRecord] = field(default_factory=list)


def resolve_device(requested: Optional[str]) -> torch.device:
    """``None`` means CUDA when available, else CPU. Raises ValueError for an unusable device."""
    if requested is None or requested == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise ValueError(f"device {requested!r} is not a torch device (use 'cpu', 'cuda' or 'cuda:N')") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} requested but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {requested!r} is not supported (use 'cpu', 'cuda' or 'cuda:N')")
    return device


def predict_logits(
    model: nn.Module, numeric: torch.Tensor, categorical: torch.Tensor, autocast: bool, chunk: int = EVAL_CHUNK_ROWS
) -> torch.Tensor:
    """Logits (float32, on the tensors' device) in large chunks, without gradients."""
    was_training = model.training
    model.eval()
    outputs = []
    mixed = torch.autocast(device_type=numeric.device.type, dtype=torch.bfloat16, enabled=autocast)
    with torch.inference_mode(), mixed:
        for start in range(0, numeric.shape[0], chunk):
            outputs.append(model(numeric[start : start + chunk], categorical[start : start + chunk]).float())
    model.train(was_training)
    if not outputs:
        return torch.empty(0, device=numeric.device)
    return torch.cat(outputs)


def _load_checkpoint(path: str, device: torch.device, fingerprint: str) -> Optional[Dict[str, Any]]:
    if not os.path.isfile(path):
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        logger.warning("ignoring unreadable checkpoint %s (%s); training from scratch", path, exc)
        return None
    if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
        logger.warning(
            "checkpoint %s belongs to other data, parameters or device; training from scratch and overwriting it",
            path,
        )
        return None
    return state


@contextlib.contextmanager
def _cpu_threads(device: torch.device, threads: int) -> Iterator[None]:
    """Limits torch's intra-op threads while training on the CPU, and restores the previous setting afterwards.

    On small matrices spinning threads cost more than they bring.
    """
    previous = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class DeviceSplits:
    """The transformed train and eval splits, copied to the training device once for the whole run.

    Attributes:
        train_numeric: float32 ``[n, n_numeric]`` on the device.
        train_categorical: int64 ``[n, n_categorical]`` on the device.
        train_labels: float32 ``[n]`` on the device.
        eval_numeric: float32 ``[m, n_numeric]`` on the device.
        eval_categorical: int64 ``[m, n_categorical]`` on the device.
        eval_labels: The eval labels on the host (for the sklearn metrics).
    """

    train_numeric: torch.Tensor
    train_categorical: torch.Tensor
    train_labels: torch.Tensor
    eval_numeric: torch.Tensor
    eval_categorical: torch.Tensor
    eval_labels: np.ndarray

    @classmethod
    def copy_to(
        cls,
        device: torch.device,
        *,
        train_numeric: np.ndarray,
        train_categorical: np.ndarray,
        train_labels: np.ndarray,
        eval_numeric: np.ndarray,
        eval_categorical: np.ndarray,
        eval_labels: np.ndarray,
    ) -> DeviceSplits:
        """One host-to-device copy per array (numerics and labels as float32, categoricals as int64)."""

        def on_device(array: np.ndarray, dtype: Any) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array, dtype=dtype)).to(device)

        return cls(
            train_numeric=on_device(train_numeric, np.float32),
            train_categorical=on_device(train_categorical, np.int64),
            train_labels=on_device(train_labels, np.float32),
            eval_numeric=on_device(eval_numeric, np.float32),
            eval_categorical=on_device(eval_categorical, np.int64),
            eval_labels=np.asarray(eval_labels),
        )

    @property
    def train_rows(self) -> int:
        """Number of training rows."""
        return int(self.train_numeric.shape[0])


def _clone_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class TrainingState:
    """What one :func:`fit_torch` run carries from epoch to epoch, and what its checkpoint holds.

    The model and its AdamW optimizer (bf16 autocast on CUDA, float32 on CPU), the shuffling generator, the
    best weights so far with their epoch and eval value of ``params.early_stopping_metric``, the
    early-stopping patience counter, the history, and this process's counters of optimizer-step time and rows.

    Attributes:
        epoch: Last epoch finished (restored from a checkpoint, then counted up).
        start_epoch: Epoch of the checkpoint this process resumed from (0: started fresh).
        stopped: Whether early stopping fired (in this process or before the checkpoint it resumed from).
    """

    def __init__(
        self, *, n_numeric: int, cardinalities: Sequence[int], params: TrainParams, device: torch.device
    ) -> None:
        """Seeds torch with ``params.seed``, then builds the network, the optimizer and the shuffle generator.

        The order matters: the weight initialization draws from the seeded global generator.
        """
        self.device = device
        self.autocast = device.type == "cuda"
        torch.manual_seed(params.seed)
        self.model = TabularNet(
            n_numeric=n_numeric,
            cardinalities=cardinalities,
            embedding_dim=params.embedding_dim,
            hidden_units=params.hidden_units,
            hidden_layers=params.hidden_layers,
            dropout=params.dropout,
        ).to(device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=params.learning_rate,
            weight_decay=params.weight_decay,
            fused=True if device.type == "cuda" else None,  # None: AdamW's default (no fused kernel on CPU)
        )
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.shuffle = torch.Generator(device=device)
        self.shuffle.manual_seed(params.seed)
        self.epoch = 0
        self.start_epoch = 0
        self.metric = params.early_stopping_metric
        self.higher_is_better = STOPPING_METRICS[self.metric]
        self.best_value = -math.inf if self.higher_is_better else math.inf
        self.best_epoch = 0
        self.best_state: Dict[str, torch.Tensor] = _clone_state(self.model)
        self.stale_epochs = 0
        self.stopped = False
        self.history: List[EpochRecord] = []
        self.train_seconds = 0.0
        self.rows_trained = 0

    def resume(self, path: str, fingerprint: str) -> None:
        """Restores everything from the checkpoint at ``path`` when it exists and matches ``fingerprint``.

        The RNG states come back too, so the run continues exactly where the checkpointed one was.
        """
        state = _load_checkpoint(path, self.device, fingerprint)
        if state is None:
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.start_epoch = self.epoch = int(state["epoch"])
        self.best_value = float(state["best_value"])
        self.best_epoch = int(state["best_epoch"])
        self.best_state = state["best_state"]
        self.stale_epochs = int(state["stale_epochs"])
        self.stopped = bool(state["stopped"])
        self.history = [EpochRecord(**record) for record in state["history"]]
        torch.set_rng_state(state["rng_cpu"].cpu())
        self.shuffle.set_state(state["rng_shuffle"].cpu())
        if self.device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"].cpu(), self.device)
        logger.info(
            "resuming from checkpoint %s after epoch %d (best epoch %d, eval %s %.4f)%s",
            path,
            self.start_epoch,
            self.best_epoch,
            self.metric,
            self.best_value,
            "; it had already stopped early" if self.stopped else "",
        )

    def record(self, record: EpochRecord, patience: int) -> None:
        """Appends an epoch to the history, keeps the best weights and decides early stopping."""
        self.history.append(record)
        value = float(getattr(record, self.metric))
        if value > self.best_value if self.higher_is_better else value < self.best_value:
            self.best_value, self.best_epoch, self.stale_epochs = value, record.epoch, 0
            self.best_state = _clone_state(self.model)
        else:
            self.stale_epochs += 1
        self.stopped = patience > 0 and self.stale_epochs >= patience

    def save_checkpoint(self, path: str, fingerprint: str) -> None:
        """Writes the checkpoint of the last finished epoch atomically (a retried task never reads a torn file)."""
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": fingerprint,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "best_state": self.best_state,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "stale_epochs": self.stale_epochs,
            "stopped": self.stopped,
            "history": [vars(r) for r in self.history],
            "rng_cpu": torch.get_rng_state(),
            "rng_shuffle": self.shuffle.get_state(),
        }
        if self.device.type == "cuda":
            checkpoint["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        with atomic_path(path) as partial:
            torch.save(checkpoint, partial)

    def rows_per_second(self) -> float:
        """Training rows per second of optimizer steps in this process.

        After a resume that trained nothing it is the epochs' median; without any epoch, 0.
        """
        if self.train_seconds > 0:
            return self.rows_trained / self.train_seconds
        if self.history:
            return float(np.median([r.rows_per_second for r in self.history]))
        return 0.0


def _train_one_epoch(state: TrainingState, data: DeviceSplits, batch_size: int) -> float:
    """One shuffled pass of optimizer steps; returns the mean train loss (the epoch's one host sync)."""
    device = state.device
    order = torch.randperm(data.train_rows, device=device, generator=state.shuffle)
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    for begin in range(0, data.train_rows, batch_size):
        batch = order[begin : begin + batch_size]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=state.autocast):
            logits = state.model(data.train_numeric[batch], data.train_categorical[batch])
        loss = state.loss_fn(logits.float(), data.train_labels[batch])
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        loss_sum += loss.detach() * batch.shape[0]
    return float(loss_sum.item()) / max(1, data.train_rows)


def _eval_probabilities(state: TrainingState, data: DeviceSplits, autocast: bool) -> np.ndarray:
    logits = predict_logits(state.model, data.eval_numeric, data.eval_categorical, autocast)
    return torch.sigmoid(logits).cpu().numpy()


def _evaluate_epoch(state: TrainingState, data: DeviceSplits) -> Dict[str, float]:
    """Eval log loss and ranking metrics of the current weights.

    Raises:
        FloatingPointError: the eval predictions are not finite.
    """
    probabilities = _eval_probabilities(state, data, state.autocast)
    if not np.isfinite(probabilities).all():
        raise FloatingPointError(f"eval predictions became non-finite at epoch {state.epoch}; lower learning_rate")
    return {"log_loss": log_loss(data.eval_labels, probabilities), **ranking_metrics(data.eval_labels, probabilities)}


def _log_epoch(record: EpochRecord, epochs: int, best: bool) -> None:
    logger.info(
        "epoch %d/%d train_loss=%.5f eval_log_loss=%.5f eval_pr_auc=%.4f eval_roc_auc=%.4f rows/s=%.0f seconds=%.2f%s",
        record.epoch,
        epochs,
        record.train_loss,
        record.log_loss,
        record.pr_auc,
        record.roc_auc,
        record.rows_per_second,
        record.seconds,
        " (best)" if best else "",
    )


def _run_epoch(
    state: TrainingState, data: DeviceSplits, params: TrainParams, checkpoint_path: str, fingerprint: str
) -> None:
    """Trains, evaluates, records and checkpoints the next epoch; logs early stopping when it fires.

    Raises:
        FloatingPointError: the train loss or the eval predictions are not finite.
    """
    state.epoch += 1
    started = time.perf_counter()
    train_loss = _train_one_epoch(state, data, params.batch_size)
    epoch_seconds = time.perf_counter() - started
    state.train_seconds += epoch_seconds
    state.rows_trained += data.train_rows
    if not math.isfinite(train_loss):
        raise FloatingPointError(
            f"training diverged at epoch {state.epoch} (train loss {train_loss}); lower learning_rate"
        )
    scores = _evaluate_epoch(state, data)
    record = EpochRecord(
        epoch=state.epoch,
        train_loss=train_loss,
        log_loss=scores["log_loss"],
        pr_auc=scores["pr_auc"],
        roc_auc=scores["roc_auc"],
        rows_per_second=data.train_rows / max(epoch_seconds, 1e-9),
        seconds=time.perf_counter() - started,
    )
    state.record(record, params.patience)
    _log_epoch(record, params.epochs, best=state.best_epoch == state.epoch)
    state.save_checkpoint(checkpoint_path, fingerprint)
    if state.stopped:
        logger.info(
            "early stopping after epoch %d: eval %s did not improve for %d epoch(s); best epoch %d",
            state.epoch,
            state.metric,
            state.stale_epochs,
            state.best_epoch,
        )


def _best_model_result(state: TrainingState, data: DeviceSplits, fit_started: float) -> TorchFitResult:
    """Loads the best weights, predicts eval once in float32 and moves the model to the CPU."""
    state.model.load_state_dict(state.best_state)
    state.model.eval()
    final_probabilities = _eval_probabilities(state, data, autocast=False)
    cpu_model = state.model.to("cpu").float().eval()
    return TorchFitResult(
        model=cpu_model,
        best_epoch=state.best_epoch,
        epochs_run=state.epoch,
        resumed_from_epoch=state.start_epoch,
        stopped_early=state.stopped,
        rows_per_second=state.rows_per_second(),
        train_seconds=state.train_seconds,
        fit_seconds=time.perf_counter() - fit_started,
        eval_probabilities=final_probabilities.astype(np.float32),
        history=state.history,
    )


def fit_torch(
    *,
    train_numeric: np.ndarray,
    train_categorical: np.ndarray,
    train_labels: np.ndarray,
    eval_numeric: np.ndarray,
    eval_categorical: np.ndarray,
    eval_labels: np.ndarray,
    cardinalities: Sequence[int],
    params: TrainParams,
    device: torch.device,
    checkpoint_dir: str,
    fingerprint: str,
) -> TorchFitResult:
    """Trains :class:`TabularNet` with AdamW, early stopping on eval and per-epoch checkpoints.

    ``params.batch_size`` and ``params.epochs`` are used as given (the trainer resolves "auto" before);
    early stopping watches ``params.early_stopping_metric`` on eval and the best epoch's weights are kept.

    Resumes from ``checkpoint_dir/checkpoint.pt`` when it exists and its ``fingerprint`` (data hashes,
    hyperparameters except ``epochs``, device type) matches; the RNG states are restored with it, so a
    resumed run ends with the same weights as an uninterrupted one (on CPU, exactly).

    Args:
        train_numeric: Standardized numeric features of the train split, float32 ``[n, numeric]``.
        train_categorical: Category indices of the train split, int64 ``[n, categorical]``.
        train_labels: 0/1 labels of the train split.
        eval_numeric: Numeric features of the eval split (early stopping only).
        eval_categorical: Category indices of the eval split.
        eval_labels: 0/1 labels of the eval split.
        cardinalities: Embedding table size of each categorical feature (vocabulary plus unknown bucket).
        params: Hyperparameters (epochs, batch_size, learning_rate, weight_decay, embedding_dim,
            hidden_units, hidden_layers, dropout, patience, seed, cpu_threads).
        device: Where to train (see :func:`resolve_device`).
        checkpoint_dir: Folder of ``checkpoint.pt``, written after every epoch and created when missing.
        fingerprint: Identifies the data, hyperparameters and device type a checkpoint must match to resume.

    Raises:
        FloatingPointError: the loss or the eval predictions became non-finite.
    """
    with _cpu_threads(device, params.cpu_threads or 1):
        fit_started = time.perf_counter()
        state = TrainingState(
            n_numeric=train_numeric.shape[1], cardinalities=cardinalities, params=params, device=device
        )
        # Data resident on the device: one host->device copy per split for the whole run.
        data = DeviceSplits.copy_to(
            device,
            train_numeric=train_numeric,
            train_categorical=train_categorical,
            train_labels=train_labels,
            eval_numeric=eval_numeric,
            eval_categorical=eval_categorical,
            eval_labels=eval_labels,
        )
        os.makedirs(checkpoint_dir, exist_ok=True)
        checkpoint_path = os.path.join(checkpoint_dir, CHECKPOINT_FILE)
        state.resume(checkpoint_path, fingerprint)
        state.model.train()
        while state.epoch < params.epochs and not state.stopped:
            _run_epoch(state, data, params, checkpoint_path, fingerprint)
        return _best_model_result(state, data, fit_started)


def export_torchscript(model: nn.Module, cardinalities: Sequence[int], path: str) -> None:
    """Scripts ``ProbabilityModel(model)`` (CPU, float32, eval mode) and saves it with ``torch.jit.save``.

    ``model`` is a :class:`TabularNet` or a :class:`TabularEnsemble`.
    """
    wrapper = ProbabilityModel(model.to("cpu").float().eval(), cardinalities).eval()
    with warnings.catch_warnings():
        # torch >= 2.9 marks TorchScript deprecated; it is still the model-directory contract.
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(wrapper)
        torch.jit.save(scripted, path)


def member_checkpoint_dir(root: str, member: int) -> str:
    """Checkpoint folder of ensemble member ``member``: ``root`` for member 0, ``root/member-<k>`` for the others."""
    return root if member == 0 else os.path.join(root, MEMBER_FOLDER.format(member))


def member_fingerprint(fingerprint: str, member: int) -> str:
    """The checkpoint fingerprint of member ``member`` (member 0 keeps the run's)."""
    return fingerprint if member == 0 else hashlib.sha256(f"{fingerprint}:member-{member}".encode()).hexdigest()


def combine_members(fits: Sequence[TorchFitResult], data: TrainingData) -> Tuple[nn.Module, np.ndarray]:
    """The model to export and its float32 eval probabilities (as the exported module computes them on CPU).

    One member: its network and eval predictions unchanged. Several: a :class:`TabularEnsemble` of their
    networks (already on the CPU), scoring eval once.
    """
    if len(fits) == 1:
        return fits[0].model, fits[0].eval_probabilities
    ensemble = TabularEnsemble([fit.model for fit in fits]).eval()
    numeric = torch.from_numpy(np.ascontiguousarray(data.eval_numeric, dtype=np.float32))
    categorical = torch.from_numpy(np.ascontiguousarray(data.eval_categorical, dtype=np.int64))
    logits = predict_logits(ensemble, numeric, categorical, autocast=False)
    return ensemble, torch.sigmoid(logits).numpy().astype(np.float32)


def _training_record(fits: Sequence[TorchFitResult], device: torch.device, seeds: Sequence[int]) -> Dict[str, Any]:
    """The card's ``training`` entry: member 0's history and resume point, summed times, and every member."""
    record: Dict[str, Any] = {
        "device": str(device),
        "resumed_from_epoch": fits[0].resumed_from_epoch,
        "stopped_early": all(fit.stopped_early for fit in fits),
        "train_seconds": sum(fit.train_seconds for fit in fits),
        "fit_seconds": sum(fit.fit_seconds for fit in fits),
        "history": [asdict(record) for record in fits[0].history],
        "ensemble_members": len(fits),
    }
    if len(fits) > 1:
        record["members"] = [
            {
                "seed": seed,
                "best_epoch": fit.best_epoch,
                "epochs_run": fit.epochs_run,
                "stopped_early": fit.stopped_early,
                "resumed_from_epoch": fit.resumed_from_epoch,
            }
            for seed, fit in zip(seeds, fits, strict=True)
        ]
    return record


def _rows_per_second(fits: Sequence[TorchFitResult]) -> float:
    """Training rows per second of optimizer steps over all members."""
    seconds = sum(fit.train_seconds for fit in fits)
    if seconds > 0:
        return sum(fit.rows_per_second * fit.train_seconds for fit in fits) / seconds
    return float(np.mean([fit.rows_per_second for fit in fits]))


class TorchTrainer:
    """The :class:`~kfpkit.components.train.trainer.Trainer` of ``framework="pytorch"``."""

    framework = "pytorch"
    model_file = TORCHSCRIPT_FILE

    def fit(self, data: TrainingData, params: TrainParams, checkpoint_dir: Optional[str]) -> FittedModel:
        """Trains ``ensemble_members`` networks with :func:`fit_torch` and exports TorchScript on ``save``.

        ``batch_size``, ``epochs`` and ``ensemble_members`` left at 0 are chosen by :func:`training_schedule`
        from the number of training rows; the card's ``parameters`` record the values used and
        ``auto_parameters`` names those chosen automatically. Member ``k`` trains with seed
        :func:`member_seed` and checkpoints in :func:`member_checkpoint_dir`; each is early-stopped on eval
        and the exported model averages their logits (one member: the single network, as before). Without
        ``checkpoint_dir`` the checkpoints go to a temporary folder and a retry starts over. The card's
        ``best_epoch`` and ``epochs_run`` are the largest of the members'.
        """
        try:
            device = resolve_device(params.device)
        except ValueError as exc:
            raise TrainError(str(exc)) from exc
        schedule = training_schedule(len(data.train_labels), params.batch_size, params.epochs, params.ensemble_members)
        params = replace(
            params, batch_size=schedule.batch_size, epochs=schedule.epochs, ensemble_members=schedule.ensemble_members
        )
        logger.info(
            "%d training rows: batch_size %d, at most %d epochs, %d network(s) averaged%s; early stopping on eval "
            "%s, patience %d",
            len(data.train_labels),
            schedule.batch_size,
            schedule.epochs,
            schedule.ensemble_members,
            f" (chosen from the row count: {', '.join(schedule.auto)})" if schedule.auto else "",
            params.early_stopping_metric,
            params.patience,
        )
        parameters: Dict[str, Any] = {
            "batch_size": schedule.batch_size,
            "epochs": schedule.epochs,
            "ensemble_members": schedule.ensemble_members,
            "auto_parameters": list(schedule.auto),
            "device": str(device),
            "autocast": "bfloat16" if device.type == "cuda" else None,
            "optimizer": "AdamW",
            "loss": "BCEWithLogitsLoss",
        }
        # what a checkpoint must match to be resumed: the data, every hyperparameter but epochs, the device type
        fingerprint_source = {k: v for k, v in asdict(params).items() if k not in ("epochs", "device", "cpu_threads")}
        fingerprint_source.update(
            {k: v for k, v in parameters.items() if k not in ("device", "epochs", "auto_parameters")}
        )
        fingerprint_source.update(device_type=device.type, **data.fingerprint_source)
        fingerprint = hashlib.sha256(json.dumps(fingerprint_source, sort_keys=True).encode()).hexdigest()
        seeds = [member_seed(params.seed, k) for k in range(schedule.ensemble_members)]
        with tempfile.TemporaryDirectory(prefix="kfpkit-train-ckpt-") as scratch:
            if not checkpoint_dir:
                logger.info("no checkpoint_dir: checkpoints go to %s and a retry starts over", scratch)
            try:
                root = checkpoint_dir or scratch
                fits = [
                    self._fit_member(data, replace(params, seed=seed), device, root, k, fingerprint)
                    for k, seed in enumerate(seeds)
                ]
            except FloatingPointError as exc:
                raise TrainError(str(exc)) from exc
        model, eval_probabilities = combine_members(fits, data)
        training = _training_record(fits, device, seeds)
        return FittedModel(
            eval_probabilities=eval_probabilities,
            best_epoch=max(fit.best_epoch for fit in fits),
            epochs_run=max(fit.epochs_run for fit in fits),
            rows_per_second=_rows_per_second(fits),
            parameters=parameters,
            training=training,
            save=lambda path: export_torchscript(model, data.cardinalities, path),
            resumed_from_epoch=fits[0].resumed_from_epoch,
            history=training["history"],
        )

    @staticmethod
    def _fit_member(
        data: TrainingData, params: TrainParams, device: torch.device, root: str, member: int, fingerprint: str
    ) -> TorchFitResult:
        """Trains ensemble member ``member`` (``params.seed`` is already its own seed)."""
        if params.ensemble_members > 1:
            logger.info("ensemble member %d/%d (seed %d)", member + 1, params.ensemble_members, params.seed)
        return fit_torch(
            train_numeric=data.train_numeric,
            train_categorical=data.train_categorical,
            train_labels=data.train_labels,
            eval_numeric=data.eval_numeric,
            eval_categorical=data.eval_categorical,
            eval_labels=data.eval_labels,
            cardinalities=data.cardinalities,
            params=params,
            device=device,
            checkpoint_dir=member_checkpoint_dir(root, member),
            fingerprint=member_fingerprint(fingerprint, member),
        )
