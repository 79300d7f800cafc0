"""KFP component: serve the candidate in the KServe ModelServer app and check it before push."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Model, Output

from kfpkit.components import images


@dsl.component(base_image=images.serving_image(), install_kfp_package=False)
def infra_validate(
    model: Input[Model],
    eval_data: Input[Dataset],
    report: Output[Markdown],
    tolerance: float = 1e-4,
    latency_budget_ms: float = 50.0,
    num_requests: int = 200,
    batch_size: int = 16,
) -> bool:
    """Loads the candidate into the KServe ModelServer app with the kfpkit predictor and checks it.

    The candidate directory is copied to a temporary folder and given a sha256 manifest there (the input
    artifact is not modified), then loaded by the predictor with manifest verification, exactly as
    ``kfpkit serve`` loads a pushed version. The server app is driven in-process through
    ``httpx.ASGITransport``: readiness, the v2 metadata (must list the model's features), 4xx answers to
    malformed requests, v1 and v2 predictions on the first eval rows (at most 1000) compared with the
    model's offline ``predict_proba`` (what evaluate computes; labels must equal ``probability >=
    decision_threshold``), and the p99 latency of ``num_requests`` sequential v2 requests. A model that
    cannot be loaded or fails a check is not infra-blessed; the reasons are in the report.

    Args:
        model: The candidate model directory written by train (model file, preprocessing.json,
            calibration.json, model_card.json).
        eval_data: The eval split: one Parquet file with the raw features (other columns are ignored).
        report: Markdown report: verdict, every check with its result and detail, the reasons of a
            failure.
        tolerance: Largest allowed absolute difference between served and offline probabilities.
        latency_budget_ms: Largest allowed p99 latency, in milliseconds, of one v2 request of
            ``batch_size`` rows (in-process, no network).
        num_requests: Number of sequential v2 requests of the latency measurement (1 to 100000).
        batch_size: Rows per request, for the comparison and the latency measurement.

    Returns:
        Whether the candidate loaded and passed every check (infra-blessed). A plain ``bool``
        (``Output``), so that ``dsl.If(task.outputs["Output"] == True)`` works on every backend, kfp.local included.
    """
    from kfpkit.components.infra_validate.logic import run_infra_validate

    result = run_infra_validate(
        model_dir=model.path,
        eval_data_path=eval_data.path,
        report_path=report.path,
        tolerance=tolerance,
        latency_budget_ms=latency_budget_ms,
        num_requests=num_requests,
        batch_size=batch_size,
    )
    report.metadata.update(result.metadata())
    return result.infra_blessed
