"""The KServe ModelServer that serves kfpkit models, with the predict/infer fast path in its app.

:class:`KfpkitModelServer` is a ``kserve.ModelServer``: same constructor arguments, ``DataPlane``,
model repository, REST endpoints (v1, v2, ``/metrics``, health), exception handlers, middlewares and
gRPC server. What differs:

* the FastAPI app is built per server by :meth:`KfpkitModelServer.create_app` -- with KServe's own
  ``RESTServer`` methods -- instead of being KServe's module-global app, so several servers can live in
  one process (tests, ``infra_validate``) and the app can be driven in-process through
  ``httpx.ASGITransport``; unless ``fast_path=False``, uvicorn serves it behind
  :class:`~kfpkit.serving.fast_path.FastInferenceMiddleware`, an ASGI wrapper in front of the app;
* the HTTP and gRPC listen address is a parameter (``host``; KServe hard-codes ``0.0.0.0`` / ``[::]``)
  and only one uvicorn worker per process is supported (scale with replicas);
* uvicorn's access log is off unless ``access_log=True`` (KServe's root handlers make uvicorn format a
  record for every response otherwise);
* :class:`~kfpkit.serving.fast_path.BodyLimitMiddleware` bounds request bodies on every route, and
  :mod:`kfpkit.serving.kserve_overrides` changes readiness, error bodies, raw-body decoding and the
  model repository extension (off unless ``enable_model_repository``);
* :meth:`KfpkitModelServer.start` runs the servers on uvloop (KServe's ``asyncio.run`` ignores uvicorn's
  loop setting) unless ``event_loop="asyncio"``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from importlib import metadata
from typing import Any, List, Optional, Sequence, Tuple

from fastapi import FastAPI
from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import NoModelReady
from kserve.model import BaseKServeModel
from kserve.protocol.rest.server import RESTServer

from kfpkit.serving import kserve_overrides
from kfpkit.serving.fast_path import (
    DEFAULT_MAX_BODY_BYTES,
    BodyLimitMiddleware,
    FastInferenceMiddleware,
    InferenceAccessLogFilter,
)
from kfpkit.serving.vertex_routes import VertexRoutes

VertexRoutesConfig = Tuple[str, str, str]  # (model name, predict route, health route)

logger = logging.getLogger("kfpkit.serving")


def new_event_loop(event_loop: str = "auto") -> asyncio.AbstractEventLoop:
    """A uvloop loop for ``"auto"``/``"uvloop"`` when uvloop is installed, else asyncio's."""
    if event_loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if event_loop == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


_stashed_access_handlers: List[logging.Handler] = []


def set_uvicorn_access_log(enabled: bool) -> None:
    """Turns uvicorn's access log on or off at the source.

    uvicorn's HTTP protocol formats a record for every response whenever the ``uvicorn.access`` logger has
    handlers (KServe's logging configuration gives it one), and ``uvicorn.Config`` applies
    ``access_log=False`` only in its own constructor -- before KServe's ``RESTServer`` could be told. Off
    does what uvicorn does (no handlers, no propagation); the handlers are kept aside so that a later
    server in the same process can turn the log back on.
    """
    access = logging.getLogger("uvicorn.access")
    if not enabled:
        if access.handlers:
            _stashed_access_handlers[:] = access.handlers
        access.handlers = []
        access.propagate = False
    elif not access.handlers and _stashed_access_handlers:
        access.handlers = list(_stashed_access_handlers)


