"""The training pipeline: ingest → validate → train → evaluate → infra_validate → push.

Splits: ingest hashes every row into train, eval and test. validate checks all three (schema anomalies per
split, skew train↔eval and train↔test); train sees only train and eval (early stopping, calibration and the
decision threshold are chosen on eval); evaluate's metrics, slices and blessing gate use test alone.

Platform-neutral: :func:`build_training_pipeline` binds :func:`training_pipeline` to a
:class:`~kfpkit.pipelines.platforms.Platform` that adds Kubeflow- or Vertex-only settings to the tasks; the
DAG and its parameters are the same on every platform (and under kfp.local). The pipeline function reads
as its steps, one function each: :func:`ingest_and_validate`, :func:`train_candidate`,
:func:`judge_candidate` and :func:`push_when_blessed_and_serving`.
"""

from typing import Any, Callable, Optional, Tuple

from kfp import dsl

from kfpkit.components.evaluate.component import evaluate
from kfpkit.components.infra_validate.component import infra_validate
from kfpkit.components.ingest.component import ingest
from kfpkit.components.push.component import push
from kfpkit.components.train.component import train
from kfpkit.components.validate.component import validate
from kfpkit.pipelines.platforms import LocalPlatform, Platform, platform_pipeline

PIPELINE_NAME = "kfpkit-training"
DESCRIPTION = (
    "Ingest a binary-classification table, validate it with TFDV, train a PyTorch (or "
    "scikit-learn) classifier on the train split (eval for early stopping and calibration), evaluate it "
    "on the held-out test split against the registry's latest blessed model, check it in the real "
    "KServe server and push it to a versioned registry when it is blessed."
)
# A task of the pipeline being built (kfp's PipelineTask); pipeline parameters are kfp PipelineChannels.
Task = Any


def build_training_pipeline(platform: Optional[Platform] = None) -> Any:
    """Returns the training pipeline (a KFP ``GraphComponent``) configured for ``platform``.

    Optional *pipeline* parameters use an empty string for "not set", not ``None``: the Kubeflow UI sends
    empty strings for blank fields and kfp.local cannot run a pipeline whose optional parameters have no
    default value. Components take ``Optional[...] = None`` and read an empty string as unset.
    """
    return platform_pipeline(
        training_pipeline, platform or LocalPlatform(), name=PIPELINE_NAME, description=DESCRIPTION
    )


def training_pipeline(
    platform: Platform,
    registry_root: str,
    source: str,
    label_column: str,
    model_name: str,
    eval_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_key_column: str = "",
    framework: str = "pytorch",
    epochs: int = 0,
    batch_size: int = 0,
    ensemble_members: int = 0,
    learning_rate: float = 0.005,
    weight_decay: float = 0.0001,
    patience: int = 2,
    seed: int = 0,
    checkpoint_dir: str = "",
    min_pr_auc_lift: float = 5.0,
    min_pr_auc: float = 0.0,
    max_regression: float = 0.01,
    max_ece: float = 0.0,
    slice_column: str = "",
    fail_on_anomalies: bool = False,
    curated_schema_uri: str = "",
    infra_latency_budget_ms: float = 50.0,
) -> None:
    """Trains, gates and pushes a binary classifier.

    Args:
        platform: The target platform's task settings (bound by :func:`build_training_pipeline`; not a
            pipeline parameter).
        registry_root: Model registry root (local path, gs:// or s3://); versions go to
            <registry_root>/<model_name>/<version>/.
        source: Data source: synthetic://fraud?rows=N&seed=S&fraud_rate=R&drift=D, a local path,
            file://, gs://, s3:// or http(s):// URI of a CSV, Parquet or JSON Lines file.
        label_column: Binary label column (0/1).
        model_name: Model name in the registry and in KServe (lowercase, digits and '-').
        eval_fraction: Fraction of rows hashed into the eval split (train's early stopping, calibration
            and decision threshold).
        test_fraction: Fraction of rows hashed into the test split (evaluate's metrics and blessing gate
            only; never given to train); train gets the rest.
        split_key_column: Column whose hash decides the split (empty: the row number).
        framework: 'pytorch' (GPU-capable MLP with embeddings) or 'sklearn' (HistGradientBoosting baseline).
        epochs: Maximum training epochs (PyTorch); 0: chosen from the number of training rows.
        batch_size: Training batch size (PyTorch); 0: chosen from the number of training rows.
        ensemble_members: Networks averaged in the exported model (PyTorch); 0: chosen from the number of
            training rows (5 on small tables, 1 above 13,333 rows).
        learning_rate: AdamW learning rate (PyTorch).
        weight_decay: AdamW weight decay (PyTorch).
        patience: Epochs without a lower eval log loss before early stopping (PyTorch).
        seed: Random seed of the split-independent training randomness.
        checkpoint_dir: Durable folder for per-epoch checkpoints; a retried task resumes from it
            (empty: a temporary folder, so a retry starts over).
        min_pr_auc_lift: Blessing floor relative to chance: the candidate's PR-AUC on the test split must
            reach this multiple of the split's positive rate (at most a tenth of the way from chance to 1).
        min_pr_auc: Blessing: an absolute PR-AUC floor on top of the relative one (0: none).
        max_regression: Blessing: largest allowed PR-AUC drop against the latest blessed model, both
            scored on the test split (a paired bootstrap must show a larger drop with 95% confidence).
        max_ece: ECE ceiling of the blessing gate, on the test split; 0 disables.
        slice_column: Categorical column whose values slice the test-split evaluation report (empty: no
            slices).
        fail_on_anomalies: Fail the run on data anomalies instead of skipping training.
        curated_schema_uri: TFDV schema (text proto) to validate against instead of inferring one
            from the train split (empty: infer).
        infra_latency_budget_ms: p99 latency budget of the candidate in the real KServe server.
    """
    train_and_push(
        platform,
        registry_root=registry_root,
        source=source,
        label_column=label_column,
        model_name=model_name,
        eval_fraction=eval_fraction,
        test_fraction=test_fraction,
        split_key_column=split_key_column,
        framework=framework,
        epochs=epochs,
        batch_size=batch_size,
        ensemble_members=ensemble_members,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        patience=patience,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        min_pr_auc_lift=min_pr_auc_lift,
        min_pr_auc=min_pr_auc,
        max_regression=max_regression,
        max_ece=max_ece,
        slice_column=slice_column,
        fail_on_anomalies=fail_on_anomalies,
        curated_schema_uri=curated_schema_uri,
        infra_latency_budget_ms=infra_latency_budget_ms,
    )


