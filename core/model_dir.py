"""The model version directory: what train writes, push copies, evaluate/serving/monitor load.

Layout (see ../shared/ARCHITECTURE.md, "Model version directory")::

    <dir>/
      model.pt              TorchScript (framework "pytorch")   -- or --
      model.skops           skops file of the sklearn baseline (framework "sklearn")
      preprocessing.json    PreprocessingSpec (kfpkit.core.preprocessing)
      calibration.json      Platt scaling fitted on the eval split (when the card names a calibration)
      model_card.json       ModelCard (kfpkit.core.model_card): lineage, parameters, data
                            sha256, metrics per split, decision_threshold, library versions, pipeline run
      baseline/             TFDV training statistics + schema (added by push when validate ran)
      MANIFEST.json         sha256 of every other file (written by push, last)

TorchScript contract: ``forward(numeric: float32[n, n_num], categorical: int64[n, n_cat]) -> float32[n]``
returning the (uncalibrated) probability of the positive class. :meth:`LoadedModel.predict_proba_arrays`
applies the calibration to it, so evaluate, infra_validate and serving all return the calibrated
probability, and the decision threshold applies to that.

Nothing here unpickles: TorchScript is loaded with ``torch.jit.load`` and sklearn models with
``skops.io.load`` restricted to trusted types. torch/skops are imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

# The card is part of the directory: its file name, type and functions are reachable from here too.
from kfpkit.core.model_card import (  # noqa: F401
    MODEL_CARD_FILE,
    ModelCard,
    ModelCardError,
    read_model_card,
    write_model_card,
)
from kfpkit.core.preprocessing import PreprocessingSpec

PREPROCESSING_FILE = "preprocessing.json"
MANIFEST_FILE = "MANIFEST.json"
BASELINE_DIR = "baseline"
TORCHSCRIPT_FILE = "model.pt"
SKOPS_FILE = "model.skops"
CALIBRATION_FILE = "calibration.json"
MODEL_FILES = {"pytorch": TORCHSCRIPT_FILE, "sklearn": SKOPS_FILE}
CALIBRATION_FORMAT = 1
# Probabilities are clipped to [eps, 1 - eps] before the logit (float32 sigmoids reach exactly 0 and 1).
CALIBRATION_EPS = 1e-7


class ModelDirError(ValueError):
    """A model directory that is incomplete, tampered with or of an unknown format."""


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read ``chunk`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(directory: str) -> List[str]:
    """Relative POSIX paths of every file under ``directory`` except the manifest, sorted."""
    out = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), directory).replace(os.sep, "/")
            if rel != MANIFEST_FILE:
                out.append(rel)
    return sorted(out)


def build_manifest(directory: str) -> Dict[str, Any]:
    """``{"files": {relpath: sha256}, "content_sha256": ...}`` over every file but the manifest.

    ``content_sha256`` hashes the sorted ``relpath  sha256`` lines, so it identifies the content of the
    whole version (push uses it for idempotence).
    """
    files = {rel: sha256_file(os.path.join(directory, rel)) for rel in list_files(directory)}
    lines = "".join(f"{rel}  {digest}\n" for rel, digest in sorted(files.items()))
    return {"files": files, "content_sha256": hashlib.sha256(lines.encode()).hexdigest()}


def write_manifest(directory: str) -> Dict[str, Any]:
    """Writes ``MANIFEST.json`` (:func:`build_manifest` of ``directory``) and returns it.

    Push calls it last, after every other file of the version is in place.
    """
    manifest = build_manifest(directory)
    with open(os.path.join(directory, MANIFEST_FILE), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
    return manifest


def verify_manifest(directory: str) -> Dict[str, Any]:
    """Checks every file against ``MANIFEST.json``.

    Raises:
        ModelDirError: the manifest is missing, a listed file is missing or differs, or a file is not
            listed.
    """
    path = os.path.join(directory, MANIFEST_FILE)
    if not os.path.isfile(path):
        raise ModelDirError(f"{directory}: no {MANIFEST_FILE}; the model version is incomplete")
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    listed: Mapping[str, str] = manifest.get("files", {})
    present = set(list_files(directory))
    problems = []
    for rel, digest in sorted(listed.items()):
        if rel not in present:
            problems.append(f"missing {rel}")
        elif sha256_file(os.path.join(directory, rel)) != digest:
            problems.append(f"sha256 mismatch in {rel}")
    for rel in sorted(present - set(listed)):
        problems.append(f"unlisted file {rel}")
    if problems:
        raise ModelDirError(f"{directory}: manifest check failed: {'; '.join(problems)}")
    return manifest


@dataclass(frozen=True)
class PlattCalibration:
    """Platt scaling: ``calibrated = sigmoid(slope * logit(p) + intercept)``, fitted on the eval split.

    Monotonic for ``slope > 0``: ranking metrics (ROC-AUC, PR-AUC) are unchanged by it.
    """

    slope: float
    intercept: float
    fitted_on: str = "eval"
    method: str = "platt"

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float64) of uncalibrated ones."""
        # np.maximum/np.minimum: np.clip's result (NaN stays NaN) without its per-call overhead
        p = np.minimum(np.maximum(np.asarray(probabilities, dtype=np.float64), CALIBRATION_EPS), 1.0 - CALIBRATION_EPS)
        z = self.slope * (np.log(p) - np.log1p(-p)) + self.intercept
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow warnings

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document of ``calibration.json``, with its format number."""
        return {
            "format": CALIBRATION_FORMAT,
            "method": self.method,
            "slope": self.slope,
            "intercept": self.intercept,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, document: Any, where: str) -> PlattCalibration:
        """Raises ModelDirError naming the field that is wrong."""
        if not isinstance(document, Mapping):
            raise ModelDirError(f"{where}: must be a JSON object")
        if document.get("format") != CALIBRATION_FORMAT or document.get("method") != "platt":
            raise ModelDirError(
                f"{where}: format must be {CALIBRATION_FORMAT} and method 'platt', got format "
                f"{document.get('format')!r}, method {document.get('method')!r}"
            )
        for name in ("slope", "intercept"):
            value = document.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ModelDirError(f"{where}: {name} must be a finite number, got {value!r}")
        if not document["slope"] > 0:
            raise ModelDirError(f"{where}: slope must be > 0 (a calibration may not invert the ranking)")
        return cls(
            slope=float(document["slope"]),
            intercept=float(document["intercept"]),
            fitted_on=str(document.get("fitted_on", "eval")),
        )

    def save(self, directory: str) -> None:
        """Writes ``calibration.json`` into ``directory``."""
        with open(os.path.join(directory, CALIBRATION_FILE), "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2, sort_keys=True)


def read_calibration(directory: str, card: ModelCard) -> Optional[PlattCalibration]:
    """The calibration the card names (``None`` when it names none).

    Raises:
        ModelDirError: the card names a calibration but ``calibration.json`` is missing or invalid, or the
            file exists while the card names none.
    """
    path = os.path.join(directory, CALIBRATION_FILE)
    if card.calibration is None:
        if os.path.exists(path):
            raise ModelDirError(
                f"{directory}: {CALIBRATION_FILE} is present but {MODEL_CARD_FILE} names no calibration"
            )
        return None
    if not os.path.isfile(path):
        raise ModelDirError(
            f"{directory}: {MODEL_CARD_FILE} names calibration {card.calibration!r} but there is no {CALIBRATION_FILE}"
        )
    try:
        with open(path, encoding="utf-8") as fh:
            document = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path}: not a readable JSON file ({exc})") from exc
    return PlattCalibration.from_dict(document, path)


@dataclass
class LoadedModel:
    """A model directory loaded for scoring.

    ``predict_proba`` applies the shared preprocessing, the model and its calibration.
    """

    directory: str
    spec: PreprocessingSpec
    card: ModelCard
    calibration: Optional[PlattCalibration]
    _model: Any
    _scorer: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._scorer is None:
            self._scorer = model_scorer(self.card.framework, self._model)

    @property
    def framework(self) -> str:
        """``"pytorch"`` or ``"sklearn"``, as the model card says."""
        return self.card.framework

    @property
    def decision_threshold(self) -> float:
        """Positive when the calibrated probability is ``>=`` it."""
        return float(self.card.decision_threshold)

    def predict_uncalibrated_arrays(self, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        """The model's own positive-class probabilities (float64 ``[n]``), before calibration."""
        return self._scorer(numeric, categorical)  # type: ignore[misc]

    def predict_proba_arrays(self, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        """Calibrated positive-class probabilities (float64 ``[n]``) from already-transformed arrays."""
        probabilities = self.predict_uncalibrated_arrays(numeric, categorical)
        return probabilities if self.calibration is None else self.calibration.apply(probabilities)

    def predict_proba(self, frame: Any) -> np.ndarray:
        """Calibrated positive-class probabilities for a pandas DataFrame of raw features."""
        return self.predict_proba_arrays(*self.spec.transform(frame))

    def predict_proba_columns(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """Calibrated positive-class probabilities for raw feature columns (name -> values), no DataFrame."""
        return self.predict_proba_arrays(*self.spec.transform_columns(columns))


def sklearn_feature_matrix(numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    """The sklearn baseline's input (float64, C order): numeric columns, then categorical indices (as float)."""
    k = numeric.shape[1]
    matrix = np.empty((numeric.shape[0], k + categorical.shape[1]), dtype=np.float64)
    matrix[:, :k] = numeric
    matrix[:, k:] = categorical
    return matrix


def model_scorer(framework: str, model: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The function ``(numeric, categorical) -> float64 [n]`` positive-class probabilities of a loaded model.

    * ``pytorch``: the TorchScript module under ``torch.inference_mode``.
    * A binary :class:`~sklearn.linear_model.LogisticRegression` (exactly that class, dense float64 weights
      of the matrix's width): ``expit(X @ coef_.T + intercept_)`` in numpy -- the operations of its own
      ``predict_proba`` (``decision_function`` then ``expit``), without its per-call input validation and
      dispatch, which cost more than the product for one row.
    * A binary :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (the train baseline): its trees'
      own predictors on the matrix its categorical preprocessor would give (a sorted-categories lookup in
      numpy instead of the per-call ColumnTransformer/OrdinalEncoder, which is ~90% of a one-row score),
      with the known-category bitsets computed once. It relies on fitted attributes sklearn does not
      document, so it is used only when, at load, it gives exactly ``predict_proba``'s probabilities on a
      probe matrix covering every category code; otherwise, or on any missing name, the next rule applies.
    * Any other sklearn estimator: its ``predict_proba`` with sklearn's finiteness and parameter checks off
      (the preprocessing spec guarantees finite float input of the right width).
    """
    if framework == "pytorch":
        return _torch_scorer(model)
    return _logistic_scorer(model) or _hist_gradient_boosting_scorer(model) or _sklearn_scorer(model)


def _torch_scorer(model: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import torch

    inference_mode = torch.inference_mode
    from_numpy = torch.from_numpy

    def score(numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        with inference_mode():
            out = model(from_numpy(numeric), from_numpy(categorical))
        return out.numpy().astype(np.float64).reshape(-1)

    return score


def _logistic_scorer(model: Any) -> Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """The numpy scorer of a binary LogisticRegression, or ``None`` when ``model`` is anything else."""
    if type(model).__name__ != "LogisticRegression":
        return None
    from sklearn.linear_model import LogisticRegression

    if type(model) is not LogisticRegression:  # a subclass may score differently
        return None
    coef = getattr(model, "coef_", None)
    intercept = getattr(model, "intercept_", None)
    classes = getattr(model, "classes_", None)
    if (
        classes is None
        or len(classes) != 2
        or not isinstance(coef, np.ndarray)
        or not isinstance(intercept, np.ndarray)
        or coef.dtype != np.float64
        or coef.ndim != 2
        or coef.shape[0] != 1
        or intercept.shape != (1,)
        or coef.shape[1] != getattr(model, "n_features_in_", -1)
    ):
        return None
    from scipy.special import expit

    coef_t = np.array(coef.T)  # (k, 1), as decision_function multiplies
    bias = np.array(intercept, dtype=np.float64)
    width = coef.shape[1]

    def score(numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        # without categorical columns the matrix is the numeric block: matmul casts it to float64 itself
        matrix = numeric if categorical.shape[1] == 0 else sklearn_feature_matrix(numeric, categorical)
        if matrix.shape[1] != width:
            raise ValueError(f"X has {matrix.shape[1]} features, but LogisticRegression is expecting {width}")
        z = (matrix @ coef_t + bias).reshape(-1)
        return expit(z, out=z)

    return score


def _hist_gradient_boosting_scorer(model: Any) -> Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """The precomputed scorer of a binary HistGradientBoostingClassifier, or ``None`` (see :func:`model_scorer`)."""
    if type(model).__name__ != "HistGradientBoostingClassifier":
        return None  # before importing sklearn.ensemble, which other models do not need
    from sklearn.ensemble import HistGradientBoostingClassifier

    if type(model) is not HistGradientBoostingClassifier or len(getattr(model, "classes_", ())) != 2:
        return None
    try:
        width = int(model.n_features_in_)
        preprocessor = model._preprocessor
        if preprocessor is None:
            order, categories = None, []
        else:
            is_categorical = np.asarray(model.is_categorical_, dtype=bool)
            # the ColumnTransformer puts the (ordinal-encoded) categorical columns first, then the rest
            order = np.concatenate([np.flatnonzero(is_categorical), np.flatnonzero(~is_categorical)])
            categories = [
                np.asarray(c, dtype=np.float64) for c in preprocessor.named_transformers_["encoder"].categories_
            ]
            if len(categories) != int(is_categorical.sum()) or any(np.isnan(c).any() for c in categories):
                return None  # spec-encoded categories are never NaN; anything else is not the case handled here
        known_cat_bitsets, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
        predictors = [p for iteration in model._predictors for p in iteration]
        baseline = np.asarray(model._baseline_prediction)
        loss = model._loss
        if baseline.shape != (1, 1) or any(len(iteration) != 1 for iteration in model._predictors):
            return None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None

    def score(numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        matrix = sklearn_feature_matrix(numeric, categorical)
        if matrix.shape[1] != width:
            raise ValueError(
                f"X has {matrix.shape[1]} features, but HistGradientBoostingClassifier is expecting {width}"
            )
        if order is not None:
            matrix = matrix[:, order]
            for j, known in enumerate(categories):
                column = matrix[:, j]
                at = np.minimum(np.searchsorted(known, column), len(known) - 1)
                matrix[:, j] = np.where(known[at] == column, at, np.nan)  # unknown -> NaN, as OrdinalEncoder
        raw = np.zeros((matrix.shape[0], 1), dtype=baseline.dtype, order="F")
        raw += baseline
        for predictor in predictors:
            raw[:, 0] += predictor.predict(matrix, known_cat_bitsets, f_idx_map, 1)
        return loss.predict_proba(raw)[:, 1].astype(np.float64)

    return score if _same_as_predict_proba(model, score, width, categories) else None


def _same_as_predict_proba(
    model: Any,
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    width: int,
    categories: Sequence[np.ndarray],
) -> bool:
    """Whether ``score`` equals ``model.predict_proba`` exactly on a probe: every category code, unknown ones too."""
    n_categorical = len(categories)
    n_numeric = width - n_categorical
    codes = [np.arange(int(c.max()) + 3 if c.size else 2, dtype=np.int64) for c in categories]
    rows = max([64] + [c.size for c in codes])
    rng = np.random.default_rng(0)
    numeric = (rng.standard_normal((rows, n_numeric)) * 3.0).astype(np.float32)
    numeric[0] = 0.0
    categorical = np.empty((rows, n_categorical), dtype=np.int64)
    for j, c in enumerate(codes):
        categorical[:, j] = np.resize(rng.permutation(c), rows)
    try:
        import sklearn

        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            expected = model.predict_proba(sklearn_feature_matrix(numeric, categorical))[:, 1]
        return bool(np.array_equal(score(numeric, categorical), expected)) and bool(
            np.array_equal(score(numeric[:1], categorical[:1]), expected[:1])
        )
    except Exception:  # any failure means: use sklearn's own path
        return False


def _sklearn_scorer(model: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import sklearn

    config_context = sklearn.config_context

    def score(numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        with config_context(assume_finite=True, skip_parameter_validation=True):
            proba = model.predict_proba(sklearn_feature_matrix(numeric, categorical))
        return proba[:, 1].astype(np.float64)

    return score


def load_model(directory: str, verify: bool = False) -> LoadedModel:
    """Loads a model directory written by train (and optionally checks push's manifest first).

    Args:
        directory: Local path of the model directory.
        verify: Check ``MANIFEST.json`` before loading anything (serving does).

    Raises:
        ModelDirError: a required file is missing or invalid, or the manifest check fails.
        ModelCardError: ``model_card.json`` is missing or fails validation (the message names the field).
    """
    if not os.path.isdir(directory):
        raise ModelDirError(f"{directory}: not a directory")
    if verify:
        verify_manifest(directory)
    card = read_model_card(directory)
    framework = card.framework
    spec_path = os.path.join(directory, PREPROCESSING_FILE)
    if not os.path.isfile(spec_path):
        raise ModelDirError(f"{directory}: no {PREPROCESSING_FILE}")
    spec = PreprocessingSpec.load(spec_path)
    if list(spec.feature_order) != list(card.feature_order):
        raise ModelDirError(
            f"{directory}: {MODEL_CARD_FILE} feature_order {card.feature_order} differs from {PREPROCESSING_FILE}'s "
            f"{list(spec.feature_order)}"
        )
    calibration = read_calibration(directory, card)
    model_path = os.path.join(directory, card.model_file)
    if not os.path.isfile(model_path):
        raise ModelDirError(f"{directory}: no model file {os.path.basename(model_path)}")
    if framework == "pytorch":
        import torch

        model = torch.jit.load(model_path, map_location="cpu")
        model.eval()
    else:
        import skops.io as sio

        untrusted = sio.get_untrusted_types(file=model_path)
        unexpected = [t for t in untrusted if not (t.startswith(_TRUSTED_SKOPS_PREFIXES) or t in _TRUSTED_SKOPS_TYPES)]
        if unexpected:
            raise ModelDirError(f"{directory}: {SKOPS_FILE} holds types outside the trusted set: {unexpected}")
        model = sio.load(model_path, trusted=untrusted)
    return LoadedModel(directory=directory, spec=spec, card=card, calibration=calibration, _model=model)


# sklearn's HistGradientBoosting internals that skops lists as "untrusted" although they are sklearn's own.
_TRUSTED_SKOPS_PREFIXES = ("sklearn.", "numpy.", "collections.OrderedDict")
# With categorical_features, HistGradientBoosting's internal preprocessor holds
# functools.partial(sklearn.utils.validation.check_array, ...). Trusting the exact name adds no reach: the wrapped
# function must itself be trusted (sklearn./numpy.), which FunctionTransformer could already reference directly.
_TRUSTED_SKOPS_TYPES = frozenset({"functools.partial"})