class KfpkitRESTServer(RESTServer):
    """KServe's ``RESTServer`` with a per-instance app, a configurable host and the fast path."""

    def __init__(
        self,
        *args: Any,
        host: str = "0.0.0.0",
        fast_path: bool = True,
        micro_batching: bool = True,
        enable_docs_url: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        enable_model_repository: bool = False,
        access_log: bool = False,
        vertex_routes: Optional[VertexRoutesConfig] = None,
        **kwargs: Any,
    ):
        super().__init__(FASTAPI_APP_IMPORT_STRING, *args, **kwargs)
        self.config.host = host
        set_uvicorn_access_log(access_log)  # uvicorn.Config reads access_log only when it is built
        self.fast_path = fast_path
        self.micro_batching = micro_batching
        self.enable_docs_url = enable_docs_url
        self.max_body_bytes = max_body_bytes
        self.enable_model_repository = enable_model_repository
        self.vertex_routes = vertex_routes
        self.app: Optional[FastAPI] = None
        self.served_app: Any = None

    def create_application(self) -> FastAPI:
        """Builds KServe's FastAPI app exactly like KServe does (same settings, middlewares, routes, handlers).

        What uvicorn serves is :attr:`served_app`: this app, behind the fast path unless ``fast_path=False``.
        """
        if self.app is not None:
            return self.app
        app = FastAPI(
            title="KServe ModelServer",
            version=metadata.version("kserve"),
            docs_url="/docs" if self.enable_docs_url else None,
            redoc_url=None,
            default_response_class=kserve_overrides.OrjsonResponse,
        )
        kserve_overrides.build_kserve_app(self, app)
        app.add_middleware(kserve_overrides.RawInferBodyMiddleware, dataplane=self.dataplane)
        closed = () if self.enable_model_repository else (kserve_overrides.REPOSITORY_PATH_PREFIX,)
        app.add_middleware(BodyLimitMiddleware, max_body_bytes=self.max_body_bytes, closed_prefixes=closed)
        served: Any = app
        if self.fast_path:
            # in front of the FastAPI app, not inside it: predict/infer of kfpkit models skip Starlette's
            # error middleware, FastAPI's telemetry and body-limit layers and KServe's TimingMiddleware
            served = FastInferenceMiddleware(
                app,
                model_repository=self.dataplane.model_registry,
                max_body_bytes=self.max_body_bytes,
                micro_batching=self.micro_batching,
            )
            access = logging.getLogger("uvicorn.access")
            if not any(isinstance(f, InferenceAccessLogFilter) for f in access.filters):
                access.addFilter(InferenceAccessLogFilter())
        if self.vertex_routes is not None:  # only under Vertex AI's variables: unset, the app is unchanged
            served = VertexRoutes(served, *self.vertex_routes)
        self.config.app = served
        self.app = app
        self.served_app = served
        return app


