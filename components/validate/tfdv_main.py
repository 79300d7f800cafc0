"""The TFDV work of the validate component: ``python -m kfpkit.components.validate.tfdv_main --request R --result S``.

Runs ONLY in the TFDV interpreter (the ``kfpkit-tfdv`` image's python, or ``.venv-tfdv`` locally), started
by :func:`kfpkit.components.validate.logic.run_validation`; this module and
:mod:`kfpkit.components.validate.tfdv_stats` are the only ones that import TFDV.

The request is a :class:`~kfpkit.components.validate.exchange.TfdvRequest` written by ``run_validation``;
the result a :class:`~kfpkit.components.validate.exchange.TfdvResult` (exit code 0), or a
:class:`~kfpkit.components.validate.exchange.TfdvFailure` for bad input (exit code 2: a request of another
version or with a bad field, a curated schema that cannot be read, an unknown environment). Anything
unexpected exits 1 with a traceback on stderr.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union  # noqa: E402

import tensorflow_data_validation as tfdv  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2  # noqa: E402

from kfpkit.components.validate import logic, numeric_skew, tfdv_stats  # noqa: E402
from kfpkit.components.validate.exchange import (  # noqa: E402
    AnomalyReason,
    SkewMeasurement,
    TfdvFailure,
    TfdvOutputs,
    TfdvRequest,
    TfdvResult,
)
from kfpkit.core.records import RecordError, read_record  # noqa: E402

_IMPORTED = time.perf_counter()

NUMERIC = "numeric"
CATEGORICAL = "categorical"
JS = "jensen_shannon_divergence"
LINF = "l_infinity"
TOP_VALUES = 5
DATA_MISSING_TYPES = ("COMPARATOR_CONTROL_DATA_MISSING", "COMPARATOR_TREATMENT_DATA_MISSING")


class RequestError(ValueError):
    """Bad input found by the TFDV work; reported as ``{"ok": false, "error": ...}``."""


def _log(message: str) -> None:
    print(f"[kfpkit.validate] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Schema


def _read_text(location: str) -> str:
    if os.path.exists(location):
        with open(location, encoding="utf-8") as fh:
            return fh.read()
    from apache_beam.io.filesystems import FileSystems

    candidates = [location, location.rstrip("/") + "/" + logic.BASELINE_SCHEMA_FILE]
    for candidate in candidates:
        try:
            if FileSystems.exists(candidate):
                with FileSystems.open(candidate) as fh:
                    return fh.read().decode("utf-8")
        except Exception as exc:  # e.g. an unknown scheme or missing credentials
            raise RequestError(f"curated schema {location} could not be read: {exc}") from exc
    raise RequestError(f"curated schema {location} does not exist")


def load_curated_schema(location: str) -> schema_pb2.Schema:
    """The curated schema at ``location`` (a text proto file, local or remote)."""
    text = _read_text(location)
    try:
        return text_format.Parse(text, schema_pb2.Schema())
    except text_format.ParseError as exc:
        raise RequestError(f"curated schema {location} is not a tensorflow_metadata Schema text proto: {exc}") from exc


def _feature_name(stats_feature: statistics_pb2.FeatureNameStatistics) -> str:
    return ".".join(stats_feature.path.step) if stats_feature.path.step else stats_feature.name


def feature_kinds(stats: statistics_pb2.DatasetFeatureStatisticsList) -> Dict[str, str]:
    """``{feature: "numeric" | "categorical"}`` from which statistics TFDV computed for each feature."""
    kinds = {}
    for feature in stats.datasets[0].features:
        kinds[_feature_name(feature)] = NUMERIC if feature.WhichOneof("stats") == "num_stats" else CATEGORICAL
    return kinds


def in_environment(feature: schema_pb2.Feature, environment: str) -> bool:
    """TFDV's rule: ``in_environment`` lists the only environments, ``not_in_environment`` the excluded ones."""
    if feature.in_environment:
        return environment in feature.in_environment
    return environment not in feature.not_in_environment


