"""KFP component: validate the train, eval and test splits with TensorFlow Data Validation."""

from typing import Dict, List, Optional

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Output

from kfpkit.components import images


@dsl.component(base_image=images.tfdv_image(), install_kfp_package=False)
def validate(
    train_data: Input[Dataset],
    eval_data: Input[Dataset],
    test_data: Input[Dataset],
    label_column: str,
    train_statistics: Output[Artifact],
    eval_statistics: Output[Artifact],
    test_statistics: Output[Artifact],
    schema: Output[Artifact],
    anomalies: Output[Artifact],
    baseline: Output[Artifact],
    report: Output[Markdown],
    curated_schema: Optional[Input[Artifact]] = None,
    curated_schema_uri: Optional[str] = None,
    skew_thresholds: Optional[Dict[str, float]] = None,
    default_numeric_js_threshold: float = 0.1,
    default_categorical_linf_threshold: float = 0.3,
    eval_environment: str = "TRAINING",
    fail_on_anomalies: bool = False,
    beam_pipeline_args: Optional[List[str]] = None,
) -> bool:
    """Computes TFDV statistics of the three splits, checks each against a schema and train↔eval, train↔test skew.

    The TFDV work runs in the TFDV interpreter as a subprocess, the same code path in the ``kfpkit-tfdv``
    image (its own python) and locally (``KFPKIT_TFDV_PYTHON``, else ``.venv-tfdv/bin/python``). The
    schema is the curated one or is inferred from the training statistics; it gets the environments
    TRAINING and SERVING with the label absent in SERVING. The train and test splits are validated in
    TRAINING (evaluate needs the test label), the eval split in ``eval_environment``; train/eval and
    train/test skew are measured per feature (except the label): numeric features by the Jensen-Shannon
    distance on quantile bins of train against ``max(threshold, noise floor of the two split sizes)`` (the
    drift monitor's comparator), categorical ones by TFDV's L-infinity distance. Every anomaly is reported
    with the split (or split pair) it was seen in. With anomalies the task still succeeds, with ``passed=False``, unless
    ``fail_on_anomalies`` is set. Bad input (missing file or label column, empty split, unknown threshold
    feature) fails the task with one clear message.

    Args:
        train_data: Training split: ONE Parquet file, label column int64 0/1.
        eval_data: Eval split: ONE Parquet file with the same columns.
        test_data: Test split: ONE Parquet file with the same columns, label included.
        label_column: Label column: required in the TRAINING environment, absent in SERVING, never
            compared for skew.
        train_statistics: TFDV ``DatasetFeatureStatisticsList`` of the train split, a binary proto file;
            metadata ``format``, ``split``, ``num_examples``.
        eval_statistics: The same for the eval split.
        test_statistics: The same for the test split.
        schema: The schema (``tensorflow_metadata`` ``Schema`` text proto) with environments TRAINING and
            SERVING and TFDV's skew comparators (categorical features; numeric ones are compared by kfpkit).
        anomalies: Directory with ``train_anomalies.pbtxt`` (train split and train/eval skew),
            ``eval_anomalies.pbtxt``, ``test_anomalies.pbtxt``, ``train_test_skew.pbtxt`` (text protos) and
            ``anomalies.json``; metadata ``passed``, ``anomaly_count``, ``anomalies`` ``{feature:
            description}`` (each description prefixed with its split) and ``anomalies_by_split``.
        baseline: Monitoring baseline: a directory with ``train_stats.pb`` (training statistics, binary
            proto) and ``schema.pbtxt``; push stores it under ``<version>/baseline/``.
        report: Markdown report: verdict, anomalies by split, skew per feature and split pair,
            per-feature summary (type, missing %, min/mean/max or top values) of the three splits.
        curated_schema: Curated schema to validate against instead of inferring one: a ``Schema`` text
            proto file, or a directory holding ``schema.pbtxt`` (e.g. a previous ``baseline``).
        curated_schema_uri: The curated schema as a URI (``gs://...`` or a local path); not together
            with ``curated_schema``.
        skew_thresholds: Per-feature skew thresholds ``{feature: threshold}`` overriding the defaults
            (1.0 or more disables the check of that feature).
        default_numeric_js_threshold: Jensen-Shannon distance (base 2) threshold of numeric features, the
            drift monitor's default 0.1; on small splits the noise floor of their sizes is the limit.
        default_categorical_linf_threshold: L-infinity distance threshold of categorical features (Vertex
            AI Model Monitoring's default 0.3).
        eval_environment: Schema environment the eval split is validated in: TRAINING (the label must be
            present) or SERVING (the label must be absent, e.g. a batch of serving data).
        fail_on_anomalies: Fail the task on anomalies (after writing every output) instead of returning
            ``passed=False``.
        beam_pipeline_args: None computes the statistics in-process; a list runs TFDV's Beam pipeline
            with these options (``[]``: DirectRunner; e.g. ``["--runner=DataflowRunner", "--project=P",
            "--region=R", "--temp_location=gs://B/tmp", "--sdk_container_image=IMAGE"]``).

    Returns:
        Whether the data passed: True when no split has an anomaly and no feature's train/eval or
        train/test skew exceeds its threshold. A plain ``bool`` (``Output``), so that
        ``dsl.If(task.outputs["Output"] == True)`` works on every backend, kfp.local included; the anomaly
        count is in the anomalies artifact's metadata.
    """
    from kfpkit.components.validate.logic import OutputPaths, run_validation

    result = run_validation(
        train_path=train_data.path,
        eval_path=eval_data.path,
        test_path=test_data.path,
        label_column=label_column,
        outputs=OutputPaths(
            train_statistics=train_statistics.path,
            eval_statistics=eval_statistics.path,
            test_statistics=test_statistics.path,
            schema=schema.path,
            anomalies=anomalies.path,
            baseline=baseline.path,
            report=report.path,
        ),
        train_uri=train_data.uri,
        eval_uri=eval_data.uri,
        test_uri=test_data.uri,
        curated_schema_path=curated_schema.path if curated_schema is not None else None,
        curated_schema_uri=curated_schema_uri or None,
        skew_thresholds=skew_thresholds,
        default_numeric_js_threshold=default_numeric_js_threshold,
        default_categorical_linf_threshold=default_categorical_linf_threshold,
        eval_environment=eval_environment,
        fail_on_anomalies=fail_on_anomalies,
        beam_pipeline_args=beam_pipeline_args,
    )
    for artifact, name in (
        (train_statistics, "train_statistics"),
        (eval_statistics, "eval_statistics"),
        (test_statistics, "test_statistics"),
        (schema, "schema"),
        (anomalies, "anomalies"),
        (baseline, "baseline"),
        (report, "report"),
    ):
        artifact.metadata.update(result.metadata[name])
    return result.passed
