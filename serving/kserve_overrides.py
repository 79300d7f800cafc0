"""Every place kfpkit reaches into KServe 0.21 beyond its public API, in one module.

KServe builds its FastAPI app and its gRPC server in methods that are not public API
(``RESTServer._add_middlewares`` / ``_register_endpoints`` / ``_add_exception_handlers``, ``GRPCServer``'s
attributes, ``InferInput._raw_data``, ...). kfpkit needs them to build a per-server app, to bind gRPC to
``--host``, to read gRPC ``raw_input_contents`` and to change four behaviours:

* **readiness** (:class:`KfpkitDataPlane`): ``/v2/health/ready`` and gRPC ``ServerReady`` are true only
  while at least one model is registered and every registered model is ready (KServe: always true);
* **decoding** (:class:`RawInferBodyMiddleware`, :meth:`KfpkitDataPlane.decode`): REST bodies addressed
  to kfpkit models -- v1, v2 JSON and v2 with the binary tensor extension -- reach the DataPlane as raw
  bytes and are parsed and validated by the same code as the fast path (:meth:`KfpkitModel.parse_body`,
  ``RequestCodec``), so both paths answer alike; KServe's pydantic ``InferenceRequest`` would coerce
  what kfpkit refuses (``"shape": [1.0]``, ``["1"]``) and answer 422 ``{"detail": ...}`` for the rest;
* **errors** (:func:`install_exception_handlers`): every refusal is ``{"error": ...}``; a FastAPI/pydantic
  validation failure of a kfpkit model's request is answered with the kfpkit decoder's 400 (the fast
  path's message) instead of a 422 ``{"detail": [...]}``; an unknown model is a 404 with one log line
  and a refused request a 400 without KServe's per-request traceback;
* **the model repository extension** (``/v2/repository/models/{name}/load|unload``, gRPC
  ``RepositoryModelLoad|Unload``) is removed unless enabled: one unauthenticated unload takes the model
  down.

:func:`check_private_api` names every private KServe name used here; :class:`KfpkitModelServer` calls
it at construction and a test calls it, so a KServe upgrade that moves one fails with the name.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput, ModelNotFound
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import InferInput
from kserve.protocol.rest.server import RESTServer

from kfpkit.serving.predictor import RawV2Body
from kfpkit.serving.protocol import BadRequest

logger = logging.getLogger("kfpkit.serving")

REPOSITORY_PATH_PREFIX = "/v2/repository/"

# (owner, attribute, what kfpkit uses it for)
PRIVATE_API: Tuple[Tuple[Any, str, str], ...] = (
    (RESTServer, "_add_middlewares", "KServe's middlewares on the per-server app"),
    (RESTServer, "_register_endpoints", "KServe's routes on the per-server app"),
    (RESTServer, "_add_exception_handlers", "KServe's exception handlers on the per-server app"),
    (GRPCServer, "stop", "gRPC shutdown (reads GRPCServer._server)"),
    (InferenceServicer, "validate_grpc_request", "gRPC raw_input_contents checks"),
    (InferenceServicer, "ModelInfer", "gRPC inference"),
    (DataPlane, "decode", "raw REST bodies of kfpkit models"),
    (DataPlane, "ready", "server readiness"),
    (DataPlane, "model_registry", "the model repository"),
)
# instance attributes, checked on fresh objects
PRIVATE_INSTANCE_API: Tuple[Tuple[str, str], ...] = (
    ("InferInput", "_raw_data"),
    ("RESTServer", "_server"),
    ("GRPCServer", "_server"),
    ("GRPCServer", "_data_plane"),
    ("GRPCServer", "_model_repository_extension"),
    ("GRPCServer", "_kwargs"),
    ("GRPCServer", "_port"),
    ("ModelServer", "_rest_server"),
    ("ModelServer", "_grpc_server"),
    ("ModelServer", "_serve"),
)


class KServeAPIChanged(RuntimeError):
    """A private KServe name that kfpkit relies on is gone (a KServe upgrade)."""


def check_private_api() -> None:
    """Raises :class:`KServeAPIChanged` naming every private KServe name kfpkit uses that is missing."""
    from kserve import ModelServer
    from kserve.model_repository import ModelRepository
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension

    missing: List[str] = [
        f"{owner.__module__}.{owner.__name__}.{name} ({why})"
        for owner, name, why in PRIVATE_API
        if not hasattr(owner, name)
    ]
    registry = ModelRepository(models_dir="/nonexistent")
    samples: Dict[str, Any] = {
        "InferInput": InferInput(name="x", shape=[1], datatype="FP32", data=[0.0]),
        "GRPCServer": GRPCServer(0, DataPlane(model_registry=registry), ModelRepositoryExtension(registry), {}),
    }
    for cls_name, attr in PRIVATE_INSTANCE_API:
        if cls_name in samples:
            present = hasattr(samples[cls_name], attr)
        elif cls_name == "RESTServer":
            present = attr in RESTServer.__init__.__code__.co_names
        else:  # ModelServer: attributes set in __init__ / methods
            present = hasattr(ModelServer, attr) or attr in ModelServer.__init__.__code__.co_names
        if not present:
            missing.append(f"{cls_name}.{attr}")
    if missing:
        raise KServeAPIChanged(
            "kfpkit.serving relies on KServe internals that this KServe version lacks: "
            + "; ".join(missing)
            + " -- update kfpkit/serving/kserve_overrides.py for the new KServe"
        )


# ---------------------------------------------------------------------------------------- REST


class OrjsonResponse(JSONResponse):
    """A JSON response rendered by orjson: the response class of kfpkit's KServe app and its error bodies.

    FastAPI deprecates its own ``ORJSONResponse`` in favour of response models, which KServe's infer routes
    do not declare (``response_model=None``): with FastAPI's default ``JSONResponse`` they would be rendered
    by ``json.dumps``. This is the custom response class of the FastAPI docs, with the options (numpy
    arrays, non-string keys) and so the bytes of ``ORJSONResponse``.
    """

    def render(self, content: Any) -> bytes:
        """``content`` as JSON bytes (numpy arrays as lists, non-string keys as strings)."""
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def build_kserve_app(rest_server: RESTServer, app: FastAPI) -> FastAPI:
    """KServe's middlewares, routes and exception handlers on ``app``, then kfpkit's handlers.

    The repository routes stay registered (FastAPI 0.165 includes routers lazily); the server's
    ``BodyLimitMiddleware`` closes them unless the extension is enabled.
    """
    rest_server._add_middlewares(app)
    rest_server._register_endpoints(app)
    rest_server._add_exception_handlers(app)
    install_exception_handlers(app, rest_server.dataplane)
    return app


def _kfpkit_model(dataplane: DataPlane, name: Optional[str]) -> Any:
    from kfpkit.serving.predictor import KfpkitModel

    model = dataplane.model_registry.get_model(name) if name else None
    return model if isinstance(model, KfpkitModel) else None


def install_exception_handlers(app: FastAPI, dataplane: DataPlane) -> None:
    """Installs kfpkit's handlers: BadRequest, validation errors as ``{"error": ...}``, quiet 404s."""

    async def bad_request(_request: Request, exc: BadRequest) -> OrjsonResponse:
        return OrjsonResponse(status_code=exc.status, content={"error": str(exc)})

    async def validation_error(request: Request, exc: RequestValidationError) -> OrjsonResponse:
        model = _kfpkit_model(dataplane, request.path_params.get("model_name"))
        if model is not None and model.codec is not None:
            protocol = "v1" if request.url.path.endswith(":predict") else "v2"
            try:
                body = await request.body()
                parsed = model.parse_body(
                    protocol,
                    _content_type(request.headers),
                    request.headers.get("inference-header-content-length"),
                    body,
                )
                if protocol == "v1":
                    model.codec.decode_v1(parsed)
                else:
                    model.codec.decode_v2(parsed)
            except BadRequest as refusal:
                model.metrics.observe_request(protocol, "bad_request", 0.0)
                return OrjsonResponse(status_code=refusal.status, content={"error": str(refusal)})
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()[:5]]
        return OrjsonResponse(status_code=400, content={"error": "invalid request: " + "; ".join(parts)})

    async def model_not_found(_request: Request, exc: ModelNotFound) -> OrjsonResponse:
        logger.warning("%s", exc)
        return OrjsonResponse(status_code=404, content={"error": str(exc)})

    async def invalid_input(_request: Request, exc: InvalidInput) -> OrjsonResponse:
        logger.debug("invalid input: %s", exc)  # KServe logs a traceback per refused request
        return OrjsonResponse(status_code=400, content={"error": str(exc)})

    # Starlette types a handler as taking any Exception, although it calls it only with instances of the
    # class it is registered for (encode/starlette#2417): a handler of one exception class is refused
    app.add_exception_handler(BadRequest, bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidInput, invalid_input)
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ModelNotFound, model_not_found)