def prepare_schema(
    schema: schema_pb2.Schema,
    *,
    train_stats: statistics_pb2.DatasetFeatureStatisticsList,
    label_column: str,
    skew_thresholds: Mapping[str, float],
    default_js: float,
    default_linf: float,
    eval_environment: str,
    curated: bool,
) -> Tuple[schema_pb2.Schema, Dict[str, float]]:
    """Adds the environments and the skew comparators to ``schema`` (in place); returns it and the numeric thresholds.

    * environments TRAINING and SERVING are added to ``default_environment`` when missing; the label is
      marked ``not_in_environment: SERVING`` unless the schema already places it in environments;
    * the label never gets a skew comparator;
    * every other feature present in the training statistics and in both TRAINING and ``eval_environment``
      is compared, with its threshold from ``skew_thresholds``, else, for a curated schema that already has
      a comparator on it, that comparator's threshold, else the default: a categorical feature gets TFDV's
      L-infinity comparator; a numeric feature gets none (TFDV's approximate JS divergence raises false
      alarms on random splits) and is returned in ``{feature: threshold}`` for kfpkit's JS-distance
      comparator (:mod:`kfpkit.components.validate.numeric_skew`).
    """
    for environment in (logic.TRAINING, logic.SERVING):
        if environment not in schema.default_environment:
            schema.default_environment.append(environment)
    if eval_environment not in schema.default_environment:
        raise RequestError(
            f"eval_environment {eval_environment!r} is not an environment of the schema "
            f"({', '.join(schema.default_environment)})"
        )
    names = {feature.name for feature in schema.feature}
    unknown = sorted(set(skew_thresholds) - names)
    if unknown:
        raise RequestError(f"skew_thresholds name features that are not in the schema: {', '.join(unknown)}")
    kinds = feature_kinds(train_stats)
    numeric: Dict[str, float] = {}
    for feature in schema.feature:
        if feature.name == label_column:
            if not feature.in_environment and logic.SERVING not in feature.not_in_environment:
                feature.not_in_environment.append(logic.SERVING)
            feature.ClearField("skew_comparator")
            continue
        kind = kinds.get(feature.name)
        compared = kind is not None and in_environment(feature, logic.TRAINING)
        if not (compared and in_environment(feature, eval_environment)):
            feature.ClearField("skew_comparator")
            continue
        threshold = skew_thresholds.get(feature.name, default_js if kind == NUMERIC else default_linf)
        if feature.name not in skew_thresholds and curated and feature.HasField("skew_comparator"):
            threshold = _comparator_threshold(feature.skew_comparator, threshold)
        feature.ClearField("skew_comparator")
        if kind == NUMERIC:
            numeric[feature.name] = threshold
        else:
            feature.skew_comparator.infinity_norm.threshold = threshold
    return schema, numeric


def _comparator_threshold(comparator: schema_pb2.FeatureComparator, default: float) -> float:
    """The threshold of a curated comparator (L-infinity, else JS divergence), or ``default`` when it has none."""
    for field in ("infinity_norm", "jensen_shannon_divergence"):
        if comparator.HasField(field):
            return float(getattr(comparator, field).threshold)
    return default


# --------------------------------------------------------------------------------------------------
# Anomalies, skew, summaries


def _skew_wording(text: str, compared: str) -> str:
    """TFDV's skew messages say "serving" for the compared split (eval or test here) and "training" for train."""
    return (
        text.replace("between training and serving", f"between train and {compared}")
        .replace("serving data is missing", f"{compared} data is missing")
        .replace("training data is missing", "train data is missing")
    )


def anomaly_details(
    anomalies: anomalies_pb2.Anomalies, split: str, compared: Optional[str] = None
) -> List[AnomalyReason]:
    """One reason per anomaly reason of validating ``split``.

    Comparator (skew) reasons against the ``compared`` split are tagged ``check: skew``,
    ``split: "<split>/<compared>"``.
    """
    out = []
    infos: List[Tuple[str, anomalies_pb2.AnomalyInfo]] = sorted(anomalies.anomaly_info.items())
    if anomalies.HasField("dataset_anomaly_info"):
        infos.append((logic.DATASET_KEY, anomalies.dataset_anomaly_info))
    for feature, info in infos:
        for reason in info.reason:
            type_name = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
            skew = type_name.startswith("COMPARATOR_")
            short, description = reason.short_description, reason.description
            if skew:
                short, description = _skew_wording(short, str(compared)), _skew_wording(description, str(compared))
            out.append(
                AnomalyReason(
                    split=f"{split}/{compared}" if skew else split,
                    check="skew" if skew else "schema",
                    feature=feature,
                    type=type_name,
                    short_description=short,
                    description=description.strip(),
                    severity=anomalies_pb2.AnomalyInfo.Severity.Name(info.severity),
                )
            )
    return out


