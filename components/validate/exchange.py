"""The records validate's two interpreters exchange: the TFDV request, and its result or failure.

:func:`kfpkit.components.validate.logic.run_validation` (main environment) writes a :class:`TfdvRequest`;
``python -m kfpkit.components.validate.tfdv_main`` (the TFDV interpreter) reads it and writes a
:class:`TfdvResult`, or a :class:`TfdvFailure` for bad input it found (exit code 2); the parent reads
either with :func:`read_outcome`. Both sides write with :func:`kfpkit.core.records.write_record`, and every
read checks the kind, the version and each field (errors name the field).

Standard library and :mod:`kfpkit.core.records` only: this module imports in both interpreters (the TFDV one
has protobuf<5, pandas<2 and numpy<2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional, Union

from kfpkit.core.records import Record, RecordError

SPLITS = ("train", "eval", "test")


@dataclass
class SplitInput:
    """One split's data as the TFDV work reads it.

    Attributes:
        path: Local path of the split's Parquet file.
        uri: The split's URI; the Beam path reads it instead of ``path`` when it is an object-store URI.
    """

    path: str
    uri: Optional[str] = None


@dataclass
class TfdvOutputs:
    """Where the TFDV work writes (paths in ``run_validation``'s private work folder).

    Attributes:
        train_statistics: Binary ``DatasetFeatureStatisticsList`` of the train split.
        eval_statistics: The same of the eval split.
        test_statistics: The same of the test split.
        schema: The schema as a text proto.
        anomalies_dir: Folder of the anomalies text protos.
        baseline_dir: Folder of the baseline (training statistics and schema).
    """

    train_statistics: str
    eval_statistics: str
    test_statistics: str
    schema: str
    anomalies_dir: str
    baseline_dir: str

    def statistics(self, split: str) -> str:
        """The statistics path of ``split`` (one of :data:`SPLITS`)."""
        if split not in SPLITS:
            raise KeyError(f"unknown split {split!r}; expected one of {SPLITS}")
        return str(getattr(self, f"{split}_statistics"))


@dataclass
class TfdvRequest(Record):
    """What ``run_validation`` asks the TFDV interpreter to do (checked inputs only).

    Attributes:
        train: The train split.
        eval: The eval split.
        test: The test split.
        label_column: The label column (absent in SERVING, no skew check).
        curated_schema: Path or URI of a curated schema text proto; ``None``: infer it from train.
        skew_thresholds: ``{feature: threshold}`` overriding the defaults.
        default_numeric_js_threshold: Jensen-Shannon *distance* threshold of numeric features (version 1:
            TFDV's approximate JS divergence).
        default_categorical_linf_threshold: L-infinity distance threshold of categorical features.
        eval_environment: Schema environment the eval split is validated in.
        beam_pipeline_args: ``None``: in-process statistics; else the Beam pipeline options.
        outputs: Where the TFDV work writes.
    """

    KIND: ClassVar[str] = "tfdv request"
    VERSION: ClassVar[int] = 2

    train: SplitInput
    eval: SplitInput
    test: SplitInput
    label_column: str
    curated_schema: Optional[str]
    skew_thresholds: Dict[str, float]
    default_numeric_js_threshold: float
    default_categorical_linf_threshold: float
    eval_environment: str
    beam_pipeline_args: Optional[List[str]]
    outputs: TfdvOutputs

    def split(self, name: str) -> SplitInput:
        """The input of split ``name`` (one of :data:`SPLITS`)."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        split: SplitInput = getattr(self, name)
        return split


@dataclass
class AnomalyReason:
    """One reason of one anomaly that TFDV reported.

    Attributes:
        split: ``train``, ``eval`` or ``test`` for schema anomalies; ``train/eval`` or ``train/test`` for skew.
        check: ``schema`` or ``skew``.
        feature: The feature (``__dataset__`` for dataset-level anomalies).
        type: TFDV's ``AnomalyInfo.Type`` name.
        short_description: TFDV's short description (skew wording names the splits).
        description: TFDV's description.
        severity: TFDV's ``AnomalyInfo.Severity`` name.
    """

    split: str
    check: str
    feature: str
    type: str
    short_description: str
    description: str
    severity: str


@dataclass
class SkewMeasurement:
    """The skew of one feature between two splits (recorded even below the threshold).

    Numeric features are measured by kfpkit's comparator (:mod:`kfpkit.core.numeric_shift`, shared with the
    drift monitor), categorical ones by TFDV.

    Attributes:
        feature: The feature.
        splits: ``train/eval`` or ``train/test``.
        metric: ``jensen_shannon_distance`` (numeric: base 2, on quantile bins of train) or ``l_infinity``
            (categorical, TFDV's), else TFDV's measurement type name.
        value: The measured value.
        threshold: The feature's fixed threshold.
        exceeded: ``value > threshold``, or for the JS distance ``value > max(threshold, noise_floor)``.
        noise_floor: The JS distance that sampling noise alone exceeds with probability ``alpha`` for these
            two split sizes (numeric features; ``None`` for TFDV's measurements).
        bins: Non-empty quantile bins of train the distance was measured on (numeric features).
        rows: ``[train values, other split's values]`` compared (finite ones; numeric features).
    """

    feature: str
    splits: str
    metric: str
    value: float
    threshold: float
    exceeded: bool
    noise_floor: Optional[float] = None
    bins: Optional[int] = None
    rows: Optional[List[int]] = None


@dataclass
class TfdvResult(Record):
    """What the TFDV work found and wrote.

    Attributes:
        anomalies: Every anomaly reason: schema reasons first, then skew reasons (TFDV's categorical ones,
            then kfpkit's numeric ones).
        skew: Every skew measurement, by feature and split pair.
        features: Per-feature summary of the three splits (``name``, ``type``, and one entry per split).
        environments: The schema's environments.
        num_examples: ``{split: rows}``.
        statistics_mode: ``in-memory`` or ``beam``.
        timings: Seconds per step (``import``, ``statistics``, ``schema``, ``validate``, ``write``).
    """

    KIND: ClassVar[str] = "tfdv result"
    VERSION: ClassVar[int] = 2  # 2: numeric skew is kfpkit's JS distance with its noise floor

    anomalies: List[AnomalyReason]
    skew: List[SkewMeasurement]
    features: List[Dict[str, Any]]
    environments: List[str]
    num_examples: Dict[str, int]
    statistics_mode: str
    timings: Dict[str, float]


@dataclass
class TfdvFailure(Record):
    """Bad input the TFDV work found (a curated schema that cannot be read, an unknown environment...).

    Attributes:
        error: The message, naming the file, feature or parameter.
    """

    KIND: ClassVar[str] = "tfdv failure"
    VERSION: ClassVar[int] = 1

    error: str


def read_outcome(path: str) -> Union[TfdvResult, TfdvFailure]:
    """Reads what the TFDV work wrote to ``path``: a :class:`TfdvResult` or a :class:`TfdvFailure`.

    Raises:
        RecordError: the file cannot be read, is not JSON, or is not a valid result or failure; the
            message names the file and the field.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            document = json.load(fh)
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: cannot read the TFDV outcome: {exc}") from None
    kind = document.get("record") if isinstance(document, dict) else None
    if kind == TfdvFailure.KIND:
        return TfdvFailure.from_dict(document, where=path)
    return TfdvResult.from_dict(document, where=path)
