"""The model version directory: what train writes, push copies, evaluate/serving/monitor load.

Layout (see ARCHITECTURE.md, "Model version directory")::

    <dir>/
      model.pt              TorchScript (framework "pytorch")   -- or --
      model.skops           skops file of the sklearn baseline (framework "sklearn")
      preprocessing.json    PreprocessingSpec (kfpkit.components.common.preprocessing)
      model_card.json       lineage: framework, model_file, parameters, data sha256, metrics,
                            decision_threshold, library versions, pipeline run
      baseline/             TFDV training statistics + schema (added by push when validate ran)
      MANIFEST.json         sha256 of every other file (written by push, last)

TorchScript contract: ``forward(numeric: float32[n, n_num], categorical: int64[n, n_cat]) -> float32[n]``
returning the probability of the positive class.

Nothing here unpickles: TorchScript is loaded with ``torch.jit.load`` and sklearn models with
``skops.io.load`` restricted to trusted types. torch/skops are imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from kfpkit.components.common.preprocessing import PreprocessingSpec

PREPROCESSING_FILE = "preprocessing.json"
MODEL_CARD_FILE = "model_card.json"
MANIFEST_FILE = "MANIFEST.json"
BASELINE_DIR = "baseline"
TORCHSCRIPT_FILE = "model.pt"
SKOPS_FILE = "model.skops"
MODEL_FILES = {"pytorch": TORCHSCRIPT_FILE, "sklearn": SKOPS_FILE}
DEFAULT_DECISION_THRESHOLD = 0.5


class ModelDirError(ValueError):
    """A model directory that is incomplete, tampered with or of an unknown format."""


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
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


def read_model_card(directory: str) -> Dict[str, Any]:
    path = os.path.join(directory, MODEL_CARD_FILE)
    if not os.path.isfile(path):
        raise ModelDirError(f"{directory}: no {MODEL_CARD_FILE}")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_model_card(directory: str, card: Mapping[str, Any]) -> None:
    with open(os.path.join(directory, MODEL_CARD_FILE), "w", encoding="utf-8") as fh:
        json.dump(dict(card), fh, indent=2, sort_keys=True, default=str)


@dataclass
class LoadedModel:
    """A model directory loaded for scoring: ``predict_proba`` applies the shared preprocessing."""

    directory: str
    spec: PreprocessingSpec
    card: Dict[str, Any]
    framework: str
    _model: Any

    @property
    def decision_threshold(self) -> float:
        return float(self.card.get("decision_threshold", DEFAULT_DECISION_THRESHOLD))

    def predict_proba_arrays(self, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        """Positive-class probabilities (float64 ``[n]``) from already-transformed arrays."""
        if self.framework == "pytorch":
            import torch

            with torch.inference_mode():
                out = self._model(torch.from_numpy(numeric), torch.from_numpy(categorical))
            return out.double().numpy().reshape(-1)
        import sklearn

        # The preprocessing spec guarantees finite float input of the right width, so sklearn's per-call
        # input and parameter validation (most of the cost of scoring one row) is skipped.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            proba = self._model.predict_proba(sklearn_feature_matrix(numeric, categorical))
        return proba[:, 1].astype(np.float64)

    def predict_proba(self, frame: Any) -> np.ndarray:
        """Positive-class probabilities for a pandas DataFrame of raw features."""
        return self.predict_proba_arrays(*self.spec.transform(frame))

    def predict_proba_columns(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        return self.predict_proba_arrays(*self.spec.transform_columns(columns))


def sklearn_feature_matrix(numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    """The sklearn baseline's input: numeric columns, then categorical indices (as float)."""
    return np.concatenate([numeric.astype(np.float64), categorical.astype(np.float64)], axis=1)


def load_model(directory: str, verify: bool = False) -> LoadedModel:
    """Loads a model directory written by train (and optionally checks push's manifest first).

    Args:
        directory: Local path of the model directory.
        verify: Check ``MANIFEST.json`` before loading anything (serving does).

    Raises:
        ModelDirError: a required file is missing, the framework is unknown or the manifest check fails.
    """
    if not os.path.isdir(directory):
        raise ModelDirError(f"{directory}: not a directory")
    if verify:
        verify_manifest(directory)
    card = read_model_card(directory)
    framework = card.get("framework")
    if framework not in MODEL_FILES:
        raise ModelDirError(f"{directory}: unknown framework {framework!r} in {MODEL_CARD_FILE}")
    spec_path = os.path.join(directory, PREPROCESSING_FILE)
    if not os.path.isfile(spec_path):
        raise ModelDirError(f"{directory}: no {PREPROCESSING_FILE}")
    spec = PreprocessingSpec.load(spec_path)
    model_path = os.path.join(directory, card.get("model_file", MODEL_FILES[framework]))
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
    return LoadedModel(directory=directory, spec=spec, card=card, framework=framework, _model=model)


# sklearn's HistGradientBoosting internals that skops lists as "untrusted" although they are sklearn's own.
_TRUSTED_SKOPS_PREFIXES = ("sklearn.", "numpy.", "collections.OrderedDict")
# With categorical_features, HistGradientBoosting's internal preprocessor holds
# functools.partial(sklearn.utils.validation.check_array, ...). Trusting the exact name adds no reach: the wrapped
# function must itself be trusted (sklearn./numpy.), which FunctionTransformer could already reference directly.
_TRUSTED_SKOPS_TYPES = frozenset({"functools.partial"})