def train_and_push(
    platform: Platform,
    *,
    registry_root: Any,
    source: Any,
    label_column: Any,
    model_name: Any,
    eval_fraction: Any,
    test_fraction: Any,
    split_key_column: Any,
    framework: Any,
    epochs: Any,
    batch_size: Any,
    ensemble_members: Any,
    learning_rate: Any,
    weight_decay: Any,
    patience: Any,
    seed: Any,
    checkpoint_dir: Any,
    min_pr_auc_lift: Any,
    min_pr_auc: Any,
    max_regression: Any,
    max_ece: Any,
    slice_column: Any,
    fail_on_anomalies: Any,
    curated_schema_uri: Any,
    infra_latency_budget_ms: Any,
    after_push: Optional[Callable[[Task], None]] = None,
) -> None:
    """The training pipeline's tasks, for :func:`training_pipeline` and the pipelines that extend it.

    Args:
        platform: Adds the platform's settings to every task.
        registry_root: The pipeline parameters of :func:`training_pipeline`, by the same names.
        source: See :func:`training_pipeline`.
        label_column: See :func:`training_pipeline`.
        model_name: See :func:`training_pipeline`.
        eval_fraction: See :func:`training_pipeline`.
        test_fraction: See :func:`training_pipeline`.
        split_key_column: See :func:`training_pipeline`.
        framework: See :func:`training_pipeline`.
        epochs: See :func:`training_pipeline`.
        batch_size: See :func:`training_pipeline`.
        ensemble_members: See :func:`training_pipeline`.
        learning_rate: See :func:`training_pipeline`.
        weight_decay: See :func:`training_pipeline`.
        patience: See :func:`training_pipeline`.
        seed: See :func:`training_pipeline`.
        checkpoint_dir: See :func:`training_pipeline`.
        min_pr_auc_lift: See :func:`training_pipeline`.
        min_pr_auc: See :func:`training_pipeline`.
        max_regression: See :func:`training_pipeline`.
        max_ece: See :func:`training_pipeline`.
        slice_column: See :func:`training_pipeline`.
        fail_on_anomalies: See :func:`training_pipeline`.
        curated_schema_uri: See :func:`training_pipeline`.
        infra_latency_budget_ms: See :func:`training_pipeline`.
        after_push: Called with the push task inside push's conditions (data valid, blessed, serving), to
            add the tasks that consume push's outputs (the continuous-training pipeline's delivery).
    """
    ingest_task, validate_task = ingest_and_validate(
        platform,
        source=source,
        label_column=label_column,
        eval_fraction=eval_fraction,
        test_fraction=test_fraction,
        split_key_column=split_key_column,
        seed=seed,
        fail_on_anomalies=fail_on_anomalies,
        curated_schema_uri=curated_schema_uri,
    )
    with dsl.If(validate_task.outputs["Output"] == True, name="data-valid"):  # noqa: E712
        train_task = train_candidate(
            platform,
            ingest_task,
            label_column=label_column,
            framework=framework,
            epochs=epochs,
            batch_size=batch_size,
            ensemble_members=ensemble_members,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            patience=patience,
            seed=seed,
            checkpoint_dir=checkpoint_dir,
        )
        evaluate_task, infra_task = judge_candidate(
            platform,
            ingest_task,
            train_task,
            label_column=label_column,
            min_pr_auc_lift=min_pr_auc_lift,
            min_pr_auc=min_pr_auc,
            max_regression=max_regression,
            max_ece=max_ece,
            slice_column=slice_column,
            registry_root=registry_root,
            model_name=model_name,
            infra_latency_budget_ms=infra_latency_budget_ms,
        )
        push_when_blessed_and_serving(
            platform,
            validate_task,
            evaluate_task,
            infra_task,
            registry_root,
            model_name,
            after_push=after_push,
        )


