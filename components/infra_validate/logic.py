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
from typing import Any, Dict, List, Optional, Tuple

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
    from kfpkit.components.process_exit import skip_final_garbage_collection

    skip_final_garbage_collection()  # this task's process exits without collecting torch's and kserve's objects
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
    loaded = _load_candidate(model_dir, workdir, checks=checks, result=result)
    if loaded is None:
        return
    model, candidate = loaded
    reference = _offline_reference(model, candidate, frame, checks=checks, result=result)
    if reference is None:
        return
    check_frame, offline = reference

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


def _load_candidate(
    model_dir: str, workdir: str, *, checks: _Checks, result: InfraValidationResult
) -> Optional[Tuple[Any, str]]:
    """Copies the candidate into ``workdir`` (with a manifest) and loads it as the server would.

    Returns:
        The loaded :class:`~kfpkit.serving.predictor.KfpkitModel` and the copy's path, or ``None`` after a
        failed "model loads in the server" check.
    """
    from kfpkit.core import model_dir as md

    candidate = os.path.join(workdir, "model")
    if not os.path.isdir(model_dir):
        checks.add("model loads in the server", False, f"{model_dir} is not a directory")
        return None
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
        return None
    assert model.loaded is not None
    result.framework = model.loaded.framework
    return model, candidate


def _offline_reference(
    model: Any, candidate: str, frame: Any, *, checks: _Checks, result: InfraValidationResult
) -> Optional[Tuple[Any, Any]]:
    """The rows to send (at most :data:`MAX_CHECK_ROWS`) and their offline ``predict_proba``.

    Returns:
        ``(rows, probabilities)``, or ``None`` after a failed check (a feature column missing from the eval
        data, or an offline prediction that raised).
    """
    from kfpkit.core import model_dir as md

    spec = model.loaded.spec
    missing = [f for f in spec.feature_order if f not in frame.columns]
    if not checks.add(
        "eval data has the model's features",
        not missing,
        f"missing feature column(s) {missing}" if missing else f"{len(spec.feature_order)} features",
    ):
        return None
    check_frame = frame.head(MAX_CHECK_ROWS).reset_index(drop=True)
    try:
        offline = md.load_model(candidate).predict_proba(check_frame)
    except Exception as exc:
        checks.add("offline predict_proba", False, f"{type(exc).__name__}: {exc}")
        return None
    result.rows_checked = len(check_frame)
    return check_frame, offline


@dataclass
class _Probe:
    """One in-process HTTP client of the served candidate, and where its checks are recorded."""

    client: Any  # httpx.AsyncClient over the app's ASGI transport
    model: Any
    checks: _Checks
    result: InfraValidationResult
    settings: _Settings
    name: str = SERVED_MODEL_NAME

    @property
    def spec(self) -> Any:
        """The served model's preprocessing spec."""
        return self.model.loaded.spec

    async def post(self, path: str, body: bytes) -> Any:
        """POSTs a JSON body to ``path``."""
        return await self.client.post(path, content=body, headers={"content-type": "application/json"})


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
    """Runs the five HTTP checks against ``app`` in order; the latency check needs served predictions."""
    import logging

    import httpx

    # one INFO line per request from httpx would drown the task log (hundreds of latency probes)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://infra-validate", timeout=30.0) as client:
        probe = _Probe(client, model, checks, result, settings)
        await _check_ready(probe)
        await _check_metadata(probe)
        await _check_malformed_refused(probe)
        v2_bodies = await _check_predictions(probe, check_frame, offline)
        if v2_bodies is not None:
            await _check_latency(probe, v2_bodies)


async def _check_ready(probe: _Probe) -> None:
    """Check 1: the server's and the model's v2 readiness endpoints answer 200."""
    name = probe.name
    ready = await probe.client.get("/v2/health/ready")
    model_ready = await probe.client.get(f"/v2/models/{name}/ready")
    probe.checks.add(
        "server and model ready",
        ready.status_code == 200 and model_ready.status_code == 200,
        f"/v2/health/ready {ready.status_code}, /v2/models/{name}/ready {model_ready.status_code}",
    )


async def _check_metadata(probe: _Probe) -> None:
    """Check 2: ``GET /v2/models/{name}`` lists the model's features, in order, as its inputs."""
    name = probe.name
    meta = await probe.client.get(f"/v2/models/{name}")
    listed = [i.get("name") for i in meta.json().get("inputs", [])] if meta.status_code == 200 else []
    probe.checks.add(
        "metadata lists the features",
        listed == list(probe.spec.feature_order),
        f"GET /v2/models/{name} -> {meta.status_code}, inputs {listed}",
    )


async def _check_malformed_refused(probe: _Probe) -> None:
    """Check 3: an empty v1 request, a v2 input without its fields and a non-JSON body each get a 4xx."""
    name = probe.name
    bad = [
        await probe.post(f"/v1/models/{name}:predict", b'{"instances": []}'),
        await probe.post(f"/v2/models/{name}/infer", b'{"inputs": [{"name": 1}]}'),
        await probe.post(f"/v1/models/{name}:predict", b"not json"),
    ]
    statuses = [r.status_code for r in bad]
    probe.checks.add(
        "malformed requests get a 4xx",
        all(400 <= s < 500 for s in statuses),
        f"statuses {statuses}",
    )


