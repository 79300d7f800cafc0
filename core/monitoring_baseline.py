"""The monitoring baseline profile: what the monitor compares live traffic with, written once at training time.

Train writes ``monitoring_baseline.json`` into the model version directory (push's manifest covers it). It
holds, per feature of the preprocessing spec:

* **numeric**: about 20 quantile bin edges of the training values with the count of training values in each
  bin, and the missing count (``None``, NaN and infinities are missing);
* **categorical**: the counts of the ``top_k`` most frequent values (canonical strings, as the preprocessing
  spec keys them), the count of the remaining values (``other``) and the missing count;

plus the distribution of the calibrated score on the eval split, binned the same way as a numeric feature.

Bins are ``(-inf, e0), [e0, e1), ..., [e_last, inf)``: a value ``v`` falls into bin
``searchsorted(edges, v, side="right")`` (the bins of :mod:`kfpkit.core.numeric_shift`, the comparator the monitor
and validate share). Counts are plain integers, so profiles of several partitions add
up (the monitor's live windows use the same layout).

The profile records the sha256 of the model files and of ``preprocessing.json`` it was built for, so that a
baseline copied from another model version is refused (:func:`check_matches_model_dir`). The monitor never
rescans training data: this file is all it reads from training.

Only numpy is imported at module level (pandas is used only through the frame passed in).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

# the bins of the numeric comparator the monitor and validate share
from kfpkit.core.numeric_shift import DEFAULT_BINS, bin_counts, quantile_edges

BASELINE_FILE = "monitoring_baseline.json"
FORMAT_VERSION = 1
DEFAULT_TOP_K = 100
# files whose sha256 the profile records: the model's identity as far as the monitor is concerned
IDENTITY_FILES = ("preprocessing.json", "model.pt", "model.skops")


class BaselineError(ValueError):
    """A monitoring baseline that is missing, malformed or built for another model version."""


@dataclass
class NumericProfile:
    """Quantile bins of one numeric feature (or of the score).

    Attributes:
        name: Feature name.
        edges: Increasing inner bin edges; there are ``len(edges) + 1`` bins.
        counts: Training values per bin.
        missing: Training rows with no finite value.
        mean: Mean of the finite training values (for the report).
        std: Standard deviation of the finite training values.
    """

    name: str
    edges: List[float]
    counts: List[int]
    missing: int
    mean: float = 0.0
    std: float = 0.0

    @property
    def total(self) -> int:
        """Training rows of the feature: binned values plus missing ones."""
        return int(sum(self.counts)) + int(self.missing)


@dataclass
class CategoricalProfile:
    """Top-K value counts of one categorical feature.

    Attributes:
        name: Feature name.
        values: The ``top_k`` most frequent values (canonical strings), most frequent first.
        counts: Training rows per value of ``values``.
        other: Training rows with a present value outside ``values``.
        missing: Training rows with a missing value (``None``, NaN or the empty string).
    """

    name: str
    values: List[str]
    counts: List[int]
    other: int
    missing: int

    @property
    def total(self) -> int:
        """Training rows of the feature: top-K values, other values and missing ones."""
        return int(sum(self.counts)) + int(self.other) + int(self.missing)


# the profile of one feature of the preprocessing spec
FeatureProfile = Union[NumericProfile, CategoricalProfile]


@dataclass
class MonitoringBaseline:
    """The whole profile (see the module docstring).

    Attributes:
        feature_order: Features in the preprocessing spec's order.
        numeric: Profiles of the numeric features.
        categorical: Profiles of the categorical features.
        score: Calibrated eval-split score distribution (``None`` when train had no scores).
        rows: Training rows the feature profiles were built from.
        score_rows: Eval rows of the score profile.
        identity: ``{file name: sha256}`` of the model files the profile belongs to.
        created_at: ISO-8601 UTC time of writing.
    """

    feature_order: List[str]
    numeric: List[NumericProfile]
    categorical: List[CategoricalProfile]
    score: Optional[NumericProfile]
    rows: int
    score_rows: int = 0
    identity: Dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    format_version: int = FORMAT_VERSION

    def feature(self, name: str) -> FeatureProfile:
        """The profile of feature ``name`` (numeric or categorical).

        Raises:
            KeyError: ``name`` is not a feature of the profile.
        """
        profiles: List[FeatureProfile] = [*self.numeric, *self.categorical]
        for profile in profiles:
            if profile.name == name:
                return profile
        raise KeyError(name)

    def kind_of(self, name: str) -> str:
        """``"numeric"`` when ``name`` has a numeric profile, else ``"categorical"``."""
        return "numeric" if any(p.name == name for p in self.numeric) else "categorical"

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document of the profile (every field, nested profiles as objects)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = BASELINE_FILE) -> MonitoringBaseline:
        """Parses and validates a profile document.

        Raises:
            BaselineError: a wrong format version, a missing field or inconsistent bins, naming the feature.
        """
        if not isinstance(data, Mapping):
            raise BaselineError(f"{where}: not a JSON object")
        if data.get("format_version") != FORMAT_VERSION:
            raise BaselineError(
                f"{where}: unsupported format_version {data.get('format_version')!r} (expected {FORMAT_VERSION})"
            )
        try:
            numeric = [NumericProfile(**p) for p in data["numeric"]]
            categorical = [CategoricalProfile(**p) for p in data["categorical"]]
            score = NumericProfile(**data["score"]) if data.get("score") else None
            baseline = cls(
                feature_order=list(data["feature_order"]),
                numeric=numeric,
                categorical=categorical,
                score=score,
                rows=int(data["rows"]),
                score_rows=int(data.get("score_rows", 0)),
                identity=dict(data.get("identity", {})),
                created_at=str(data.get("created_at", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(f"{where}: malformed profile ({type(exc).__name__}: {exc})") from exc
        validate(baseline, where)
        return baseline


def validate(baseline: MonitoringBaseline, where: str = BASELINE_FILE) -> None:
    """Checks the profile's internal consistency.

    Raises:
        BaselineError: naming the first feature whose bins or counts are inconsistent.
    """
    profiles: List[FeatureProfile] = [*baseline.numeric, *baseline.categorical]
    names = [p.name for p in profiles]
    if sorted(names) != sorted(baseline.feature_order) or len(set(names)) != len(names):
        raise BaselineError(f"{where}: profiles {sorted(names)} do not match feature_order {baseline.feature_order}")
    for profile in [*baseline.numeric, *([baseline.score] if baseline.score else [])]:
        edges = np.asarray(profile.edges, dtype=np.float64)
        if len(profile.counts) != len(edges) + 1:
            raise BaselineError(
                f"{where}: feature {profile.name!r} has {len(edges)} edges but {len(profile.counts)} counts"
            )
        if edges.size and (not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0)):
            raise BaselineError(f"{where}: feature {profile.name!r}: bin edges must be finite and increasing")
        if min([*profile.counts, profile.missing]) < 0:
            raise BaselineError(f"{where}: feature {profile.name!r} has a negative count")
    for cat in baseline.categorical:
        if len(cat.values) != len(cat.counts) or len(set(cat.values)) != len(cat.values):
            raise BaselineError(f"{where}: feature {cat.name!r}: values and counts differ in length or repeat")
        if min([*cat.counts, cat.other, cat.missing, 0]) < 0:
            raise BaselineError(f"{where}: feature {cat.name!r} has a negative count")
    if baseline.rows < 1:
        raise BaselineError(f"{where}: built from {baseline.rows} rows")


# --------------------------------------------------------------------------- building
def numeric_profile(name: str, values: np.ndarray, bins: int = DEFAULT_BINS) -> NumericProfile:
    """The profile of one numeric column (float64 values, non-finite ones count as missing)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    edges = quantile_edges(finite, bins)
    return NumericProfile(
        name=name,
        edges=[float(e) for e in edges],
        counts=[int(c) for c in bin_counts(finite, edges)],
        missing=int(values.size - finite.size),
        mean=float(finite.mean()) if finite.size else 0.0,
        std=float(finite.std()) if finite.size else 0.0,
    )


