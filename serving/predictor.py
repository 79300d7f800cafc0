"""The KServe predictor of a kfpkit model version directory.

:class:`KfpkitModel` is a ``kserve.Model``: ``load()`` verifies the sha256 manifest, then loads the
TorchScript model or the sklearn baseline and the preprocessing spec through
:func:`kfpkit.core.model_dir.load_model` (the same code evaluate uses), and scores one
warm-up row. A tampered, incomplete or unloadable directory leaves the model not ready, with the reason
in :attr:`KfpkitModel.load_error` and one ``ERROR`` log line ``model <name> refused: ...``.

Requests are decoded by :mod:`kfpkit.serving.protocol` and preprocessed by the training
``PreprocessingSpec.transform_columns``. Two paths reach :meth:`KfpkitModel.handle`:

* the fast path (:mod:`kfpkit.serving.fast_path`), which the kfpkit ModelServer puts in front of
  KServe's predict/infer routes, and
* KServe's own route -> ``Model.__call__`` -> :meth:`KfpkitModel.predict` (dict for v1, ``InferRequest``
  for v2 REST and gRPC, :class:`RawV2Body` for a v2 REST binary-extension body that
  :class:`~kfpkit.serving.kserve_overrides.KfpkitDataPlane` decoded), used when the fast path is off and
  for gRPC.

Every path scores through :meth:`KfpkitModel.score`: the one place per request where the received
feature columns, the request id and the scores are all at hand (payload logging hooks in there).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union, cast

import numpy as np
import orjson
from kserve import Model
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from kfpkit.core import model_dir as md
from kfpkit.core.model_dir import LoadedModel, load_model
from kfpkit.core.preprocessing import PreprocessingError
from kfpkit.serving import binary
from kfpkit.serving.metrics import ModelMetrics
from kfpkit.serving.protocol import BadRequest, DecodedRequest, RequestCodec

# Standardized numeric features are clipped to +-CLIP_SIGMA before scoring: a finite but huge input
# (amount 1e41) would otherwise overflow float32 to inf and give a NaN score. Offline data never
# comes near this.
CLIP_SIGMA = 1e4
_CLIP_LOW, _CLIP_HIGH = np.float32(-CLIP_SIGMA), np.float32(CLIP_SIGMA)  # typed: no scalar conversion per call


class RawV2Body(dict):
    """A v2 REST body that kfpkit decoded itself (binary extension), passed through KServe's DataPlane."""


class ContentDigestMismatch(ValueError):
    """The model version's content digest differs from the pinned ``--expected-digest``."""


def check_content_digest(directory: str, expected: Optional[str]) -> str:
    """The content digest computed from the files (``content_sha256`` of push's manifest).

    Raises:
        ContentDigestMismatch: the manifest's own ``content_sha256`` does not match its files, or the
            computed digest differs from ``expected``.
    """
    with open(f"{directory}/{md.MANIFEST_FILE}", encoding="utf-8") as fh:
        recorded = orjson.loads(fh.read()).get("content_sha256")
    computed = md.build_manifest(directory)["content_sha256"]
    if recorded != computed:
        raise ContentDigestMismatch(
            f"MANIFEST.json records content_sha256 {recorded} but the files hash to {computed} (edited manifest?)"
        )
    if expected is not None and computed != expected.strip().lower():
        raise ContentDigestMismatch(f"content digest {computed} differs from the pinned --expected-digest {expected}")
    return computed


logger = logging.getLogger("kfpkit.serving")


