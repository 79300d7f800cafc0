"""kfp-free logic of the validate component: checks the three splits, runs the TFDV work in the TFDV interpreter.

Two interpreters, one code path. The component body runs in the main environment locally
(``kfp.local`` runs every task with the ``.venv`` python) and in the ``kfpkit-tfdv`` image, where python
IS the TFDV environment. Either way :func:`run_validation` starts the TFDV work as a subprocess::

    <tfdv_python> -m kfpkit.components.validate.tfdv_main --request request.json --result result.json

so the same code computes the statistics in both places, and the main environment never imports
TensorFlow or TFDV. The interpreter is resolved at run time by :func:`resolve_tfdv_python`. The request and
the result are the typed records of :mod:`kfpkit.components.validate.exchange`.

The subprocess writes every output into a private work folder; this module adds the anomalies JSON and the
Markdown report and publishes every file at once with
:func:`kfpkit.core.publish.publish_together`: on any error no output is left behind.

Only the standard library, pyarrow, :mod:`kfpkit.core.publish`, :mod:`kfpkit.core.records` and the exchange
records (both environments have them) are used here.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from kfpkit.components.validate import report as report_lib
from kfpkit.components.validate.exchange import (
    SPLITS,
    SplitInput,
    TfdvFailure,
    TfdvOutputs,
    TfdvRequest,
    TfdvResult,
    read_outcome,
)
from kfpkit.core.publish import publish_together
from kfpkit.core.records import RecordError, write_record

logger = logging.getLogger(__name__)

TFDV_PYTHON_ENV = "KFPKIT_TFDV_PYTHON"
TFDV_MAIN_MODULE = "kfpkit.components.validate.tfdv_main"
SKEW_PAIRS = ("train/eval", "train/test")
SPLIT_KEYS = (*SPLITS, *SKEW_PAIRS)  # where an anomaly is seen: a split (schema) or a split pair (skew)

# Numeric skew: the Jensen-Shannon *distance* (base 2) on quantile bins of train, kfpkit's comparator shared with
# the drift monitor (kfpkit.core.numeric_shift), whose default threshold it keeps: a shift of half a standard
# deviation in the mean of a normal feature is a distance of about 0.2; random splits of one table stay below
# the noise floor (numeric_skew.py). Categorical skew: TFDV's L-infinity distance with Vertex AI Model
# Monitoring's backend default, "If None is passed, all feature will be monitored using alert threshold 0.3"
# (google-cloud-aiplatform, aiplatform/model_monitoring/objective.py, SkewDetectionConfig).
DEFAULT_NUMERIC_JS_THRESHOLD = 0.1
DEFAULT_CATEGORICAL_LINF_THRESHOLD = 0.3

NUMERIC_SKEW_METRIC = "Jensen-Shannon distance, base 2, on quantile bins of train"
NUMERIC_SKEW_ALPHA = 1e-6  # kfpkit.core.distances.DEFAULT_ALPHA (this module does not import numpy)

TRAINING = "TRAINING"
SERVING = "SERVING"

# File names inside the directory artifacts.
BASELINE_STATS_FILE = "train_stats.pb"
BASELINE_SCHEMA_FILE = "schema.pbtxt"
ANOMALIES_JSON_FILE = "anomalies.json"
TRAIN_ANOMALIES_FILE = "train_anomalies.pbtxt"
EVAL_ANOMALIES_FILE = "eval_anomalies.pbtxt"
TEST_ANOMALIES_FILE = "test_anomalies.pbtxt"
TRAIN_TEST_SKEW_FILE = "train_test_skew.pbtxt"
ANOMALIES_FILES = (TRAIN_ANOMALIES_FILE, EVAL_ANOMALIES_FILE, TEST_ANOMALIES_FILE, TRAIN_TEST_SKEW_FILE)

STATS_FORMAT = "tfdv.DatasetFeatureStatisticsList"
SCHEMA_FORMAT = "tensorflow_metadata.Schema"
ANOMALIES_FORMAT = "tensorflow_metadata.Anomalies"

STDERR_TAIL_LINES = 40
DATASET_KEY = "__dataset__"  # key of dataset-level anomalies in the {feature: description} map


class ValidateError(ValueError):
    """Bad validate input (file, column, threshold, schema, interpreter) or a failed TFDV subprocess.

    The message names the offending file, column, parameter or interpreter. When it is raised, no output
    has been written.
    """


class DataValidationFailed(ValidateError):
    """The data has anomalies and ``fail_on_anomalies`` is set. Every output was written before raising.

    Attributes:
        result: The :class:`ValidationResult` (anomalies, skew, per-feature summary).
    """

    def __init__(self, message: str, result: ValidationResult):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class OutputPaths:
    """Where the outputs go: local paths (the KFP artifacts' ``.path``).

    ``train_statistics``/``eval_statistics``/``test_statistics``/``schema``/``report`` are files,
    ``anomalies`` and ``baseline`` directories. Parent directories are created when missing.
    """

    train_statistics: str
    eval_statistics: str
    test_statistics: str
    schema: str
    anomalies: str
    baseline: str
    report: str


@dataclass
class ValidationResult:
    """What :func:`run_validation` found and wrote.

    Attributes:
        passed: No schema anomaly on any split and no train/eval or train/test skew above its threshold.
        anomaly_count: Number of features (keys of ``anomalies``) with at least one anomaly.
        anomalies: ``{feature: description}``; descriptions are prefixed with where the anomaly was seen
            (``train:``, ``eval:``, ``test:``, ``train/eval skew:``, ``train/test skew:``); dataset-level
            anomalies use ``__dataset__``.
        anomalies_by_split: ``{split: [feature, ...]}`` for every split and split pair of ``SPLIT_KEYS``
            (empty lists when clean), so a reader sees at once which split is affected.
        details: One entry per anomaly reason: ``split`` ("train" | "eval" | "test" for schema anomalies,
            "train/eval" | "train/test" for skew), ``check`` ("schema" | "skew"), ``feature``, ``type``
            (TFDV ``AnomalyInfo.Type`` name), ``short_description``, ``description``, ``severity``.
        skew: One entry per compared feature and split pair: ``feature``, ``splits`` ("train/eval" |
            "train/test"), ``metric`` ("jensen_shannon_distance" for numeric features, kfpkit's comparator |
            "l_infinity" for categorical ones, TFDV's), ``value``, ``threshold``, ``exceeded``, and for the JS
            distance ``noise_floor``, ``bins`` and ``rows`` (see
            :class:`~kfpkit.components.validate.exchange.SkewMeasurement`).
        features: Per-feature summary of the three splits (type, missing %, min/mean/max or top values).
        num_examples: ``{"train": n, "eval": m, "test": k}``.
        schema_source: ``"inferred"`` or the curated schema's path/URI.
        environments: The schema's environments; ``eval_environment``: the one eval was validated in (test
            is always validated in TRAINING: evaluate needs its label).
        statistics_mode: ``"in-memory"`` or ``"beam"``.
        thresholds: The default thresholds, the per-feature ones given, the numeric metric's exact name and
            the false-alarm probability ``numeric_skew_alpha`` of its noise floor.
        timings: Seconds per step of the TFDV subprocess (``import``, ``statistics``, ``schema``,
            ``numeric_skew``, ``validate``, ``write``) plus ``subprocess`` (its wall time) and ``total``.
        metadata: ``{output name: artifact metadata}`` for the component to attach.
    """

    passed: bool
    anomaly_count: int
    anomalies: Dict[str, str]
    anomalies_by_split: Dict[str, List[str]]
    details: List[Dict[str, Any]]
    skew: List[Dict[str, Any]]
    features: List[Dict[str, Any]]
    num_examples: Dict[str, int]
    schema_source: str
    environments: List[str]
    eval_environment: str
    statistics_mode: str
    thresholds: Dict[str, Any]
    timings: Dict[str, float] = field(default_factory=dict)
    metadata: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> Dict[str, Any]:
        """The JSON written as ``anomalies.json`` (everything but the artifact metadata)."""
        out = asdict(self)
        out.pop("metadata")
        return out


# --------------------------------------------------------------------------------------------------
# The TFDV interpreter


def _repo_tfdv_python() -> str:
    """``<checkout>/.venv-tfdv/bin/python`` of the kfpkit source checkout this module was imported from."""
    import kfpkit.components

    checkout = os.path.dirname(os.path.dirname(os.path.abspath(kfpkit.components.__file__)))
    return os.path.join(checkout, ".venv-tfdv", "bin", "python")


def resolve_tfdv_python(explicit: Optional[str] = None) -> str:
    """The interpreter of the TFDV environment, resolved at run time.

    Order: ``explicit`` → the ``KFPKIT_TFDV_PYTHON`` environment variable (``kfpkit run --tfdv-python``
    sets it) → ``sys.executable`` when TFDV is importable there (the ``kfpkit-tfdv`` image) →
    ``.venv-tfdv/bin/python`` of the kfpkit source checkout (``make setup`` creates it).

    Raises:
        ValidateError: the chosen interpreter does not exist, or none was found (the message says how to
            create one).
    """
    for origin, candidate in (("tfdv_python", explicit), (TFDV_PYTHON_ENV, os.environ.get(TFDV_PYTHON_ENV))):
        if candidate:
            if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
                raise ValidateError(f"{origin}={candidate!r} is not an executable file (the TFDV interpreter)")
            return candidate
    if importlib.util.find_spec("tensorflow_data_validation") is not None:
        return sys.executable
    repo_python = _repo_tfdv_python()
    if os.path.isfile(repo_python) and os.access(repo_python, os.X_OK):
        return repo_python
    raise ValidateError(
        "no TFDV interpreter found: TFDV is not importable in this interpreter "
        f"({sys.executable}), {TFDV_PYTHON_ENV} is not set and {repo_python} does not exist. "
        "Create the TFDV environment with `make setup` (installs requirements/tfdv.lock into .venv-tfdv), "
        f"or point {TFDV_PYTHON_ENV} (`kfpkit run --tfdv-python PATH`) at a python that has "
        "tensorflow-data-validation 1.16 and kfpkit installed."
    )


# --------------------------------------------------------------------------------------------------
# Input checks (cheap, in this interpreter, before the TFDV interpreter starts)


def _tfdv_can_describe(arrow_type: Any) -> bool:
    """Whether TFDV's canonicalization (``tfx_bsl`` ``CanonicalizeRecordBatch``) accepts an Arrow type."""
    import pyarrow as pa

    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_dictionary(arrow_type):
        return _tfdv_can_describe(arrow_type.value_type)
    return any(
        check(arrow_type)
        for check in (
            pa.types.is_integer,
            pa.types.is_floating,
            pa.types.is_boolean,
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_binary,
            pa.types.is_large_binary,
            pa.types.is_null,
        )
    )


def _parquet_columns(split: str, path: str) -> Tuple[int, List[str]]:
    import pyarrow.parquet as pq

    if not os.path.exists(path):
        raise ValidateError(f"{split}: {path} does not exist")
    if os.path.isdir(path):
        raise ValidateError(f"{split}: {path} is a directory; expected ONE Parquet file (the Dataset contract)")
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise ValidateError(f"{split}: {path} is not a readable Parquet file ({exc})") from exc
    rows = parquet.metadata.num_rows
    if rows == 0:
        raise ValidateError(f"{split}: {path} has no rows: there is nothing to validate")
    for arrow_field in parquet.schema_arrow:
        if not _tfdv_can_describe(arrow_field.type):
            raise ValidateError(
                f"{split}: column {arrow_field.name!r} of {path} has Arrow type {arrow_field.type}, which TFDV "
                "cannot describe; store it as a number, bool or string (ingest writes int64/float64/string columns)"
            )
    return rows, list(parquet.schema_arrow.names)


def _check_threshold(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValidateError(f"{name} must be a finite number >= 0 (1.0 or more disables the check), got {value!r}")
    return float(value)


def _has_scheme(uri: str) -> bool:
    head = uri.split("://", 1)[0] if "://" in uri else ""
    return bool(head) and head.isalnum() and head != "file"


@dataclass(frozen=True)
class CheckedInputs:
    """What :func:`_check_inputs` established about the inputs.

    Attributes:
        num_rows: ``{split: rows}`` from the Parquet footers.
        schema_location: The curated schema's local file or URI, or ``None`` (inferred).
        skew_thresholds: ``{feature: threshold}``, every value a checked float.
    """

    num_rows: Dict[str, int]
    schema_location: Optional[str]
    skew_thresholds: Dict[str, float]


def _check_inputs(
    *,
    paths: Mapping[str, str],
    label_column: str,
    curated_schema_path: Optional[str],
    curated_schema_uri: Optional[str],
    skew_thresholds: Optional[Mapping[str, float]],
    default_numeric_js_threshold: float,
    default_categorical_linf_threshold: float,
    eval_environment: str,
    beam_pipeline_args: Optional[Sequence[str]],
) -> CheckedInputs:
    """Checks every input in this interpreter, before the TFDV one starts; raises ValidateError naming it."""
    if not label_column:
        raise ValidateError("label_column must be a non-empty column name")
    rows, columns = _check_splits(paths)
    train_path, train_columns = paths["train"], columns["train"]
    if label_column not in train_columns:
        raise ValidateError(
            f"label column {label_column!r} is not in train_data {train_path} (columns: {', '.join(train_columns)})"
        )
    _check_threshold("default_numeric_js_threshold", default_numeric_js_threshold)
    _check_threshold("default_categorical_linf_threshold", default_categorical_linf_threshold)
    thresholds = _check_skew_thresholds(skew_thresholds, label_column, train_path, train_columns)
    if not eval_environment:
        raise ValidateError("eval_environment must name a schema environment, e.g. 'TRAINING' or 'SERVING'")
    if beam_pipeline_args is not None and not all(isinstance(a, str) for a in beam_pipeline_args):
        raise ValidateError(f"beam_pipeline_args must be a list of strings, got {beam_pipeline_args!r}")
    schema_location = _schema_location(curated_schema_path, curated_schema_uri, eval_environment)
    return CheckedInputs(rows, schema_location, thresholds)


def _check_splits(paths: Mapping[str, str]) -> Tuple[Dict[str, int], Dict[str, List[str]]]:
    """``({split: rows}, {split: columns})`` of the three Parquet files, each checked."""
    rows, columns = {}, {}
    for split in SPLITS:
        rows[split], columns[split] = _parquet_columns(f"{split}_data", paths[split])
    return rows, columns


def _check_skew_thresholds(
    skew_thresholds: Optional[Mapping[str, float]], label_column: str, train_path: str, train_columns: Sequence[str]
) -> Dict[str, float]:
    """The per-feature skew thresholds, checked: features of train, not the label, finite and >= 0."""
    thresholds = {}
    for feature, value in (skew_thresholds or {}).items():
        if feature == label_column:
            raise ValidateError(
                f"skew_thresholds: {feature!r} is the label column; the label has no skew check "
                "(it is absent at serving time)"
            )
        if feature not in train_columns:
            raise ValidateError(
                f"skew_thresholds: {feature!r} is not a column of train_data {train_path} "
                f"(columns: {', '.join(train_columns)})"
            )
        thresholds[feature] = _check_threshold(f"skew_thresholds[{feature!r}]", value)
    return thresholds


def _schema_location(
    curated_schema_path: Optional[str], curated_schema_uri: Optional[str], eval_environment: str
) -> Optional[str]:
    """The curated schema's local file (a folder resolved to its ``schema.pbtxt``) or URI, or ``None``.

    Also checks ``eval_environment`` against an inferred schema's two environments (a curated schema may
    define more; the TFDV work checks it against that schema).
    """
    if curated_schema_path and curated_schema_uri:
        raise ValidateError("give the curated schema as an artifact or as a URI, not both")
    schema_location = curated_schema_path or curated_schema_uri
    if not schema_location:
        if eval_environment not in (TRAINING, SERVING):
            raise ValidateError(f"eval_environment must be {TRAINING!r} or {SERVING!r}, got {eval_environment!r}")
        return None
    local = schema_location[len("file://") :] if schema_location.startswith("file://") else schema_location
    if _has_scheme(local):
        return schema_location
    if not os.path.exists(local):
        raise ValidateError(f"curated schema {schema_location} does not exist")
    if os.path.isdir(local):
        local = os.path.join(local, BASELINE_SCHEMA_FILE)
        if not os.path.isfile(local):
            raise ValidateError(f"curated schema {schema_location} is a directory without {BASELINE_SCHEMA_FILE}")
    return local


# --------------------------------------------------------------------------------------------------
# The subprocess


def _child_env(tfdv_python: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONHOME", None)
    if os.path.abspath(tfdv_python) != os.path.abspath(sys.executable):
        # The main environment's import path must not leak into the TFDV interpreter (protobuf 6 vs 4).
        env.pop("PYTHONPATH", None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hides the C++ CUDA-plugin noise, not Python errors
    env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_tfdv_subprocess(tfdv_python: str, request: TfdvRequest, workdir: str) -> TfdvResult:
    """Runs ``tfdv_main`` on ``request``; streams its stderr to ours; returns its result.

    Raises:
        ValidateError: the TFDV work reported bad input (its message), or failed (its stderr's last lines).
    """
    request_path = os.path.join(workdir, "request.json")
    result_path = os.path.join(workdir, "result.json")
    write_record(request_path, request)
    command = [tfdv_python, "-m", TFDV_MAIN_MODULE, "--request", request_path, "--result", result_path]
    logger.info("validate: running the TFDV work in %s", tfdv_python)
    tail: Deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    try:
        proc = subprocess.Popen(
            command,
            stdout=None,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=_child_env(tfdv_python),
            cwd=workdir,
        )
    except OSError as exc:
        raise ValidateError(f"could not start the TFDV interpreter {tfdv_python}: {exc}") from exc
    assert proc.stderr is not None
    for line in proc.stderr:
        sys.stderr.write(line)
        tail.append(line.rstrip("\n"))
    returncode = proc.wait()
    sys.stderr.flush()
    outcome = _read_outcome(result_path, returncode)
    if isinstance(outcome, TfdvFailure):
        raise ValidateError(outcome.error)
    if returncode != 0 or outcome is None:
        raise _subprocess_failure(tfdv_python, returncode, "\n".join(tail))
    return outcome


def _read_outcome(path: str, returncode: int) -> Optional[Union[TfdvResult, TfdvFailure]]:
    """The outcome the TFDV work wrote; ``None`` when it wrote none, or an unreadable one and failed anyway."""
    if not os.path.exists(path):
        return None
    try:
        return read_outcome(path)
    except RecordError as exc:
        if returncode != 0:
            return None  # the stderr of the failed process says more than its broken result
        raise ValidateError(f"the TFDV subprocess wrote an invalid result: {exc}") from exc


def _subprocess_failure(tfdv_python: str, returncode: int, stderr_tail: str) -> ValidateError:
    """The error of a TFDV subprocess that failed without a result, with a hint for the usual causes."""
    hint = ""
    if "No module named 'kfpkit" in stderr_tail:
        hint = (
            f"\nkfpkit is not installed in {tfdv_python}: run "
            f"`{tfdv_python} -m pip install --no-deps -e <kfpkit checkout>` (make setup does)."
        )
    elif "No module named 'tensorflow_data_validation'" in stderr_tail or "No module named 'tensorflow'" in stderr_tail:
        hint = f"\n{tfdv_python} has no TFDV: point {TFDV_PYTHON_ENV} at the TFDV environment (make setup)."
    return ValidateError(
        f"the TFDV subprocess ({tfdv_python} -m {TFDV_MAIN_MODULE}) failed with exit code {returncode}. "
        f"Last lines of its stderr:\n{stderr_tail}{hint}"
    )


# --------------------------------------------------------------------------------------------------
# Publishing


def _staged_files(staged: str, final: str) -> List[Tuple[str, bytes]]:
    """``(final path, bytes)`` of a file the TFDV work wrote, or of every file in a folder it wrote."""
    if os.path.isdir(staged):
        return [
            item
            for name in sorted(os.listdir(staged))
            for item in _staged_files(os.path.join(staged, name), os.path.join(final, name))
        ]
    with open(staged, "rb") as fh:
        return [(final, fh.read())]


def _json_bytes(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


def _anomaly_map(details: Sequence[Mapping[str, Any]]) -> Dict[str, str]:
    """``{feature: "train: ...; test: ...; train/test skew: ..."}`` from the per-reason details."""
    grouped: Dict[str, List[str]] = collections.OrderedDict()
    for item in details:
        label = f"{item['split']} skew" if item["check"] == "skew" else item["split"]
        text = f"{label}: {item['description'] or item['short_description']}".rstrip()
        grouped.setdefault(item["feature"], [])
        if text not in grouped[item["feature"]]:
            grouped[item["feature"]].append(text)
    return {feature: "; ".join(texts) for feature, texts in sorted(grouped.items())}


def anomalies_by_split(details: Sequence[Mapping[str, Any]]) -> Dict[str, List[str]]:
    """``{split or split pair: sorted features with an anomaly there}`` for every key of ``SPLIT_KEYS``."""
    out: Dict[str, List[str]] = {key: [] for key in SPLIT_KEYS}
    for item in details:
        features = out.setdefault(item["split"], [])
        if item["feature"] not in features:
            features.append(item["feature"])
    return {key: sorted(features) for key, features in out.items()}


def failure_message(result: ValidationResult, report_path: Optional[str] = None) -> str:
    """The readable message of :class:`DataValidationFailed`."""
    lines = [
        f"data validation failed: {result.anomaly_count} feature(s) with anomalies "
        f"(fail_on_anomalies=True; train {result.num_examples.get('train')} rows, "
        f"eval {result.num_examples.get('eval')} rows, test {result.num_examples.get('test')} rows):"
    ]
    lines += [f"  - {feature}: {description}" for feature, description in result.anomalies.items()]
    if report_path:
        lines.append(f"Report: {report_path}")
    return "\n".join(lines)


def run_validation(
    train_path: str,
    eval_path: str,
    test_path: str,
    label_column: str,
    outputs: OutputPaths,
    *,
    train_uri: Optional[str] = None,
    eval_uri: Optional[str] = None,
    test_uri: Optional[str] = None,
    curated_schema_path: Optional[str] = None,
    curated_schema_uri: Optional[str] = None,
    skew_thresholds: Optional[Mapping[str, float]] = None,
    default_numeric_js_threshold: float = DEFAULT_NUMERIC_JS_THRESHOLD,
    default_categorical_linf_threshold: float = DEFAULT_CATEGORICAL_LINF_THRESHOLD,
    eval_environment: str = TRAINING,
    fail_on_anomalies: bool = False,
    beam_pipeline_args: Optional[Sequence[str]] = None,
    tfdv_python: Optional[str] = None,
) -> ValidationResult:
    """Validates the train, eval and test splits with TFDV; writes statistics, schema, anomalies, baseline, report.

    Statistics of the three splits are computed in-process (``beam_pipeline_args`` is None) or by one Beam
    pipeline with those options (DirectRunner, Dataflow, Flink, Spark). The schema is ``curated_schema_*``
    or inferred from the training statistics; it gets the environments TRAINING and SERVING, the label
    is marked absent in SERVING, and every other feature is compared for skew: numeric features by
    kfpkit's comparator (the Jensen-Shannon distance on quantile bins of train, against ``max(threshold,
    noise floor of the two split sizes)``: :mod:`kfpkit.components.validate.numeric_skew`), categorical
    ones by TFDV's L-infinity distance, with ``skew_thresholds`` overriding the defaults per feature. The
    train split is validated in TRAINING, the eval split in ``eval_environment``, the test split in
    TRAINING (evaluate needs its label); skew is measured train↔eval and train↔test with the same
    comparators.

    Args:
        train_path: Local path of the training Parquet file.
        eval_path: Local path of the eval Parquet file.
        test_path: Local path of the test Parquet file.
        label_column: The label column (required in TRAINING, absent in SERVING, no skew check).
        outputs: Where the outputs go.
        train_uri: URI of the training data; the Beam path reads it instead of ``train_path`` when it is
            an object-store URI (``gs://``, ``s3://``...), so remote workers can reach it.
        eval_uri: Same for the eval data.
        test_uri: Same for the test data.
        curated_schema_path: Local path of a curated schema (text proto, or a directory with ``schema.pbtxt``
            such as a previous ``baseline`` output).
        curated_schema_uri: The same as a URI (``gs://...`` or a local path); not together with
            ``curated_schema_path``.
        skew_thresholds: ``{feature: threshold}`` overriding the default skew threshold of those features.
        default_numeric_js_threshold: Jensen-Shannon distance threshold of numeric features (the noise floor
            of the split sizes raises it on small splits).
        default_categorical_linf_threshold: L-infinity distance threshold of categorical features.
        eval_environment: Schema environment the eval split is validated in (``TRAINING``: the label must be
            present; ``SERVING``: the label must be absent).
        fail_on_anomalies: Raise :class:`DataValidationFailed` (after writing every output) on anomalies.
        beam_pipeline_args: None for the in-process statistics; else Beam pipeline options
            (``["--runner=DataflowRunner", "--project=...", ...]``; ``[]`` is the DirectRunner).
        tfdv_python: The TFDV interpreter (default: :func:`resolve_tfdv_python`).

    Returns:
        The :class:`ValidationResult`.

    Raises:
        ValidateError: bad input or a failed TFDV subprocess; no output was written.
        DataValidationFailed: anomalies found with ``fail_on_anomalies``; every output was written.
    """
    paths = {"train": train_path, "eval": eval_path, "test": test_path}
    checked = _check_inputs(
        paths=paths,
        label_column=label_column,
        curated_schema_path=curated_schema_path,
        curated_schema_uri=curated_schema_uri,
        skew_thresholds=skew_thresholds,
        default_numeric_js_threshold=default_numeric_js_threshold,
        default_categorical_linf_threshold=default_categorical_linf_threshold,
        eval_environment=eval_environment,
        beam_pipeline_args=beam_pipeline_args,
    )
    python = resolve_tfdv_python(tfdv_python)
    workdir = tempfile.mkdtemp(prefix="kfpkit-validate-")
    try:
        staged = _staged_paths(workdir)
        request = TfdvRequest(
            train=SplitInput(os.path.abspath(train_path), train_uri),
            eval=SplitInput(os.path.abspath(eval_path), eval_uri),
            test=SplitInput(os.path.abspath(test_path), test_uri),
            label_column=label_column,
            curated_schema=checked.schema_location,
            skew_thresholds=checked.skew_thresholds,
            default_numeric_js_threshold=float(default_numeric_js_threshold),
            default_categorical_linf_threshold=float(default_categorical_linf_threshold),
            eval_environment=eval_environment,
            beam_pipeline_args=list(beam_pipeline_args) if beam_pipeline_args is not None else None,
            outputs=_tfdv_outputs(staged),
        )
        started = time.perf_counter()
        result = _validate_in_subprocess(python, request, checked, workdir)
        _publish(result, staged, outputs)
        result.timings["total"] = round(time.perf_counter() - started, 3)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    verdict = "passed" if result.passed else "FAILED"
    logger.info("validate: %s (%d feature(s) with anomalies)", verdict, result.anomaly_count)
    if fail_on_anomalies and not result.passed:
        raise DataValidationFailed(failure_message(result, outputs.report), result)
    return result


def _staged_paths(workdir: str) -> Dict[str, str]:
    """``{output name: path in the work folder}`` of every output the TFDV work writes (all but the report)."""
    return {f.name: os.path.join(workdir, "out", f.name) for f in fields(OutputPaths) if f.name != "report"}


def _tfdv_outputs(staged: Mapping[str, str]) -> TfdvOutputs:
    return TfdvOutputs(
        train_statistics=staged["train_statistics"],
        eval_statistics=staged["eval_statistics"],
        test_statistics=staged["test_statistics"],
        schema=staged["schema"],
        anomalies_dir=staged["anomalies"],
        baseline_dir=staged["baseline"],
    )


def _validate_in_subprocess(
    python: str, request: TfdvRequest, checked: CheckedInputs, workdir: str
) -> ValidationResult:
    """Runs the TFDV work in ``workdir`` and turns its result into the :class:`ValidationResult`."""
    started = time.perf_counter()
    raw = _run_tfdv_subprocess(python, request, workdir)
    subprocess_s = time.perf_counter() - started
    result = _build_result(raw, checked.num_rows, checked.schema_location, request)
    result.timings["subprocess"] = round(subprocess_s, 3)
    result.metadata = _artifact_metadata(result)
    return result


def _publish(result: ValidationResult, staged: Mapping[str, str], outputs: OutputPaths) -> None:
    """Publishes what the TFDV work wrote, the anomalies JSON and the report together (all or none)."""
    finals = asdict(outputs)
    files = [item for name, path in staged.items() for item in _staged_files(path, finals[name])]
    files.append((os.path.join(finals["anomalies"], ANOMALIES_JSON_FILE), _json_bytes(result.to_json())))
    files.append((finals["report"], report_lib.render_markdown(result.to_json()).encode("utf-8")))
    publish_together(files)


def _build_result(
    raw: TfdvResult, num_rows: Mapping[str, int], schema_location: Optional[str], request: TfdvRequest
) -> ValidationResult:
    """The :class:`ValidationResult` of the TFDV work's result (details and skew as plain dicts)."""
    details = [asdict(reason) for reason in raw.anomalies]
    anomalies = _anomaly_map(details)
    return ValidationResult(
        passed=not anomalies,
        anomaly_count=len(anomalies),
        anomalies=anomalies,
        anomalies_by_split=anomalies_by_split(details),
        details=details,
        skew=[asdict(measurement) for measurement in raw.skew],
        features=list(raw.features),
        num_examples=dict(raw.num_examples or num_rows),
        schema_source=schema_location or "inferred",
        environments=list(raw.environments),
        eval_environment=request.eval_environment,
        statistics_mode=raw.statistics_mode,
        thresholds={
            "default_numeric_js_threshold": request.default_numeric_js_threshold,
            "default_categorical_linf_threshold": request.default_categorical_linf_threshold,
            "skew_thresholds": dict(request.skew_thresholds),
            "numeric_metric": NUMERIC_SKEW_METRIC,
            "numeric_skew_alpha": NUMERIC_SKEW_ALPHA,
        },
        timings=dict(raw.timings),
    )


def _statistics_metadata(result: ValidationResult, split: str) -> Dict[str, Any]:
    return {
        "format": STATS_FORMAT,
        "encoding": "binary-proto",
        "split": split,
        "num_examples": result.num_examples.get(split),
        "schema_source": result.schema_source,
        "statistics_mode": result.statistics_mode,
    }


def _artifact_metadata(result: ValidationResult) -> Dict[str, Dict[str, Any]]:
    return {
        **{f"{split}_statistics": _statistics_metadata(result, split) for split in SPLITS},
        "schema": {
            "format": SCHEMA_FORMAT,
            "encoding": "text-proto",
            "environments": list(result.environments),
            "schema_source": result.schema_source,
        },
        "anomalies": {
            "format": ANOMALIES_FORMAT,
            "files": [*ANOMALIES_FILES, ANOMALIES_JSON_FILE],
            "passed": result.passed,
            "anomaly_count": result.anomaly_count,
            "anomalies": dict(result.anomalies),
            "anomalies_by_split": {split: list(features) for split, features in result.anomalies_by_split.items()},
            "eval_environment": result.eval_environment,
        },
        "baseline": {
            "files": [BASELINE_STATS_FILE, BASELINE_SCHEMA_FILE],
            "statistics_format": STATS_FORMAT,
            "schema_format": SCHEMA_FORMAT,
            "num_examples": result.num_examples.get("train"),
            "schema_source": result.schema_source,
        },
        "report": {"format": "markdown", "passed": result.passed, "anomaly_count": result.anomaly_count},
    }