def category_key(value: Any) -> str:
    """Canonical string of a categorical value, as the preprocessing spec keys it ("" means missing)."""
    from kfpkit.core.preprocessing import _category_key

    return _category_key(value)


def categorical_profile(name: str, values: Sequence[Any], top_k: int = DEFAULT_TOP_K) -> CategoricalProfile:
    """The profile of one categorical column of raw values."""
    from collections import Counter

    counts: Dict[str, int] = {}
    missing = 0
    raw = Counter(values)  # distinct raw values first (C speed), then their canonical keys
    for value, count in raw.items():
        key = category_key(value)
        if key == "":
            missing += count
        else:
            counts[key] = counts.get(key, 0) + count
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    top = ordered[:top_k]
    return CategoricalProfile(
        name=name,
        values=[k for k, _ in top],
        counts=[c for _, c in top],
        other=int(sum(c for _, c in ordered[top_k:])),
        missing=missing,
    )


def build_baseline(
    frame: Any,
    spec: Any,
    eval_scores: Optional[np.ndarray] = None,
    bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
) -> MonitoringBaseline:
    """Builds the profile of the training rows.

    Args:
        frame: The training split (pandas DataFrame with the spec's feature columns).
        spec: The fitted :class:`~kfpkit.core.preprocessing.PreprocessingSpec`.
        eval_scores: Calibrated positive-class probabilities of the eval split (``None``: no score profile).
        bins: Quantile bins per numeric feature (and for the score).
        top_k: Values kept per categorical feature.

    Raises:
        BaselineError: a feature of the spec is not in ``frame``.
    """
    missing = [c for c in spec.feature_order if c not in frame.columns]
    if missing:
        raise BaselineError(f"training data lacks feature column(s) {missing}")
    numeric = [
        numeric_profile(name, frame[name].to_numpy(dtype="float64", na_value=np.nan), bins)
        for name in spec.numeric_names
    ]
    categorical = [categorical_profile(name, frame[name].tolist(), top_k) for name in spec.categorical_names]
    score = None
    if eval_scores is not None:
        score = numeric_profile("score", np.asarray(eval_scores, dtype=np.float64), bins)
    return MonitoringBaseline(
        feature_order=list(spec.feature_order),
        numeric=numeric,
        categorical=categorical,
        score=score,
        rows=len(frame),
        score_rows=0 if eval_scores is None else len(eval_scores),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def build_baseline_from_parquet(
    path: str, spec: Any, eval_scores: Optional[np.ndarray] = None, bins: int = DEFAULT_BINS, top_k: int = DEFAULT_TOP_K
) -> MonitoringBaseline:
    """:func:`build_baseline` of a Parquet training split, reading only the spec's feature columns."""
    import pyarrow.parquet as pq

    frame = pq.read_table(path, columns=list(spec.feature_order)).to_pandas()
    return build_baseline(frame, spec, eval_scores, bins, top_k)


# --------------------------------------------------------------------------- files
def model_identity(model_dir: str) -> Dict[str, str]:
    """``{file: sha256}`` of the identity files present in a model directory."""
    from kfpkit.core.model_dir import sha256_file

    return {
        name: sha256_file(os.path.join(model_dir, name))
        for name in IDENTITY_FILES
        if os.path.isfile(os.path.join(model_dir, name))
    }


def write_baseline(model_dir: str, baseline: MonitoringBaseline) -> str:
    """Writes ``monitoring_baseline.json`` into ``model_dir`` (after the model files: it records their sha256).

    Returns:
        The written path.
    """
    from kfpkit.core.publish import publish_json

    baseline.identity = model_identity(model_dir)
    validate(baseline)
    path = os.path.join(model_dir, BASELINE_FILE)
    publish_json(path, _finite(baseline.to_dict()))
    return path


def read_baseline(model_dir: str) -> MonitoringBaseline:
    """Reads and validates the profile of a local model directory.

    Raises:
        BaselineError: the file is missing, not JSON, or malformed.
    """
    path = os.path.join(model_dir, BASELINE_FILE)
    if not os.path.isfile(path):
        raise BaselineError(
            f"{model_dir}: no {BASELINE_FILE}; the model was trained before monitoring baselines existed, "
            "retrain it to monitor it"
        )
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: cannot read the monitoring baseline: {exc}") from exc
    return MonitoringBaseline.from_dict(data, where=path)


def check_matches_model_dir(baseline: MonitoringBaseline, model_dir: str) -> None:
    """Refuses a profile built for other model files than those in ``model_dir``.

    Raises:
        BaselineError: naming the file whose sha256 differs.
    """
    actual = model_identity(model_dir)
    for name, digest in sorted(baseline.identity.items()):
        if actual.get(name) != digest:
            raise BaselineError(
                f"{model_dir}: {BASELINE_FILE} belongs to another model version ({name} sha256 "
                f"{digest[:12]}... in the baseline, {str(actual.get(name))[:12]}... in the directory)"
            )
    if not baseline.identity:
        raise BaselineError(f"{model_dir}: {BASELINE_FILE} names no model files; it cannot be matched")


def _finite(document: Any) -> Any:
    if isinstance(document, float):
        return document if math.isfinite(document) else None
    if isinstance(document, dict):
        return {k: _finite(v) for k, v in document.items()}
    if isinstance(document, list):
        return [_finite(v) for v in document]
    return document