def merge_details(*validations: Sequence[AnomalyReason]) -> List[AnomalyReason]:
    """Schema reasons (in the order of ``validations``), then skew reasons.

    A skew "data missing" reason is dropped when a schema anomaly already reports the missing column.
    """
    reasons = [d for validation in validations for d in validation]
    schema_reasons = [d for d in reasons if d.check == "schema"]
    flagged = {d.feature for d in schema_reasons}
    skew = [d for d in reasons if d.check == "skew"]
    return schema_reasons + [d for d in skew if not (d.type in DATA_MISSING_TYPES and d.feature in flagged)]


def skew_measurements(anomalies: anomalies_pb2.Anomalies, splits: str) -> List[SkewMeasurement]:
    """The raw skew measurement of every compared feature between ``splits`` (e.g. ``"train/test"``).

    TFDV records them even below the threshold.
    """
    Measurement = anomalies_pb2.DriftSkewInfo.Measurement
    names = {Measurement.JENSEN_SHANNON_DIVERGENCE: JS, Measurement.L_INFTY: LINF}
    out = []
    for info in anomalies.drift_skew_info:
        for measurement in info.skew_measurements:
            out.append(
                SkewMeasurement(
                    feature=".".join(info.path.step),
                    splits=splits,
                    metric=names.get(measurement.type) or Measurement.Type.Name(measurement.type),
                    value=float(measurement.value),
                    threshold=float(measurement.threshold),
                    exceeded=bool(measurement.value > measurement.threshold),
                )
            )
    return sorted(out, key=lambda item: item.feature)


def _split_summary(feature: statistics_pb2.FeatureNameStatistics, num_examples: int) -> Dict[str, Any]:
    kind = feature.WhichOneof("stats")
    if kind == "num_stats":
        stats = feature.num_stats
        common = stats.common_stats
        summary = {
            "kind": NUMERIC,
            "min": stats.min,
            "mean": stats.mean,
            "max": stats.max,
            "std_dev": stats.std_dev,
        }
    elif kind == "string_stats":
        stats = feature.string_stats
        common = stats.common_stats
        non_missing = common.num_non_missing or 1
        summary = {
            "kind": CATEGORICAL,
            "unique": stats.unique,
            "top_values": [
                [top.value, round(100.0 * top.frequency / non_missing, 2)] for top in stats.top_values[:TOP_VALUES]
            ],
        }
    else:
        return {"kind": kind or "unknown", "missing_pct": None}
    if common.num_non_missing == 0 and kind == "num_stats":
        summary.update({"min": None, "mean": None, "max": None, "std_dev": None})
    summary["missing_pct"] = round(100.0 * common.num_missing / num_examples, 3) if num_examples else None
    return summary


def feature_summaries(stats: Mapping[str, statistics_pb2.DatasetFeatureStatisticsList]) -> List[Dict[str, Any]]:
    """Type, missing % and min/mean/max or top values of every feature of any split, per split."""
    by_split: Dict[str, Dict[str, statistics_pb2.FeatureNameStatistics]] = {}
    examples = {}
    for split, split_stats in stats.items():
        dataset = split_stats.datasets[0]
        examples[split] = dataset.num_examples
        by_split[split] = {_feature_name(f): f for f in dataset.features}
    names: List[str] = []
    for features in by_split.values():
        names += [name for name in features if name not in names]
    out = []
    for name in names:
        entry: Dict[str, Any] = {"name": name}
        for split in stats:
            feature = by_split[split].get(name)
            if feature is not None and "type" not in entry:
                entry["type"] = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
            entry[split] = _split_summary(feature, examples[split]) if feature is not None else None
        out.append(entry)
    return out


# --------------------------------------------------------------------------------------------------
# Outputs


def _write_bytes(path: str, payload: bytes) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(payload)


def _write_text(path: str, payload: str) -> None:
    _write_bytes(path, payload.encode("utf-8"))