class KfpkitModelServer(ModelServer):
    """``kserve.ModelServer`` serving kfpkit models (see the module docstring).

    Args:
        host: HTTP listen address (``0.0.0.0`` in a container, ``127.0.0.1`` for local use).
        fast_path: Put :class:`FastInferenceMiddleware` in front of KServe's predict/infer routes.
        max_body_bytes: Larger request bodies get a 413 (every route).
        enable_model_repository: Serve the model repository extension (``/v2/repository/models/{name}/
            load|unload`` and its gRPC RPCs); off by default: anyone who reaches the port could unload.
        access_log: uvicorn's access log (off by default; when on, predict/infer lines are still dropped).
        micro_batching: Score the fast path's concurrent requests together
            (:class:`~kfpkit.serving.fast_path.InferenceBatcher`); ``False`` scores each request alone.
        vertex_routes: ``(model name, AIP_PREDICT_ROUTE, AIP_HEALTH_ROUTE)``: serve Vertex AI's routes in front
            of the app (:class:`~kfpkit.serving.vertex_routes.VertexRoutes`); ``None`` (default): nothing added.
        **kwargs: ``kserve.ModelServer`` arguments (``http_port``, ``grpc_port``, ``enable_grpc``, ...).
    """

    # ModelServer.__init__ sets it to None; _rest_server_instance builds it on first use
    _rest_server: Optional[KfpkitRESTServer]

    def __init__(
        self,
        host: str = "0.0.0.0",
        fast_path: bool = True,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        enable_model_repository: bool = False,
        access_log: bool = False,
        micro_batching: bool = True,
        vertex_routes: Optional[VertexRoutesConfig] = None,
        **kwargs: Any,
    ):
        if kwargs.get("workers", 1) != 1:
            raise ValueError("kfpkit serves with one uvicorn worker per process; scale with replicas instead")
        kserve_overrides.check_private_api()
        kwargs["workers"] = 1
        super().__init__(**kwargs)
        self.dataplane = kserve_overrides.KfpkitDataPlane(model_registry=self.registered_models)
        self.host = host
        self.fast_path = fast_path
        self.micro_batching = micro_batching
        self.max_body_bytes = max_body_bytes
        self.enable_model_repository = enable_model_repository
        self.access_log = access_log
        self.vertex_routes = vertex_routes

    def _rest_server_instance(self) -> KfpkitRESTServer:
        if self._rest_server is None:
            self._rest_server = KfpkitRESTServer(
                self.dataplane,
                self.model_repository_extension,
                self.http_port,
                access_log_format=self.access_log_format,
                workers=1,
                grace_period=self.grace_period,
                event_loop=self.event_loop,
                timeout_keep_alive=self.timeout_keep_alive,
                ssl_certfile=self.ssl_certfile,
                ssl_keyfile=self.ssl_keyfile,
                host=self.host,
                fast_path=self.fast_path,
                micro_batching=self.micro_batching,
                enable_docs_url=self.enable_docs_url,
                max_body_bytes=self.max_body_bytes,
                enable_model_repository=self.enable_model_repository,
                access_log=self.access_log,
                vertex_routes=self.vertex_routes,
            )
        return self._rest_server

    def register_models(self, models: Sequence[BaseKServeModel], require_ready: bool = True) -> None:
        """Registers models like ``ModelServer.start`` does.

        Args:
            models: Loaded models.
            require_ready: Raise ``NoModelReady`` when none is ready (KServe's behaviour); with ``False``
                not-ready models are registered too, so that their readiness endpoints answer 503.
        """
        if require_ready and models and not any(m.ready for m in models):
            raise NoModelReady(list(models), getattr(models[0], "load_error", None))
        for model in models:
            if model.ready or not require_ready:
                self.register_model(model)
                model.enable_latency_logging = self.enable_latency_logging
                model.start()  # KfpkitModel.start() keeps a refused model not ready

    def create_app(self, models: Sequence[BaseKServeModel] = (), require_ready: bool = True) -> Any:
        """Registers ``models`` and returns the server's ASGI app without starting a server.

        The app is what :meth:`start` serves (the fast path in front of KServe's FastAPI app, or that
        FastAPI app alone with ``fast_path=False``); drive it in-process with ``httpx.ASGITransport``.
        """
        if models:
            self.register_models(models, require_ready=require_ready)
        rest = self._rest_server_instance()
        rest.create_application()
        return rest.served_app

    def start(self, models: List[BaseKServeModel]) -> None:
        """Registers ``models`` and serves HTTP (and gRPC when enabled) until stopped by a signal.

        Raises:
            NoModelReady: no model is ready (a refused model directory).
        """
        self.register_models(models, require_ready=True)
        loop = new_event_loop(self.event_loop)
        asyncio.set_event_loop(loop)
        rest = self._rest_server_instance()
        self.servers.append(rest.start())
        if self.enable_grpc:
            self._grpc_server = self.grpc_server()
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()  # on the loop that serves (KServe configures one that asyncio.run replaces)
        self.register_signal_handler()
        # the loaded libraries (kserve, fastapi, pydantic, torch, sklearn) are hundreds of thousands of
        # long-lived objects: out of the collector's reach, a full collection no longer walks them while
        # requests wait (CPython's gc.freeze, meant for exactly this)
        gc.collect()
        gc.freeze()
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    def grpc_server(self) -> kserve_overrides.KfpkitGRPCServer:
        """The gRPC server (OIP ``GRPCInferenceService``) on ``host:grpc_port``; start it with ``.start(n)``."""
        from kserve import model_server as kserve_model_server

        return kserve_overrides.KfpkitGRPCServer(
            self.grpc_port,
            self.dataplane,
            self.model_repository_extension,
            kwargs=vars(kserve_model_server.args),
            grace_period=self.grace_period,
            host=self.host,
            enable_model_repository=self.enable_model_repository,
        )

    async def serve_async(self) -> None:
        """Serves HTTP on the running event loop (no gRPC, no signal handlers): for embedding and tests.

        Stop it with :meth:`request_shutdown`.
        """
        rest = self._rest_server_instance()
        await rest.start()

    def request_shutdown(self) -> None:
        """Asks a server started by :meth:`serve_async` to finish (uvicorn's graceful shutdown)."""
        if self._rest_server is not None:
            self._rest_server._server.should_exit = True