class KfpkitDataPlane(DataPlane):
    """KServe's DataPlane with kfpkit's readiness and raw-body decoding (see the module docstring)."""

    async def ready(self) -> bool:
        """Ready when at least one model is registered and every registered model is ready."""
        models = self.model_registry.get_models()
        return bool(models) and all(getattr(m, "ready", False) for m in models.values())

    def decode(self, body: Any, headers: Any, protocol_version: str = "v1", model_name: Optional[str] = None):
        """Parses a raw body for a kfpkit model with its own parser; anything else goes to KServe's decode.

        A v2 body is wrapped in :class:`RawV2Body` (or, when not a JSON object, refused by the codec here),
        so that the model decodes it once. CloudEvents keep KServe's decoding.

        Raises:
            BadRequest: the body does not parse, counted as a bad request in the model's metrics.
        """
        if isinstance(body, (bytes, bytearray)) and not _has_cloudevent_headers(headers):
            model = self._target(model_name)
            if model is not None and model.codec is not None:
                protocol = "v2" if protocol_version.lower() == "v2" else "v1"
                try:
                    parsed = model.parse_body(
                        protocol,
                        _content_type(headers),
                        headers.get("inference-header-content-length") if headers else None,
                        bytes(body),
                    )
                    if protocol == "v2" and not isinstance(parsed, dict):
                        model.codec.decode_v2(parsed)  # raises the decoder's BadRequest
                    elif protocol == "v2" and not isinstance(parsed, RawV2Body):
                        parsed = RawV2Body(parsed)
                except BadRequest:
                    model.metrics.observe_request(protocol, "bad_request", 0.0)
                    raise
                return parsed, {}
        return super().decode(body, headers, protocol_version=protocol_version, model_name=model_name)

    def _target(self, model_name: Optional[str]) -> Any:
        if model_name:
            return _kfpkit_model(self, model_name)
        # v1 decodes without the model name: kfpkit parses when every registered model is a kfpkit model
        models = list(self.model_registry.get_models())
        targets = [_kfpkit_model(self, name) for name in models]
        return targets[0] if targets and all(t is not None for t in targets) else None