def write_outputs(
    outputs: TfdvOutputs,
    *,
    stats: Mapping[str, statistics_pb2.DatasetFeatureStatisticsList],
    schema: schema_pb2.Schema,
    anomalies: Mapping[str, anomalies_pb2.Anomalies],
) -> None:
    """Statistics (binary protos), schema and anomalies (text protos) and the baseline directory.

    ``stats`` is keyed by split, ``anomalies`` by file name in the anomalies directory.
    """
    schema_text = text_format.MessageToString(schema)
    for split, split_stats in stats.items():
        _write_bytes(outputs.statistics(split), split_stats.SerializeToString())
    _write_text(outputs.schema, schema_text)
    for name, message in anomalies.items():
        _write_text(os.path.join(outputs.anomalies_dir, name), text_format.MessageToString(message))
    _write_bytes(os.path.join(outputs.baseline_dir, logic.BASELINE_STATS_FILE), stats["train"].SerializeToString())
    _write_text(os.path.join(outputs.baseline_dir, logic.BASELINE_SCHEMA_FILE), schema_text)


# --------------------------------------------------------------------------------------------------
# Main


def compute_statistics(
    request: TfdvRequest, options: tfdv.StatsOptions
) -> Tuple[Dict[str, statistics_pb2.DatasetFeatureStatisticsList], str]:
    """Statistics of the three splits, in-process or with Beam; returns them and the mode name."""
    args = request.beam_pipeline_args
    if args is None:
        stats = {}
        for split in logic.SPLITS:
            started = time.perf_counter()
            stats[split] = tfdv_stats.in_memory_statistics(request.split(split).path, options)
            seconds = time.perf_counter() - started
            _log(f"{split}: {stats[split].datasets[0].num_examples} rows, in-memory statistics in {seconds:.2f} s")
        return stats, "in-memory"
    locations = {
        split: tfdv_stats.data_location(request.split(split).path, request.split(split).uri) for split in logic.SPLITS
    }
    _log(f"Beam statistics of {locations} with pipeline args {args}")
    return tfdv_stats.beam_statistics(locations, options, args), "beam"


@contextlib.contextmanager
def _timed(timings: Dict[str, float], step: str) -> Iterator[None]:
    """Records the seconds the ``with`` block took as ``timings[step]``."""
    started = time.perf_counter()
    yield
    timings[step] = round(time.perf_counter() - started, 3)


def build_schema(
    request: TfdvRequest,
    train_stats: statistics_pb2.DatasetFeatureStatisticsList,
    curated: Optional[schema_pb2.Schema],
) -> Tuple[schema_pb2.Schema, Dict[str, float]]:
    """The curated schema (a copy) or one inferred from ``train_stats``, prepared by :func:`prepare_schema`.

    Returns:
        The schema and ``{numeric feature: JS-distance threshold}`` of the numeric features to compare.
    """
    if curated is not None:
        schema = schema_pb2.Schema()
        schema.CopyFrom(curated)
    else:
        schema = tfdv.infer_schema(train_stats)
    return prepare_schema(
        schema,
        train_stats=train_stats,
        label_column=request.label_column,
        skew_thresholds=request.skew_thresholds,
        default_js=request.default_numeric_js_threshold,
        default_linf=request.default_categorical_linf_threshold,
        eval_environment=request.eval_environment,
        curated=curated is not None,
    )


@dataclass
class Validations:
    """TFDV's anomalies of the three splits and of the train/test comparison, and kfpkit's numeric skew."""

    train: anomalies_pb2.Anomalies  # TRAINING, with the train/eval skew
    eval: anomalies_pb2.Anomalies  # eval_environment
    test: anomalies_pb2.Anomalies  # TRAINING
    train_test: anomalies_pb2.Anomalies  # train against test: its skew only (its schema reasons repeat train's)

    def files(self) -> Dict[str, anomalies_pb2.Anomalies]:
        """``{file name in the anomalies folder: anomalies}``."""
        return {
            logic.TRAIN_ANOMALIES_FILE: self.train,
            logic.EVAL_ANOMALIES_FILE: self.eval,
            logic.TEST_ANOMALIES_FILE: self.test,
            logic.TRAIN_TEST_SKEW_FILE: self.train_test,
        }

    numeric: List[SkewMeasurement]  # kfpkit's JS distance of the numeric features, train/eval and train/test

    def details(self) -> List[AnomalyReason]:
        """Every anomaly reason: schema reasons of train, eval and test, then the skew reasons."""
        train_test_skew = [d for d in anomaly_details(self.train_test, "train", "test") if d.check == "skew"]
        return merge_details(
            anomaly_details(self.train, "train", "eval"),
            anomaly_details(self.eval, "eval"),
            anomaly_details(self.test, "test"),
            train_test_skew,
            numeric_skew.anomaly_reasons(self.numeric),
        )

    def skew(self) -> List[SkewMeasurement]:
        """The train/eval and train/test skew measurements (TFDV's and kfpkit's), by feature then split pair."""
        skew = skew_measurements(self.train, "train/eval") + skew_measurements(self.train_test, "train/test")
        return sorted([*skew, *self.numeric], key=lambda item: (item.feature, item.splits))