# A served probability travels as float32 (v2 FP32, the model's output) while its label was decided on the
# value before rounding: within this distance of the threshold the two may disagree.
_FLOAT32_RESOLUTION = 1e-6


async def _check_predictions(probe: _Probe, check_frame: Any, offline: Any) -> Optional[List[bytes]]:
    """Check 4: the rows sent as v1 and as v2 requests get the offline probabilities and labels.

    Returns:
        The v2 request bodies (reused by the latency check), or ``None`` when a request was refused.
    """
    import numpy as np

    served = await _send_check_rows(probe, check_frame)
    if served.failure is not None:
        probe.checks.add("served predictions match offline predict_proba", False, served.failure)
        return None
    tolerance = probe.settings.tolerance
    threshold = probe.model.decision_threshold
    expected_labels = (offline >= threshold).astype(np.int64)
    # a row whose offline probability is within the tolerance of the threshold may take either label
    undecided = np.abs(offline - threshold) <= tolerance
    diffs = {}
    for protocol in ("v1", "v2"):
        got = np.asarray(served.probabilities[protocol], dtype=np.float64)
        diffs[protocol] = float(np.max(np.abs(got - offline))) if len(got) == len(offline) else math.inf
        labels = np.asarray(served.labels[protocol])
        wrong_labels = int(np.sum((labels != expected_labels) & ~undecided))
        if len(got) == len(labels):  # there the label must follow the served probability, beyond float32 rounding
            contradicts = (labels != (got >= threshold)) & (np.abs(got - threshold) > _FLOAT32_RESOLUTION)
            wrong_labels += int(np.sum(contradicts & undecided))
        probe.checks.add(
            f"{protocol} predictions match offline predict_proba",
            diffs[protocol] <= tolerance and wrong_labels == 0,
            f"max |served - offline| = {diffs[protocol]:.3g} (tolerance {tolerance:g}) over "
            f"{len(offline)} rows; {wrong_labels} label(s) differ"
            + (f" ({int(undecided.sum())} row(s) within the tolerance of the threshold)" if undecided.any() else ""),
        )
    probe.result.v1_max_abs_diff = diffs["v1"]
    probe.result.v2_max_abs_diff = diffs["v2"]
    return served.v2_bodies


@dataclass
class _Served:
    """The probabilities and labels the server answered per protocol, or the first refused request."""

    probabilities: Dict[str, List[float]] = field(default_factory=lambda: {"v1": [], "v2": []})
    labels: Dict[str, List[int]] = field(default_factory=lambda: {"v1": [], "v2": []})
    v2_bodies: List[bytes] = field(default_factory=list)
    failure: Optional[str] = None


async def _send_check_rows(probe: _Probe, check_frame: Any) -> _Served:
    """Sends the rows in batches, each batch as a v1 and as a v2 request; stops at the first non-200."""
    from kfpkit.serving import payloads

    spec, name, batch_size = probe.spec, probe.name, probe.settings.batch_size
    served = _Served()
    for start in range(0, len(check_frame), batch_size):
        batch = check_frame.iloc[start : start + batch_size]
        v1 = payloads.dumps(payloads.v1_body(batch, spec.feature_order, spec.categorical_names))
        v2 = payloads.dumps(payloads.v2_body(batch, spec.feature_order, spec.categorical_names))
        served.v2_bodies.append(v2)
        r1 = await probe.post(f"/v1/models/{name}:predict", v1)
        r2 = await probe.post(f"/v2/models/{name}/infer", v2)
        if r1.status_code != 200 or r2.status_code != 200:
            served.failure = f"rows {start}..: v1 {r1.status_code} {r1.text[:200]}; v2 {r2.status_code} {r2.text[:200]}"
            break
        for p in r1.json()["predictions"]:
            served.probabilities["v1"].append(p["probability"])
            served.labels["v1"].append(p["label"])
        outputs = {o["name"]: o["data"] for o in r2.json()["outputs"]}
        served.probabilities["v2"].extend(outputs["probability"])
        served.labels["v2"].extend(outputs["label"])
    return served


async def _check_latency(probe: _Probe, v2_bodies: List[bytes]) -> None:
    """Check 5: ``num_requests`` v2 requests one after the other; the client-side p99 is within budget."""
    settings, result = probe.settings, probe.result
    latencies: List[float] = []
    errors = 0
    for i in range(settings.num_requests):
        body = v2_bodies[i % len(v2_bodies)]
        t0 = time.perf_counter()
        response = await probe.post(f"/v2/models/{probe.name}/infer", body)
        latencies.append((time.perf_counter() - t0) * 1000.0)
        errors += response.status_code != 200
    result.latency_requests = settings.num_requests
    result.latency_p50_ms = round(_percentile(latencies, 50), 3)
    result.latency_p99_ms = round(_percentile(latencies, 99), 3)
    probe.checks.add(
        "p99 latency within budget",
        errors == 0 and result.latency_p99_ms <= settings.latency_budget_ms,
        f"p99 {result.latency_p99_ms} ms, p50 {result.latency_p50_ms} ms over {settings.num_requests} v2 requests "
        f"of <= {settings.batch_size} rows (budget {settings.latency_budget_ms:g} ms); {errors} non-200",
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