ORIGINAL_CONTENT_TYPE = "x-kfpkit-original-content-type"
_ORIGINAL_CONTENT_TYPE = ORIGINAL_CONTENT_TYPE.encode()


class RawInferBodyMiddleware:
    """Lets v2 infer bodies of kfpkit models reach KServe's route as bytes, not pydantic-parsed.

    KServe's v2 infer endpoint takes ``Union[InferenceRequest, bytes]``: FastAPI parses a JSON content
    type into the pydantic model and passes anything else as bytes. For kfpkit models this middleware
    sets ``content-type: application/octet-stream`` and keeps the client's value in
    ``x-kfpkit-original-content-type``, which :meth:`KfpkitDataPlane.decode` reads. CloudEvents keep
    their headers (KServe decodes them).
    """

    def __init__(self, app: Any, dataplane: DataPlane):
        self.app = app
        self.dataplane = dataplane

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        """Rewrites the content type of a v2 infer POST to a kfpkit model, then calls the wrapped app."""
        if scope["type"] == "http" and scope["method"] == "POST":
            from kfpkit.serving.fast_path import match_inference_path

            route = match_inference_path(scope["path"])
            headers = scope["headers"]
            if (
                route is not None
                and route[0] == "v2"
                and _kfpkit_model(self.dataplane, route[1]) is not None
                and not any(k.startswith(b"ce-") for k, _ in headers)
            ):
                original = next((v for k, v in headers if k == b"content-type"), b"")
                rewritten = [(k, v) for k, v in headers if k != b"content-type"]
                rewritten += [(b"content-type", b"application/octet-stream"), (_ORIGINAL_CONTENT_TYPE, original)]
                scope = {**scope, "headers": rewritten}
        await self.app(scope, receive, send)


