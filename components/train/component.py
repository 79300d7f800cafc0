"""KFP component: train a tabular binary classifier and write its model directory."""

from typing import List, Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from kfpkit.components import images


@dsl.component(base_image=images.train_image(), install_kfp_package=False)
def train(
    train_data: Input[Dataset],
    eval_data: Input[Dataset],
    label_column: str,
    model: Output[Model],
    metrics: Output[Metrics],
    framework: str = "pytorch",
    epochs: int = 0,
    batch_size: int = 0,
    learning_rate: float = 0.005,
    weight_decay: float = 0.0001,
    embedding_dim: int = 8,
    hidden_units: int = 128,
    hidden_layers: int = 2,
    dropout: float = 0.1,
    patience: int = 2,
    early_stopping_metric: str = "log_loss",
    ensemble_members: int = 0,
    seed: int = 0,
    max_vocabulary: int = 1000,
    exclude_columns: Optional[List[str]] = None,
    checkpoint_dir: Optional[str] = None,
    pipeline_run: Optional[str] = None,
):
    """Trains a binary classifier on the train split, calibrates it on eval and writes a model directory.

    Fits the shared preprocessing (standardized numerics, categorical vocabularies with an unknown bucket)
    on the train split, then trains either a PyTorch MLP with categorical embeddings (plain BCE, AdamW,
    batch size, epochs and, on small tables, an averaged ensemble of networks chosen from the row count
    unless set, early stopping on eval log loss, bf16 autocast and device-resident data on CUDA, a
    checkpoint after every epoch) exported as TorchScript, or
    a HistGradientBoosting baseline saved with skops. Platt scaling fitted on the eval split (cross-fitted
    over train and eval when eval holds fewer than 100 rows of a class) is stored as calibration.json and
    applied by every reader of the model directory (evaluate, infra_validate, serving), so the served
    probability is calibrated. The decision threshold is the one that maximizes F1 on the calibrated eval
    probabilities. The test split is never read here. The directory is built beside ``model.path`` and
    renamed into place, so it is complete or absent.

    Args:
        train_data: Training split: one Parquet file with the label and the feature columns.
        eval_data: Eval split (same columns): early stopping, calibration, decision threshold and the
            card's eval metrics.
        label_column: Binary 0/1 label column.
        model: Output model directory (model.pt or model.skops, preprocessing.json, calibration.json,
            model_card.json); metadata: framework, decision_threshold, calibration, metrics (eval),
            label_column.
        metrics: Output eval-split metrics of the calibrated model: pr_auc, roc_auc, brier_score, log_loss,
            ece, f1, decision_threshold, best_epoch, rows_per_second; metadata ``split`` ("eval").
        framework: "pytorch" (MLP, TorchScript) or "sklearn" (HistGradientBoosting baseline, skops).
        epochs: Maximum passes over the train split (pytorch); 0: chosen from the number of training rows
            (enough passes to show the optimizer about 560k rows, 4 to 200).
        batch_size: Rows per optimizer step (pytorch); 0: chosen from the number of training rows (the largest
            power of two from 32 to 4096 with at least 16 steps per epoch); raise it (16384+) on a GPU.
        learning_rate: AdamW learning rate (pytorch).
        weight_decay: AdamW weight decay (pytorch).
        embedding_dim: Embedding width of every categorical feature (pytorch).
        hidden_units: Width of every hidden layer (pytorch).
        hidden_layers: Number of hidden layers (pytorch).
        dropout: Dropout probability after every hidden layer (pytorch).
        patience: Epochs without a better eval early_stopping_metric before stopping; 0 never stops early
            (pytorch).
        early_stopping_metric: What early stopping watches on eval: "log_loss" (default, lower is better) or
            "pr_auc" / "roc_auc" (higher is better); the best epoch's weights are exported (pytorch).
        ensemble_members: Networks trained from different seeds whose logits the exported model averages
            (pytorch); 0: chosen from the number of training rows (round(20000 / rows) within 1 to 5: 5 up to
            4,444 training rows, a single network above 13,333).
        seed: Seed of initialization, shuffling and dropout (and of sklearn's early-stopping split).
        max_vocabulary: Most frequent values kept per categorical feature; rarer ones use the unknown bucket.
        exclude_columns: Columns that are not features (timestamps, leakage); names absent from the data are
            ignored. Identifier-like categoricals (more distinct values than half the rows, e.g.
            "transaction_id") are left out without being listed. Unset: every other column is a feature.
        checkpoint_dir: Durable folder (PVC or gcsfuse path) for per-epoch checkpoints; a retry resumes
            from it. Unset: checkpoints go to a temporary folder and a retry starts over.
        pipeline_run: Pipeline run name or id recorded in the model card.
    """
    import logging

    from kfpkit.components.train.logic import TrainParams, train_model

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    params = TrainParams(
        framework=framework,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        embedding_dim=embedding_dim,
        hidden_units=hidden_units,
        hidden_layers=hidden_layers,
        dropout=dropout,
        patience=patience,
        early_stopping_metric=early_stopping_metric,
        ensemble_members=ensemble_members,
        seed=seed,
        max_vocabulary=max_vocabulary,
        exclude_columns=list(exclude_columns) if exclude_columns else None,
    )
    result = train_model(
        train_path=train_data.path,
        eval_path=eval_data.path,
        label_column=label_column,
        output_dir=model.path,
        params=params,
        checkpoint_dir=checkpoint_dir,
        pipeline_run=pipeline_run,
        source_uri=train_data.metadata.get("source_uri"),
    )
    model.metadata.update(
        {
            "framework": result.framework,
            "decision_threshold": result.decision_threshold,
            "calibration": result.calibration.method,
            "metrics": {"eval": result.metrics},
            "label_column": label_column,
        }
    )
    for name in ("pr_auc", "roc_auc", "brier_score", "log_loss", "ece", "f1", "best_epoch", "rows_per_second"):
        metrics.log_metric(name, result.metrics[name])
    metrics.log_metric("decision_threshold", result.decision_threshold)
    metrics.metadata["split"] = "eval"