class KfpkitModel(Model):
    """A kfpkit model version directory served by KServe.

    Args:
        name: Model name in the URL paths (``/v2/models/{name}/infer``).
        model_dir: Local path of the model version directory.
        model_version: Version reported in v2 responses (e.g. the registry version), if known.
        verify: Check ``MANIFEST.json`` before loading (always on in ``kfpkit serve``).
        expected_digest: Refuse the version unless its content digest (the ``content_sha256`` that push
            records in the registry) equals this sha256.
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
        expected_digest: Optional[str] = None,
    ):
        super().__init__(name, return_response_headers=True)
        self.inference_threads = inference_threads
        self.expected_digest = expected_digest
        self.content_digest: Optional[str] = None
        self.model_dir = model_dir
        self.model_version = model_version
        self.verify = verify
        self.load_error: Optional[str] = None
        self.loaded: Optional[LoadedModel] = None
        self.codec: Optional[RequestCodec] = None
        self.decision_threshold = 0.5
        self.metrics = ModelMetrics(name)
        self.payload_logger: Optional[Any] = None  # a PayloadLogger (kfpkit serve --payload-log)
        # generated request ids: 16 random hex digits per model instance, then a counter (a uuid4 per
        # request costs a urandom system call); unique across replicas, so payload logs join on them
        self._request_id_prefix = uuid.uuid4().hex[:16]
        self._request_ids = itertools.count(1)

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> bool:
        """Verifies and loads the directory; never raises (a failure leaves the model not ready)."""
        self.ready = False
        try:
            digest = None
            if self.verify or self.expected_digest:
                md.verify_manifest(self.model_dir)
                digest = check_content_digest(self.model_dir, self.expected_digest)
            loaded = load_model(self.model_dir, verify=False)  # the manifest was verified just above
            if not (0.0 <= loaded.decision_threshold <= 1.0):  # NaN fails both
                raise ValueError(f"model card decision_threshold {loaded.decision_threshold!r} is not in [0, 1]")
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
        self.content_digest = digest
        self.load_error = None
        self.ready = True
        logger.info(
            "model %s loaded from %s: framework=%s, %d features, decision_threshold=%s, manifest %s, content %s",
            self.name,
            self.model_dir,
            loaded.framework,
            len(loaded.spec.feature_order),
            self.decision_threshold,
            "verified" if self.verify else "NOT verified",
            digest or "-",
        )
        return True

    def start(self) -> None:
        """Called by the ModelServer at registration; ``BaseKServeModel.start`` would mark it ready."""
        self.ready = self.loaded is not None

    def _next_request_id(self) -> str:
        return f"{self._request_id_prefix}{next(self._request_ids):016x}"

    # ------------------------------------------------------------------ scoring core
    def score(self, decoded: DecodedRequest) -> Tuple[np.ndarray, np.ndarray]:
        """Probabilities (float64) and labels (int64) of decoded columns; observes the score histogram.

        Every request path (fast path, KServe's REST route, gRPC) scores here or in :meth:`score_batch`:
        ``decoded.columns`` are the feature values as received, ``decoded.request_id`` the v2 ``id``
        (generated when the request has none), and the return value the scores.

        Raises:
            BadRequest: the preprocessing spec refuses a value, or the model gives a non-finite score.
        """
        assert self.loaded is not None
        numeric, categorical = self._transform(decoded)
        answer = self._answer([decoded], self._predict(numeric, categorical, requests=1))[0]
        if isinstance(answer, BadRequest):
            raise answer
        return answer

    def score_batch(self, batch: Sequence[DecodedRequest]) -> List[Union[Tuple[np.ndarray, np.ndarray], BadRequest]]:
        """Scores requests that arrived together with one transform and one model call.

        Each request gets what :meth:`score` would give it alone -- its probabilities and labels, or the
        ``BadRequest`` it would raise (returned here, not raised). Requests whose values the spec refuses
        are scored one by one, so that the error names the request's own feature and row; a non-finite
        score fails only the request it belongs to. The model is row-wise, so a row's probability does not
        depend on the other rows of the batch (up to float rounding of batched matrix products).
        """
        assert self.loaded is not None
        merged = _merge(batch) if len(batch) > 1 else None
        if merged is None:
            return [self._score_or_refusal(decoded) for decoded in batch]
        try:
            numeric, categorical = self._transform(merged)
        except BadRequest:
            return [self._score_or_refusal(decoded) for decoded in batch]
        return self._answer(batch, self._predict(numeric, categorical, requests=len(batch)))

    def _answer(
        self, batch: Sequence[DecodedRequest], probability: np.ndarray
    ) -> List[Union[Tuple[np.ndarray, np.ndarray], BadRequest]]:
        """Each request's share of ``probability`` (the batch's rows, in order) with its labels.

        A request with a non-finite score gets its ``BadRequest`` instead. Observes the answered scores, gives
        the requests their ids and logs their payloads.
        """
        labels = (probability >= self.decision_threshold).astype(np.int64)
        all_finite = math.isfinite(np.add.reduce(probability))  # probabilities: finite sum iff all finite
        if all_finite:
            self.metrics.observe_scores(probability)
        answers: List[Union[Tuple[np.ndarray, np.ndarray], BadRequest]] = []
        offset = 0
        for decoded in batch:
            rows = slice(offset, offset + decoded.rows)
            offset += decoded.rows
            own, own_labels = probability[rows], labels[rows]
            if not all_finite:
                if not np.isfinite(own).all():
                    answers.append(_non_finite_refusal(own))
                    continue
                self.metrics.observe_scores(own)
            self._scored(decoded, own, own_labels)
            answers.append((own, own_labels))
        return answers

    def _score_or_refusal(self, decoded: DecodedRequest) -> Union[Tuple[np.ndarray, np.ndarray], BadRequest]:
        try:
            return self.score(decoded)
        except BadRequest as exc:
            return exc

    def _transform(self, decoded: DecodedRequest) -> Tuple[np.ndarray, np.ndarray]:
        """The model's input arrays, standardized and clipped to +-CLIP_SIGMA (BadRequest when refused)."""
        spec = self.loaded.spec  # type: ignore[union-attr]
        try:
            if decoded.matrix is not None:
                numeric, categorical = spec.transform_matrix(decoded.matrix)
            else:
                numeric, categorical = spec.transform_columns(decoded.columns)
        except PreprocessingError as exc:
            raise BadRequest(str(exc)) from exc
        # np.clip's result without its per-call dispatch (a tenth of a one-row score)
        np.maximum(numeric, _CLIP_LOW, out=numeric)
        np.minimum(numeric, _CLIP_HIGH, out=numeric)
        return numeric, categorical

    def _predict(self, numeric: np.ndarray, categorical: np.ndarray, requests: int) -> np.ndarray:
        """Calibrated probabilities; KServe's ``request_predict_seconds`` gets the model time once per request."""
        start = time.perf_counter()
        probability = self.loaded.predict_proba_arrays(numeric, categorical)  # type: ignore[union-attr]
        elapsed = time.perf_counter() - start
        observe = self.metrics.kserve_predict.observe
        for _ in range(requests):
            observe(elapsed)
        return probability

    def _scored(self, decoded: DecodedRequest, probability: np.ndarray, labels: np.ndarray) -> None:
        """Gives the request its id (the v2 ``id``; KServe's response requires one) and logs the payload."""
        if decoded.request_id is None:
            decoded.request_id = self._next_request_id()
        if self.payload_logger is not None:  # enqueues references only; the writer thread does the rest
            self.payload_logger.log(decoded.columns, probability, labels, decoded.request_id)

    def decode(self, protocol: str, body: Any) -> DecodedRequest:
        """The decoded request of a parsed ``"v1"`` or ``"v2"`` body (BadRequest when it is invalid)."""
        codec = self.codec
        assert codec is not None
        return codec.decode_v1(body) if protocol == "v1" else codec.decode_v2(body)

    def encode(
        self, protocol: str, body: Any, decoded: DecodedRequest, probability: np.ndarray, labels: np.ndarray
    ) -> Tuple[bytes, Optional[int]]:
        """The response bytes of scored ``decoded``, and the JSON header length of a binary v2 response.

        The length (``Inference-Header-Content-Length``) is set when the request asked for binary outputs,
        else ``None``.
        """
        codec = self.codec
        assert codec is not None
        if protocol == "v1":
            return orjson.dumps(codec.encode_v1(probability, labels)), None
        response = codec.encode_v2(decoded, probability, labels)
        wanted = binary.wants_binary_outputs(body)
        if any(wanted.values()):
            return binary.encode_response(response, wanted)
        return orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY), None

    def handle(self, protocol: str, body: Any) -> Tuple[bytes, Optional[int]]:
        """Decodes, scores and encodes one parsed body (``protocol`` ``"v1"`` or ``"v2"``).

        Returns:
            The response bytes and, for a v2 response with binary outputs (as the request asked), the
            length of its JSON header (``Inference-Header-Content-Length``); else ``None``.

        Raises:
            BadRequest: the request is invalid.
        """
        decoded = self.decode(protocol, body)
        return self.encode(protocol, body, decoded, *self.score(decoded))

    def parse_body(self, protocol: str, content_type: str, header_length: Optional[str], body: bytes) -> Any:
        """The parsed request body, with the checks both REST paths make before decoding.

        Raises:
            BadRequest: a non-JSON content type (415), an empty body, malformed JSON, a malformed binary
                body (the ``Inference-Header-Content-Length`` extension, v2 only).
        """
        if header_length is not None:
            if protocol != "v2":
                raise BadRequest("the binary tensor extension (Inference-Header-Content-Length) is v2 only")
            return RawV2Body(binary.decode_request(body, binary.parse_header_length(header_length, len(body))))
        if content_type and not is_json_content_type(content_type):
            raise BadRequest(f"unsupported content type {content_type!r}: send application/json", status=415)
        if not body:
            raise BadRequest("empty request body: send a JSON object")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"malformed JSON: {exc}") from exc

    # ------------------------------------------------------------------ KServe's standard path
    def predict(
        self,
        payload: Any,
        headers: Optional[Dict[str, str]] = None,
        response_headers: Optional[Dict[str, str]] = None,
    ) -> Any:
        """KServe's predict handler: a dict (v1), an ``InferRequest`` (v2 REST/gRPC) or a :class:`RawV2Body`.

        Raises:
            kserve.errors.InvalidInput: the request is invalid (400 / gRPC ``INVALID_ARGUMENT``).
            kserve.errors.ModelNotReady: the model was refused at load (503 / ``UNAVAILABLE``).
        """
        start = time.perf_counter()
        protocol = "v2" if isinstance(payload, (InferRequest, RawV2Body)) else "v1"
        if not self.ready or self.codec is None:
            self.metrics.observe_request(protocol, "not_ready", time.perf_counter() - start)
            raise ModelNotReady(self.name, self.load_error)
        try:
            if isinstance(payload, (InferRequest, RawV2Body)):
                result = self._predict_v2(payload, response_headers)
            else:  # v1: whatever JSON the body held (the decoder says what is wrong with it)
                decoded = self.codec.decode_v1(payload)
                result = self.codec.encode_v1(*self.score(decoded))
        except BadRequest as exc:
            self.metrics.observe_request(protocol, "bad_request", time.perf_counter() - start)
            raise InvalidInput(str(exc)) from exc
        self.metrics.observe_request(protocol, "success", time.perf_counter() - start)
        return result

    def _predict_v2(self, payload: Any, response_headers: Optional[Dict[str, str]]) -> Any:
        """InferResponse (KServe encodes it: REST JSON or gRPC), or bytes when REST binary outputs are asked."""
        assert self.codec is not None
        grpc = isinstance(payload, InferRequest) and payload.from_grpc
        body = _infer_request_as_dict(payload) if isinstance(payload, InferRequest) else payload
        decoded = self.codec.decode_v2(body)
        encoded = self.codec.encode_v2(decoded, *self.score(decoded))
        wanted = {} if grpc else binary.wants_binary_outputs(body)
        if any(wanted.values()):
            data, header_length = binary.encode_response(encoded, wanted)
            if header_length is not None and response_headers is not None:
                response_headers[binary.HEADER_LENGTH_HEADER] = str(header_length)
            return data
        # gRPC: raw_output_contents when the request used raw_input_contents (as Triton), typed otherwise
        raw = grpc and any(getattr(i, "_raw_data", None) is not None for i in payload.inputs)
        return self._infer_response(decoded, encoded, raw)

    def _infer_response(self, decoded: DecodedRequest, encoded: Dict[str, Any], raw: bool) -> InferResponse:
        outputs = []
        for o in encoded["outputs"]:
            if raw:
                item = InferOutput(name=o["name"], shape=o["shape"], datatype=o["datatype"])
                item.set_data_from_numpy(np.ascontiguousarray(o["data"]), binary_data=True)
            else:
                item = InferOutput(name=o["name"], shape=o["shape"], datatype=o["datatype"], data=o["data"].tolist())
            outputs.append(item)
        return InferResponse(
            response_id=decoded.request_id or "",
            model_name=self.name,
            model_version=self.model_version,
            infer_outputs=outputs,
        )

    def get_input_types(self) -> list:
        """The v2 metadata inputs: one per feature (none before the model is loaded)."""
        return self.codec.input_metadata() if self.codec else []

    def get_output_types(self) -> list:
        """The v2 metadata outputs: ``probability`` and ``label``."""
        return RequestCodec.output_metadata()