def ingest_and_validate(
    platform: Platform,
    *,
    label_column: Any,
    fail_on_anomalies: Any,
    curated_schema_uri: Any,
    **split: Any,
) -> Tuple[Task, Task]:
    """Step 1: ingest the source into three hashed splits, then validate all three with TFDV.

    Args:
        platform: Adds the platform's settings to both tasks.
        label_column: The binary label column.
        fail_on_anomalies: Fail the run on anomalies instead of skipping training.
        curated_schema_uri: A curated TFDV schema (empty: inferred from train).
        **split: ingest's ``source``, ``eval_fraction``, ``test_fraction``, ``split_key_column``, ``seed``.

    Returns:
        (the ingest task, the validate task); validate's ``Output`` says whether the data is valid.
    """
    ingest_task = ingest(label_column=label_column, **split)
    validate_task = validate(
        train_data=ingest_task.outputs["train_data"],
        eval_data=ingest_task.outputs["eval_data"],
        test_data=ingest_task.outputs["test_data"],
        label_column=label_column,
        fail_on_anomalies=fail_on_anomalies,
        curated_schema_uri=curated_schema_uri,
    )
    for task in (ingest_task, validate_task):
        platform.configure_task(task)
    return ingest_task, validate_task


def train_candidate(platform: Platform, ingest_task: Task, **parameters: Any) -> Task:
    """Step 2: train the candidate on the train split, with eval for early stopping, calibration, threshold.

    The test split is never given to train: it stays held out for evaluate.

    Args:
        platform: Adds the platform's training settings (GPU, resources) to the task.
        ingest_task: The task whose splits are trained on.
        **parameters: train's ``label_column``, ``framework`` and hyperparameters.
    """
    train_task = train(
        train_data=ingest_task.outputs["train_data"],
        eval_data=ingest_task.outputs["eval_data"],
        pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        **parameters,
    )
    platform.configure_training(train_task)
    return train_task


def judge_candidate(
    platform: Platform,
    ingest_task: Task,
    train_task: Task,
    *,
    registry_root: Any,
    infra_latency_budget_ms: Any,
    **gate: Any,
) -> Tuple[Task, Task]:
    """Step 3: evaluate the candidate on the test split (the blessing gate) and check it in KServe.

    Args:
        platform: Adds the platform's settings to both tasks.
        ingest_task: The task whose test split evaluate scores and whose eval rows infra_validate sends.
        train_task: The task whose model is judged.
        registry_root: The registry whose latest blessed model is the baseline.
        infra_latency_budget_ms: p99 latency budget in the real KServe server.
        **gate: evaluate's ``label_column``, ``model_name`` and gate parameters.

    Returns:
        (the evaluate task, the infra_validate task); each one's ``Output`` is its verdict.
    """
    evaluate_task = evaluate(
        model=train_task.outputs["model"],
        test_data=ingest_task.outputs["test_data"],
        baseline_registry_root=registry_root,
        **gate,
    )
    infra_task = infra_validate(
        model=train_task.outputs["model"],
        eval_data=ingest_task.outputs["eval_data"],
        latency_budget_ms=infra_latency_budget_ms,
    )
    for task in (evaluate_task, infra_task):
        platform.configure_task(task)
    return evaluate_task, infra_task


def push_when_blessed_and_serving(
    platform: Platform,
    validate_task: Task,
    evaluate_task: Task,
    infra_task: Task,
    registry_root: Any,
    model_name: Any,
    after_push: Optional[Callable[[Task], None]] = None,
) -> None:
    """Step 4: push the model, with validate's baseline, when evaluate blessed it and it served in KServe.

    push takes evaluate's ``evaluated_model`` (train's model directory with the test metrics and their
    intervals in its card), so the registry version carries them. ``after_push`` (when given) is called
    with the push task inside the same conditions.
    """
    with dsl.If(evaluate_task.outputs["Output"] == True, name="model-blessed"):  # noqa: E712
        with dsl.If(infra_task.outputs["Output"] == True, name="model-serves"):  # noqa: E712
            push_task = push(
                model=evaluate_task.outputs["evaluated_model"],
                registry_root=registry_root,
                model_name=model_name,
                baseline=validate_task.outputs["baseline"],
            )
            platform.configure_task(push_task)
            if after_push is not None:
                after_push(push_task)