def _content_type(headers: Any) -> str:
    if not headers:
        return ""
    if ORIGINAL_CONTENT_TYPE in headers:
        return headers[ORIGINAL_CONTENT_TYPE]
    return headers.get("content-type", "")


def _has_cloudevent_headers(headers: Any) -> bool:
    return bool(headers) and any(str(k).lower().startswith("ce-") for k in headers)


# ---------------------------------------------------------------------------------------- gRPC


class KfpkitServicer(InferenceServicer):
    """KServe's servicer; every refusal is a gRPC status with a message, the repository RPCs are gated."""

    def __init__(self, data_plane: DataPlane, model_repository_extension: Any, enable_model_repository: bool):
        super().__init__(data_plane, model_repository_extension)
        self.enable_model_repository = enable_model_repository

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        """KServe's ModelInfer; an empty or unknown model name and refused inputs become gRPC statuses.

        Raises:
            InvalidArgument: the model name is empty, or the inputs are refused (the decoder's message).
            NotFound: no model of that name is registered.
        """
        from grpc_interceptor.exceptions import InvalidArgument, NotFound

        if not request.model_name:
            raise InvalidArgument("model_name is empty")
        if self._data_plane.model_registry.get_model(request.model_name) is None:
            raise NotFound(f"Model with name {request.model_name} does not exist.")
        try:
            return await super().ModelInfer(request, context)
        except (InvalidInput, BadRequest) as exc:
            raise InvalidArgument(str(exc)) from exc

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        """KServe's RepositoryModelLoad; ``UNIMPLEMENTED`` while the model repository extension is off."""
        self._check_repository()
        return await super().RepositoryModelLoad(request, context)

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        """KServe's RepositoryModelUnload; ``UNIMPLEMENTED`` while the model repository extension is off."""
        self._check_repository()
        return await super().RepositoryModelUnload(request, context)

    def _check_repository(self) -> None:
        from grpc_interceptor.exceptions import Unimplemented

        if not self.enable_model_repository:
            raise Unimplemented("the model repository extension is off (kfpkit serve --enable-model-repository)")


class KfpkitGRPCServer(GRPCServer):
    """KServe's gRPC server bound to ``host`` (KServe listens on ``[::]``) with :class:`KfpkitServicer`."""

    def __init__(self, *args: Any, host: str = "0.0.0.0", enable_model_repository: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.host = host
        self.enable_model_repository = enable_model_repository
        self.bound_port: Optional[int] = None

    async def start(self, max_workers: int) -> None:
        """Serves gRPC on ``host`` until the server terminates; the bound port is in :attr:`bound_port`."""
        from concurrent import futures

        from grpc import aio
        from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor

        servicer = KfpkitServicer(self._data_plane, self._model_repository_extension, self.enable_model_repository)
        options = [
            (key, self._kwargs.get(key))
            for key in ("grpc_max_send_message_length", "grpc_max_receive_message_length")
            if self._kwargs.get(key) is not None
        ]
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(ExceptionToStatusInterceptor(),),  # no per-call log line (KServe's LoggingInterceptor)
            options=[(f"grpc.{k[len('grpc_') :]}", v) for k, v in options],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.bound_port = self._server.add_insecure_port(f"{host}:{self._port}")
        logger.info("gRPC server on %s:%s", host, self.bound_port)
        await self._server.start()
        await self._server.wait_for_termination()
