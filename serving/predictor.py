"""The KServe predictor of a kfpkit model version directory.

:class:`KfpkitModel` is a ``kserve.Model``: ``load()`` verifies the sha256 manifest, then loads the
TorchScript model or the sklearn baseline and the preprocessing spec through
:func:`kfpkit.components.common.model_dir.load_model` (the same code evaluate uses), and scores one
warm-up row. A tampered, incomplete or unloadable directory leaves the model not ready, with the reason
in :attr:`KfpkitModel.load_error` and one ``ERROR`` log line ``model <name> refused: ...``.

Requests are decoded by :mod:`kfpkit.serving.protocol` and preprocessed by the training
``PreprocessingSpec.transform_columns``. Two paths reach :meth:`KfpkitModel.handle`:

* the fast path (:mod:`kfpkit.serving.fast_path`), which the kfpkit ModelServer puts in front of
  KServe's predict/infer routes, and
* KServe's own route -> ``Model.__call__`` -> :meth:`KfpkitModel.predict` (dict for v1, ``InferRequest``
  for v2 REST and gRPC), used when the fast path is off and for gRPC.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from kfpkit.components.common.model_dir import LoadedModel, load_model
from kfpkit.components.common.preprocessing import PreprocessingError
from kfpkit.serving.metrics import ModelMetrics
from kfpkit.serving.protocol import BadRequest, DecodedRequest, RequestCodec

logger = logging.getLogger("kfpkit.serving")


class KfpkitModel(Model):
    """A kfpkit model version directory served by KServe.

    Args:
        name: Model name in the URL paths (``/v2/models/{name}/infer``).
        model_dir: Local path of the model version directory.
        model_version: Version reported in v2 responses (e.g. the registry version), if known.
        verify: Check ``MANIFEST.json`` before loading (always on in ``kfpkit serve``).
        inference_threads: After a successful load, cap the OpenMP/BLAS/torch threads of the loading
            thread (the one that runs the event loop) to this many -- see :func:`limit_inference_threads`;
            ``None`` leaves the libraries' defaults.
    """

    def __init__(
        self,
        name: str,
        model_dir: str,
        model_version: Optional[str] = None,
        verify: bool = True,
        inference_threads: Optional[int] = 1,
    ):
        super().__init__(name)
        self.inference_threads = inference_threads
        self.model_dir = model_dir
        self.model_version = model_version
        self.verify = verify
        self.load_error: Optional[str] = None
        self.loaded: Optional[LoadedModel] = None
        self.codec: Optional[RequestCodec] = None
        self.decision_threshold = 0.5
        self.metrics = ModelMetrics(name)

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> bool:
        """Verifies and loads the directory; never raises (a failure leaves the model not ready)."""
        self.ready = False
        try:
            loaded = load_model(self.model_dir, verify=self.verify)
            codec = RequestCodec.from_spec(loaded.spec, self.name, self.model_version)
            warm_up = loaded.predict_proba_arrays(
                np.zeros((1, len(loaded.spec.numeric)), dtype=np.float32),
                np.zeros((1, len(loaded.spec.categorical)), dtype=np.int64),
            )
            if warm_up.shape != (1,) or not np.all(np.isfinite(warm_up)):
                raise ValueError(f"the model returned {warm_up!r} for one row; expected one finite probability")
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            logger.error("model %s refused: %s", self.name, self.load_error)
            return False
        if self.inference_threads:
            limit_inference_threads(self.inference_threads)  # after the load: the libraries are imported now
        self.loaded = loaded
        self.codec = codec
        self.decision_threshold = loaded.decision_threshold
        self.load_error = None
        self.ready = True
        logger.info(
            "model %s loaded from %s: framework=%s, %d features, decision_threshold=%s, manifest %s",
            self.name,
            self.model_dir,
            loaded.framework,
            len(loaded.spec.feature_order),
            self.decision_threshold,
            "verified" if self.verify else "NOT verified",
        )
        return True

    def start(self) -> None:
        """Called by the ModelServer at registration; ``BaseKServeModel.start`` would mark it ready."""
        self.ready = self.loaded is not None

    # ------------------------------------------------------------------ scoring core
    def score(self, decoded: DecodedRequest) -> Tuple[np.ndarray, np.ndarray]:
        """Probabilities (float64) and labels (int64) of decoded columns; observes the score histogram.

        Raises:
            BadRequest: the preprocessing spec refuses a value.
        """
        assert self.loaded is not None
        try:
            numeric, categorical = self.loaded.spec.transform_columns(decoded.columns)
        except PreprocessingError as exc:
            raise BadRequest(str(exc)) from exc
        start = time.perf_counter()
        probability = self.loaded.predict_proba_arrays(numeric, categorical)
        self.metrics.kserve_predict.observe(time.perf_counter() - start)
        labels = (probability >= self.decision_threshold).astype(np.int64)
        self.metrics.observe_scores(probability)
        return probability, labels

    def handle(self, protocol: str, body: Any) -> Dict[str, Any]:
        """Decodes, scores and encodes one parsed JSON body (``protocol`` ``"v1"`` or ``"v2"``).

        Raises:
            BadRequest: the request is invalid.
        """
        codec = self.codec
        assert codec is not None
        if protocol == "v1":
            decoded = codec.decode_v1(body)
            return codec.encode_v1(*self.score(decoded))
        decoded = codec.decode_v2(body)
        return codec.encode_v2(decoded, *self.score(decoded))

    # ------------------------------------------------------------------ KServe's standard path
    def predict(self, payload: Any, headers: Optional[Dict[str, str]] = None) -> Any:
        """KServe's predict handler: a dict (v1) or an ``InferRequest`` (v2 REST/gRPC)."""
        start = time.perf_counter()
        protocol = "v2" if isinstance(payload, InferRequest) else "v1"
        try:
            if protocol == "v1":
                result = self.handle("v1", payload)
            else:
                body = _infer_request_as_dict(payload)
                assert self.codec is not None
                decoded = self.codec.decode_v2(body)
                result = self._infer_response(decoded, *self.score(decoded))
        except BadRequest as exc:
            self.metrics.observe_request(protocol, "bad_request", time.perf_counter() - start)
            raise InvalidInput(str(exc)) from exc
        self.metrics.observe_request(protocol, "success", time.perf_counter() - start)
        return result

    def _infer_response(self, decoded: DecodedRequest, probability: np.ndarray, labels: np.ndarray) -> InferResponse:
        assert self.codec is not None
        encoded = self.codec.encode_v2(decoded, probability, labels)
        outputs = [
            InferOutput(name=o["name"], shape=o["shape"], datatype=o["datatype"], data=o["data"].tolist())
            for o in encoded["outputs"]
        ]
        return InferResponse(
            response_id=decoded.request_id or "",
            model_name=self.name,
            model_version=self.model_version,
            infer_outputs=outputs,
        )

    def get_input_types(self) -> list:
        return self.codec.input_metadata() if self.codec else []

    def get_output_types(self) -> list:
        return RequestCodec.output_metadata()


def _infer_request_as_dict(request: InferRequest) -> Dict[str, Any]:
    inputs = []
    for item in request.inputs:
        data = item.data
        if data is None or not isinstance(data, list):
            try:
                data = item.as_numpy().tolist()
            except Exception as exc:
                raise BadRequest(f"input {item.name!r}: cannot read its data ({exc})") from exc
        if item.datatype == "BYTES":
            data = [v.decode() if isinstance(v, bytes) else v for v in np.asarray(data, dtype=object).ravel().tolist()]
        inputs.append({"name": item.name, "shape": list(item.shape), "datatype": item.datatype, "data": data})
    body: Dict[str, Any] = {"inputs": inputs}
    if request.id:
        body["id"] = request.id
    if request.request_outputs:
        body["outputs"] = [{"name": o.name} for o in request.request_outputs]
    return body


def limit_inference_threads(threads: int = 1) -> None:
    """Caps the OpenMP/BLAS thread pools (and torch's intra-op threads) of the calling thread.

    One-row requests are fastest single-threaded: an OpenMP parallel region per tree or layer costs
    more than the work, and much more on a busy node. The server gets its parallelism from concurrent
    requests and replicas instead. Call it in the thread that runs the event loop, before serving.
    """
    import sys

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