def _utf8(values: List[Any], where: str) -> List[Any]:
    out = []
    for i, value in enumerate(values):
        if not isinstance(value, bytes):
            out.append(value)
            continue
        try:
            out.append(value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BadRequest(f"{where}: BYTES element #{i} is not valid UTF-8 ({exc.reason})") from exc
    return out


def _infer_request_as_dict(request: InferRequest) -> Dict[str, Any]:
    """The JSON-body form of KServe's ``InferRequest`` (REST or gRPC; typed or raw contents)."""
    inputs = []
    for item in request.inputs:
        where = f"input {item.name!r}"
        shape = list(item.shape)
        raw = getattr(item, "_raw_data", None)
        if raw is not None:  # gRPC raw_input_contents
            if not all(type(d) is int and d >= 0 for d in shape):
                raise BadRequest(f"{where}: 'shape' must be a list of non-negative integers, got {shape!r}")
            data: Any = binary.tensor_from_raw(bytes(raw), item.datatype, shape, where)
        else:
            data = item.data
            if isinstance(data, np.ndarray):
                data = data.ravel().tolist()
            elif data is None or not isinstance(data, list):
                data = [] if data is None else list(data)
        if item.datatype == "BYTES" and isinstance(data, list):
            data = _utf8(data, where)
        entry: Dict[str, Any] = {"name": item.name, "shape": shape, "datatype": item.datatype, "data": data}
        inputs.append(entry)
    body: Dict[str, Any] = {"inputs": inputs}
    if request.id:
        body["id"] = request.id
    parameters = request.parameters
    if parameters and not request.from_grpc and isinstance(parameters, dict):
        body["parameters"] = dict(parameters)
    if request.request_outputs:
        body["outputs"] = [
            {"name": o.name, **({"parameters": dict(o.parameters)} if isinstance(o.parameters, dict) else {})}
            for o in request.request_outputs
        ]
    return body


def is_json_content_type(content_type: str) -> bool:
    """``application/json``, ``text/json`` or ``application/*+json`` (parameters ignored)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or (media.startswith("application/") and media.endswith("+json"))


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


def _non_finite_refusal(probability: np.ndarray) -> BadRequest:
    bad = int(np.flatnonzero(~np.isfinite(probability))[0])
    return BadRequest(f"row #{bad}: the model gives no finite score for these feature values")


def _merge(batch: Sequence[DecodedRequest]) -> Optional[DecodedRequest]:
    """One request holding every row of ``batch`` in order, or ``None`` when their forms differ.

    ``features`` tensors are stacked; per-feature columns are joined feature by feature (numpy columns
    with numpy, lists with lists). Anything else -- a tensor beside per-feature inputs, a feature given
    as a list in one request and as an array in another -- is scored request by request.
    """
    matrices = [d.matrix for d in batch if d.matrix is not None]
    if len(matrices) == len(batch):
        matrix = np.concatenate(matrices)
        return DecodedRequest(rows=matrix.shape[0], matrix=matrix, feature_order=batch[0].feature_order)
    return None if matrices else _merge_columns(batch)


def _merge_columns(batch: Sequence[DecodedRequest]) -> Optional[DecodedRequest]:
    names = list(batch[0].columns)
    if any(len(d.columns) != len(names) for d in batch):
        return None
    columns: Dict[str, Any] = {}
    for name in names:
        parts = [d.columns.get(name) for d in batch]
        # the casts state what the type tests over every part established (cast returns its argument)
        if all(type(p) is np.ndarray for p in parts):
            columns[name] = np.concatenate(cast(List[np.ndarray], parts))
        elif all(type(p) is list for p in parts):
            columns[name] = [v for p in cast(List[list], parts) for v in p]
        else:
            return None  # a missing feature, or one given as a list here and as an array there
    return DecodedRequest(columns=columns, rows=sum(d.rows for d in batch))
