"""The model card: a typed, versioned record of a model version, read and written only here.

``model_card.json`` in every model directory holds one :class:`ModelCard` as JSON (``ModelCard.to_dict``).
``ModelCard.from_dict`` validates what it reads and raises :class:`ModelCardError` naming the field, so a
model directory with a broken card never loads (serving then reports the model as not ready).

Version :data:`CARD_VERSION` (1) fields:

* what scores: ``framework`` (``"pytorch"`` or ``"sklearn"``), ``model_file``, ``feature_order`` (the raw
  input columns, non-empty), ``label_column``, ``calibration`` (the calibration method of
  ``calibration.json``, or ``None``);
* the decision: ``decision_threshold`` (finite, in [0, 1], applied to the calibrated probability) and
  ``decision_rule`` (how it was chosen);
* lineage: ``data`` (the source URI and, per split used in training, its sha256, rows and label rate),
  ``parameters``, ``training`` (device, epochs, history), ``versions`` (libraries), ``pipeline_run``,
  ``created_at``;
* ``metrics``: per split name, the metrics measured on it, e.g. ``{"eval": {"pr_auc": ...}}``; train only
  sees ``train`` and ``eval``, the test split belongs to evaluate;
* ``intervals`` (optional, empty by default, so cards written without it still read): per split name and
  metric (the names of :data:`kfpkit.core.bootstrap.METRICS`), a bootstrap interval exactly as
  :meth:`kfpkit.core.bootstrap.Interval.to_dict` writes it: ``{"point", "low", "high", "level",
  "resamples"}`` (``point``/``low``/``high`` ``null`` where the metric is undefined). evaluate writes
  ``intervals["test"]`` next to ``metrics["test"]``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional

CARD_VERSION = 1
MODEL_CARD_FILE = "model_card.json"
FRAMEWORKS = ("pytorch", "sklearn")
CALIBRATION_METHODS = ("platt",)


class ModelCardError(ValueError):
    """A model card that is missing, not JSON, of another version, or has an invalid field."""


@dataclass
class SplitLineage:
    """One data split a model was trained or tuned on."""

    sha256: str
    rows: int
    label_rate: float


@dataclass
class DataLineage:
    """Where the training data came from: the source and the splits train read, by split name."""

    source_uri: Optional[str] = None
    splits: Dict[str, SplitLineage] = field(default_factory=dict)


@dataclass
class ModelCard:
    """What a model directory holds and how it was made (see the module docstring)."""

    framework: str
    model_file: str
    label_column: str
    feature_order: List[str]
    decision_threshold: float
    decision_rule: str = ""
    calibration: Optional[str] = None
    data: DataLineage = field(default_factory=DataLineage)
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)
    intervals: Dict[str, Dict[str, Dict[str, Optional[float]]]] = field(default_factory=dict)
    parameters: Dict[str, Any] = field(default_factory=dict)
    training: Dict[str, Any] = field(default_factory=dict)
    versions: Dict[str, Optional[str]] = field(default_factory=dict)
    pipeline_run: Optional[str] = None
    created_at: Optional[str] = None
    card_version: int = CARD_VERSION

    def validate(self, where: str = "model card") -> None:
        """Raises ModelCardError naming the first invalid field."""

        def fail(name: str, problem: str) -> None:
            raise ModelCardError(f"{where}: {name} {problem}")

        if self.card_version != CARD_VERSION:
            fail("card_version", f"must be {CARD_VERSION}, got {self.card_version!r} (re-train the model)")
        if self.framework not in FRAMEWORKS:
            fail("framework", f"must be one of {list(FRAMEWORKS)}, got {self.framework!r}")
        if (
            not isinstance(self.model_file, str)
            or not self.model_file
            or os.path.basename(self.model_file) != (self.model_file)
        ):
            fail("model_file", f"must be a file name inside the model directory, got {self.model_file!r}")
        if not isinstance(self.label_column, str) or not self.label_column:
            fail("label_column", f"must be a non-empty string, got {self.label_column!r}")
        if (
            not isinstance(self.feature_order, list)
            or not self.feature_order
            or not all(isinstance(name, str) and name for name in self.feature_order)
        ):
            fail("feature_order", f"must be a non-empty list of column names, got {self.feature_order!r}")
        threshold = self.decision_threshold
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not math.isfinite(threshold)
            or not 0.0 <= threshold <= 1.0
        ):
            fail("decision_threshold", f"must be a finite number in [0, 1], got {threshold!r}")
        if self.calibration is not None and self.calibration not in CALIBRATION_METHODS:
            fail("calibration", f"must be null or one of {list(CALIBRATION_METHODS)}, got {self.calibration!r}")
        if not isinstance(self.metrics, dict) or not all(
            isinstance(split, str) and isinstance(values, dict) for split, values in self.metrics.items()
        ):
            fail("metrics", f"must map split names to metric objects, got {self.metrics!r}")
        problem = _intervals_problem(self.intervals)
        if problem:
            fail("intervals", problem)
        for name in ("parameters", "training", "versions"):
            if not isinstance(getattr(self, name), dict):
                fail(name, f"must be an object, got {getattr(self, name)!r}")

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document (plain types only)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["data"] = {
            "source_uri": self.data.source_uri,
            "splits": {name: vars(split).copy() for name, split in self.data.splits.items()},
        }
        return out

    @classmethod
    def from_dict(cls, document: Any, where: str = "model card") -> ModelCard:
        """Validates a parsed ``model_card.json``.

        Raises:
            ModelCardError: not an object, an unknown or missing field, another ``card_version``, or an
                invalid value; the message starts with ``where`` and names the field.
        """
        if not isinstance(document, Mapping):
            raise ModelCardError(f"{where}: must be a JSON object, got {type(document).__name__}")
        names = {f.name for f in fields(cls)}
        if document.get("card_version") != CARD_VERSION:
            raise ModelCardError(
                f"{where}: card_version must be {CARD_VERSION}, got {document.get('card_version')!r} "
                "(a card written before kfpkit's typed model card; re-train the model)"
            )
        unknown = sorted(set(document) - names)
        if unknown:
            raise ModelCardError(f"{where}: unknown field(s) {unknown}")
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in document]
        if missing:
            raise ModelCardError(f"{where}: missing field(s) {missing}")
        values = dict(document)
        values["data"] = _data_lineage(values.get("data", {}), where)
        card = cls(**values)
        card.validate(where)
        return card


INTERVAL_KEYS = frozenset({"point", "low", "high", "level", "resamples"})


def _interval_problem(name: str, interval: Any) -> Optional[str]:
    """Why ``interval`` is not an ``Interval.to_dict()``, or ``None`` when it is."""

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    problem = None
    if not isinstance(interval, dict) or set(interval) != INTERVAL_KEYS:
        problem = f"{name} must have exactly {sorted(INTERVAL_KEYS)}, got {interval!r}"
    elif not all(interval[key] is None or number(interval[key]) for key in ("point", "low", "high")):
        problem = f"{name}: point, low and high must be numbers or null, got {interval!r}"
    elif not (number(interval["level"]) and 0.0 < interval["level"] < 1.0):
        problem = f"{name}: level must be in (0, 1), got {interval['level']!r}"
    elif not (number(interval["resamples"]) and interval["resamples"] >= 1):
        problem = f"{name}: resamples must be >= 1, got {interval['resamples']!r}"
    elif None not in (interval["low"], interval["high"]) and interval["low"] > interval["high"]:
        problem = f"{name}: low {interval['low']} is above high {interval['high']}"
    return problem


def _intervals_problem(intervals: Any) -> Optional[str]:
    """Why ``intervals`` is not ``{split: {metric: Interval.to_dict()}}``, or ``None`` when it is."""
    if not isinstance(intervals, dict):
        return f"must map split names to interval objects, got {intervals!r}"
    for split, by_metric in intervals.items():
        if not isinstance(split, str) or not isinstance(by_metric, dict):
            return f"must map split names to interval objects, got {split!r}: {by_metric!r}"
        for metric, interval in by_metric.items():
            problem = _interval_problem(f"{split}.{metric}", interval)
            if problem:
                return problem
    return None


def _data_lineage(data: Any, where: str) -> DataLineage:
    if not isinstance(data, Mapping) or set(data) - {"source_uri", "splits"}:
        raise ModelCardError(f"{where}: data must be an object with source_uri and splits, got {data!r}")
    splits = data.get("splits", {})
    if not isinstance(splits, Mapping):
        raise ModelCardError(f"{where}: data.splits must be an object, got {splits!r}")
    out: Dict[str, SplitLineage] = {}
    for name, split in splits.items():
        if not isinstance(split, Mapping) or set(split) != {"sha256", "rows", "label_rate"}:
            raise ModelCardError(f"{where}: data.splits.{name} must have sha256, rows and label_rate, got {split!r}")
        rows, rate = split["rows"], split["label_rate"]
        if (
            not isinstance(split["sha256"], str)
            or isinstance(rows, bool)
            or not isinstance(rows, int)
            or rows < 0
            or isinstance(rate, bool)
            or not isinstance(rate, (int, float))
            or not 0.0 <= rate <= 1.0
        ):
            raise ModelCardError(
                f"{where}: data.splits.{name} needs a sha256 string, rows >= 0 and a label_rate in [0, 1], "
                f"got {split!r}"
            )
        out[name] = SplitLineage(sha256=split["sha256"], rows=rows, label_rate=float(rate))
    return DataLineage(source_uri=data.get("source_uri"), splits=out)


def read_model_card(directory: str) -> ModelCard:
    """Reads and validates ``<directory>/model_card.json``.

    Raises:
        ModelCardError: the file is missing, is not JSON, or fails :meth:`ModelCard.from_dict`.
    """
    path = os.path.join(directory, MODEL_CARD_FILE)
    if not os.path.isfile(path):
        raise ModelCardError(f"{directory}: no {MODEL_CARD_FILE}")
    try:
        with open(path, encoding="utf-8") as fh:
            document = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"{path}: not a readable JSON file ({exc})") from exc
    return ModelCard.from_dict(document, where=path)


def write_model_card(directory: str, card: ModelCard) -> None:
    """Writes ``card`` (validated again) to ``<directory>/model_card.json``."""
    card.validate()
    with open(os.path.join(directory, MODEL_CARD_FILE), "w", encoding="utf-8") as fh:
        json.dump(card.to_dict(), fh, indent=2, sort_keys=True, default=str)