def validate_splits(
    stats: Mapping[str, statistics_pb2.DatasetFeatureStatisticsList],
    schema: schema_pb2.Schema,
    eval_environment: str,
    numeric: Optional[List[SkewMeasurement]] = None,
) -> Validations:
    """Validates every split against the schema and measures the train/eval and train/test skew.

    Train in TRAINING with the train/eval skew, eval in ``eval_environment``, test in TRAINING (evaluate
    needs the label), then train against test for the train/test skew (TFDV's comparators: the categorical
    features). ``numeric`` is kfpkit's numeric skew (:func:`kfpkit.components.validate.numeric_skew.measure`).
    """
    train = stats["train"]
    return Validations(
        numeric=list(numeric or []),
        train=tfdv.validate_statistics(train, schema, environment=logic.TRAINING, serving_statistics=stats["eval"]),
        eval=tfdv.validate_statistics(stats["eval"], schema, environment=eval_environment),
        test=tfdv.validate_statistics(stats["test"], schema, environment=logic.TRAINING),
        train_test=tfdv.validate_statistics(
            train, schema, environment=logic.TRAINING, serving_statistics=stats["test"]
        ),
    )


def run(request: TfdvRequest) -> TfdvResult:
    """Does the TFDV work of one request: statistics, schema, validation, outputs; returns the result.

    Raises:
        RequestError: bad input found here (the curated schema, an environment, a skew threshold's feature).
    """
    timings = {"import": round(_IMPORTED - _STARTED, 3)}
    curated = load_curated_schema(request.curated_schema) if request.curated_schema else None
    with _timed(timings, "statistics"):
        options = tfdv.StatsOptions(schema=curated) if curated is not None else tfdv.StatsOptions()
        stats, mode = compute_statistics(request, options)
    with _timed(timings, "schema"):
        schema, numeric_thresholds = build_schema(request, stats["train"], curated)
    with _timed(timings, "numeric_skew"):
        paths = {split: request.split(split).path for split in logic.SPLITS}
        numeric = numeric_skew.measure(paths, numeric_thresholds)
    with _timed(timings, "validate"):
        validations = validate_splits(stats, schema, request.eval_environment, numeric)
        details = validations.details()
    with _timed(timings, "write"):
        write_outputs(request.outputs, stats=stats, schema=schema, anomalies=validations.files())
    return TfdvResult(
        anomalies=details,
        skew=validations.skew(),
        features=feature_summaries(stats),
        environments=list(schema.default_environment),
        num_examples={split: stats[split].datasets[0].num_examples for split in logic.SPLITS},
        statistics_mode=mode,
        timings=timings,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Reads the request, does the work, writes the result (or the failure); returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--request", required=True, help="request JSON written by run_validation")
    parser.add_argument("--result", required=True, help="where to write the result JSON")
    args = parser.parse_args(argv)
    try:
        result = run(read_record(args.request, TfdvRequest))
    except (RecordError, RequestError) as exc:
        _write_outcome(args.result, TfdvFailure(error=str(exc)))
        return 2
    _write_outcome(args.result, result)
    return 0


def _write_outcome(path: str, outcome: Union[TfdvResult, TfdvFailure]) -> None:
    """Writes ``outcome`` as JSON in field and split order, with a plain write.

    ``write_record`` would sort the keys, and the report lists the splits in ``num_examples`` order; the parent
    reads the file only after this process has exited, so a plain write is enough.
    """
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(outcome.to_dict(), fh, indent=1)


def _exit_now(code: int) -> None:
    """Exits without interpreter teardown: TensorFlow's takes 1-2 s and every output is already closed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    try:
        exit_code = main()
    except SystemExit as exc:  # argparse
        exit_code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        exit_code = 1
    _exit_now(exit_code)
