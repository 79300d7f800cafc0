"""Infra validation: serve the candidate in the real KServe ModelServer app and check it (kfp-free).

Like TFX's InfraValidator, this runs before push: a model that evaluate blessed is only pushed when the
serving stack can load it and answers correctly and fast enough. Steps:

1. copy the candidate directory to a temporary folder and write the sha256 manifest there (push writes
   it into the registry version later; a candidate that already has one keeps it), so that the server
   runs the same manifest verification as ``kfpkit serve`` -- the input artifact is never modified;
2. load it with :class:`kfpkit.serving.predictor.KfpkitModel` into
   :class:`kfpkit.serving.server.KfpkitModelServer`'s app (KServe's FastAPI app plus the fast path) and
   drive it in-process through ``httpx.ASGITransport``;
3. check server and model readiness, that ``GET /v2/models/{name}`` lists the model's features, and that
   malformed requests are refused with a 4xx;
4. send the first eval rows (at most :data:`MAX_CHECK_ROWS`) in batches of ``batch_size`` as v1 and as
   v2 requests (built by :mod:`kfpkit.serving.payloads`) and compare the probabilities with the model's
   offline ``LoadedModel.predict_proba`` on the same rows (what evaluate computes, calibration included): the
   largest absolute difference must be <= ``tolerance`` and every label must equal
   ``probability >= decision_threshold``;
5. send ``num_requests`` v2 requests of ``batch_size`` rows one after the other and require the p99
   client-side latency to be <= ``latency_budget_ms``.

A model that cannot be loaded, or fails any check, gives ``infra_blessed=False`` with the reasons (never
an exception); an unreadable eval file or invalid parameters raise ``ValueError``/``FileNotFoundError``.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

MAX_CHECK_ROWS = 1000
MAX_REQUESTS = 100_000
SERVED_MODEL_NAME = "candidate"


@dataclass
class InfraValidationResult:
    """Outcome of :func:`run_infra_validate`."""

    infra_blessed: bool
    reasons: List[str] = field(default_factory=list)
    checks: List[Dict[str, Any]] = field(default_factory=list)
    framework: Optional[str] = None
    rows_checked: int = 0
    v1_max_abs_diff: Optional[float] = None
    v2_max_abs_diff: Optional[float] = None
    latency_p50_ms: Optional[float] = None
    latency_p99_ms: Optional[float] = None
    latency_requests: int = 0
    load_seconds: Optional[float] = None
    report_markdown: str = ""

    def metadata(self) -> Dict[str, Any]:
        """Plain-JSON summary for artifact metadata."""
        data = asdict(self)
        data.pop("report_markdown")
        data.pop("checks")
        return data


class _Checks:
    def __init__(self) -> None:
        self.items: List[Dict[str, Any]] = []

    def add(self, name: str, passed: bool, detail: str) -> bool:
        self.items.append({"check": name, "passed": bool(passed), "detail": detail})
        return passed

    @property
    def failures(self) -> List[str]:
        return [f"{c['check']}: {c['detail']}" for c in self.items if not c["passed"]]


def _validate_parameters(tolerance: float, latency_budget_ms: float, num_requests: int, batch_size: int) -> None:
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    if not (latency_budget_ms > 0 and math.isfinite(latency_budget_ms)):
        raise ValueError(f"latency_budget_ms must be a finite number > 0, got {latency_budget_ms}")
    if not 1 <= num_requests <= MAX_REQUESTS:
        raise ValueError(f"num_requests must be between 1 and {MAX_REQUESTS}, got {num_requests}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def _read_eval(eval_data_path: str) -> Any:
    from kfpkit.core.datasets import read_split_frame

    if not os.path.isfile(eval_data_path):
        raise FileNotFoundError(f"eval data {eval_data_path}: no such file")
    return read_split_frame(eval_data_path, "eval data", allow_empty=False)


def _percentile(values: List[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass(frozen=True)
class _Settings:
    tolerance: float
    latency_budget_ms: float
    num_requests: int
    batch_size: int


def run_infra_validate(
    model_dir: str,
    eval_data_path: str,
    report_path: Optional[str] = None,
    *,
    tolerance: float = 1e-4,
    latency_budget_ms: float = 50.0,
    num_requests: int = 200,
    batch_size: int = 16,
) -> InfraValidationResult:
    """Serves the candidate in the KServe ModelServer app and checks it (see the module docstring).

    Args:
        model_dir: The candidate model directory (left unchanged).
        eval_data_path: Eval split Parquet file (raw features; other columns are ignored).
        report_path: Where to write the Markdown report (a KFP output artifact: a plain write); ``None``:
            not written.
        tolerance: Largest allowed absolute difference between served and offline probabilities.
        latency_budget_ms: Largest allowed p99 latency of a ``batch_size``-row v2 request, in ms.
        num_requests: v2 requests sent for the latency measurement.
        batch_size: Rows per request.

    Raises:
        ValueError: invalid parameters, or an unreadable/empty eval file.
        FileNotFoundError: the eval file does not exist.
    """
    _validate_parameters(tolerance, latency_budget_ms, num_requests, batch_size)
    settings = _Settings(tolerance, latency_budget_ms, num_requests, batch_size)
    frame = _read_eval(eval_data_path)
    checks = _Checks()
    result = InfraValidationResult(infra_blessed=False)
    workdir = tempfile.mkdtemp(prefix="kfpkit-infra-validate-")
    try:
        _validate(model_dir, frame, workdir, checks=checks, result=result, settings=settings)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.checks = checks.items
    result.reasons = checks.failures
    result.infra_blessed = bool(checks.items) and not result.reasons
    result.report_markdown = render_report(result, model_dir, settings)
    if report_path:
        os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
        with open(report_path, "w", encoding="utf-8") as fh:
            fh.write(result.report_markdown)
    return result


def _validate(
    model_dir: str,
    frame: Any,
    workdir: str,
    *,
    checks: _Checks,
    result: InfraValidationResult,
    settings: _Settings,
) -> None:
    from kfpkit.core import model_dir as md

    candidate = os.path.join(workdir, "model")
    if not os.path.isdir(model_dir):
        checks.add("model loads in the server", False, f"{model_dir} is not a directory")
        return
    shutil.copytree(model_dir, candidate)
    if not os.path.isfile(os.path.join(candidate, md.MANIFEST_FILE)):
        md.write_manifest(candidate)

    from kfpkit.serving.predictor import KfpkitModel

    start = time.perf_counter()
    model = KfpkitModel(SERVED_MODEL_NAME, candidate, verify=True)
    loaded_ok = model.load()
    result.load_seconds = round(time.perf_counter() - start, 3)
    if not checks.add(
        "model loads in the server",
        loaded_ok,
        f"loaded and verified in {result.load_seconds} s" if loaded_ok else f"refused: {model.load_error}",
    ):
        return
    assert model.loaded is not None
    spec = model.loaded.spec
    result.framework = model.loaded.framework
    missing = [f for f in spec.feature_order if f not in frame.columns]
    if not checks.add(
        "eval data has the model's features",
        not missing,
        f"missing feature column(s) {missing}" if missing else f"{len(spec.feature_order)} features",
    ):
        return
    check_frame = frame.head(MAX_CHECK_ROWS).reset_index(drop=True)
    try:
        offline = md.load_model(candidate).predict_proba(check_frame)
    except Exception as exc:
        checks.add("offline predict_proba", False, f"{type(exc).__name__}: {exc}")
        return
    result.rows_checked = len(check_frame)

    from kfpkit.serving.server import KfpkitModelServer

    server = KfpkitModelServer(host="127.0.0.1", http_port=0, enable_grpc=False)
    app = server.create_app([model])
    try:
        asyncio.run(
            _exercise(
                app, model, check_frame=check_frame, offline=offline, checks=checks, result=result, settings=settings
            )
        )
    except Exception as exc:  # e.g. a response without the declared outputs: a failed check, not a crash
        checks.add("server answers as declared", False, f"{type(exc).__name__}: {exc}")


async def _exercise(
    app: Any,
    model: Any,
    *,
    check_frame: Any,
    offline: Any,
    checks: _Checks,
    result: InfraValidationResult,
    settings: _Settings,
) -> None:
    import logging

    import httpx
    import numpy as np

    from kfpkit.serving import payloads

    # one INFO line per request from httpx would drown the task log (hundreds of latency probes)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    spec = model.loaded.spec
    tolerance, batch_size, num_requests = settings.tolerance, settings.batch_size, settings.num_requests
    latency_budget_ms = settings.latency_budget_ms
    name = SERVED_MODEL_NAME
    headers = {"content-type": "application/json"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://infra-validate", timeout=30.0) as client:
        ready = await client.get("/v2/health/ready")
        model_ready = await client.get(f"/v2/models/{name}/ready")
        checks.add(
            "server and model ready",
            ready.status_code == 200 and model_ready.status_code == 200,
            f"/v2/health/ready {ready.status_code}, /v2/models/{name}/ready {model_ready.status_code}",
        )
        meta = await client.get(f"/v2/models/{name}")
        listed = [i.get("name") for i in meta.json().get("inputs", [])] if meta.status_code == 200 else []
        checks.add(
            "metadata lists the features",
            listed == list(spec.feature_order),
            f"GET /v2/models/{name} -> {meta.status_code}, inputs {listed}",
        )
        bad = [
            await client.post(f"/v1/models/{name}:predict", content=b'{"instances": []}', headers=headers),
            await client.post(f"/v2/models/{name}/infer", content=b'{"inputs": [{"name": 1}]}', headers=headers),
            await client.post(f"/v1/models/{name}:predict", content=b"not json", headers=headers),
        ]
        statuses = [r.status_code for r in bad]
        checks.add(
            "malformed requests get a 4xx",
            all(400 <= s < 500 for s in statuses),
            f"statuses {statuses}",
        )

        served: Dict[str, List[float]] = {"v1": [], "v2": []}
        labels: Dict[str, List[int]] = {"v1": [], "v2": []}
        failures: List[str] = []
        v2_bodies = []
        for start in range(0, len(check_frame), batch_size):
            batch = check_frame.iloc[start : start + batch_size]
            v1 = payloads.dumps(payloads.v1_body(batch, spec.feature_order, spec.categorical_names))
            v2 = payloads.dumps(payloads.v2_body(batch, spec.feature_order, spec.categorical_names))
            v2_bodies.append(v2)
            r1 = await client.post(f"/v1/models/{name}:predict", content=v1, headers=headers)
            r2 = await client.post(f"/v2/models/{name}/infer", content=v2, headers=headers)
            if r1.status_code != 200 or r2.status_code != 200:
                failures.append(
                    f"rows {start}..: v1 {r1.status_code} {r1.text[:200]}; v2 {r2.status_code} {r2.text[:200]}"
                )
                break
            for p in r1.json()["predictions"]:
                served["v1"].append(p["probability"])
                labels["v1"].append(p["label"])
            outputs = {o["name"]: o["data"] for o in r2.json()["outputs"]}
            served["v2"].extend(outputs["probability"])
            labels["v2"].extend(outputs["label"])
        if failures:
            checks.add("served predictions match offline predict_proba", False, failures[0])
            return
        expected_labels = (offline >= model.decision_threshold).astype(np.int64)
        diffs = {}
        for protocol in ("v1", "v2"):
            got = np.asarray(served[protocol], dtype=np.float64)
            diffs[protocol] = float(np.max(np.abs(got - offline))) if len(got) == len(offline) else math.inf
            wrong_labels = int(np.sum(np.asarray(labels[protocol]) != expected_labels))
            checks.add(
                f"{protocol} predictions match offline predict_proba",
                diffs[protocol] <= tolerance and wrong_labels == 0,
                f"max |served - offline| = {diffs[protocol]:.3g} (tolerance {tolerance:g}) over "
                f"{len(offline)} rows; {wrong_labels} label(s) differ",
            )
        result.v1_max_abs_diff = diffs["v1"]
        result.v2_max_abs_diff = diffs["v2"]

        latencies: List[float] = []
        errors = 0
        for i in range(num_requests):
            body = v2_bodies[i % len(v2_bodies)]
            t0 = time.perf_counter()
            response = await client.post(f"/v2/models/{name}/infer", content=body, headers=headers)
            latencies.append((time.perf_counter() - t0) * 1000.0)
            errors += response.status_code != 200
        result.latency_requests = num_requests
        result.latency_p50_ms = round(_percentile(latencies, 50), 3)
        result.latency_p99_ms = round(_percentile(latencies, 99), 3)
        checks.add(
            "p99 latency within budget",
            errors == 0 and result.latency_p99_ms <= latency_budget_ms,
            f"p99 {result.latency_p99_ms} ms, p50 {result.latency_p50_ms} ms over {num_requests} v2 requests of "
            f"<= {batch_size} rows (budget {latency_budget_ms:g} ms); {errors} non-200",
        )


def render_report(result: InfraValidationResult, model_dir: str, settings: _Settings) -> str:
    """The Markdown report: verdict, settings, one table row per check, the reasons of a failure."""
    verdict = "**INFRA BLESSED**" if result.infra_blessed else "**NOT INFRA BLESSED**"
    lines = [
        "# Infra validation",
        "",
        f"Verdict: {verdict}",
        "",
        f"- candidate: `{model_dir}` (framework: {result.framework or 'unknown'})",
        "- server: KServe ModelServer app with the kfpkit predictor, in-process (httpx.ASGITransport)",
        f"- rows compared with offline `predict_proba`: {result.rows_checked} (batches of {settings.batch_size})",
        f"- tolerance: {settings.tolerance:g}; p99 latency budget: {settings.latency_budget_ms:g} ms",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    for item in result.checks:
        detail = str(item["detail"]).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {item['check']} | {'pass' if item['passed'] else 'FAIL'} | {detail} |")
    if not result.checks:
        lines.append("| (no check ran) | FAIL | |")
    if result.reasons:
        lines += ["", "## Reasons", ""] + [f"- {r}" for r in result.reasons]
    return "\n".join(lines) + "\n"
