"""The predict/infer fast path: an ASGI wrapper in front of the KServe ModelServer's FastAPI app.

KServe 0.21 routes ``POST /v1/models/{name}:predict`` and ``POST /v2/models/{name}/infer`` through
FastAPI (pydantic validation of the v2 body into ``InferenceRequest``, then ``InferRequest``), the
``TimingMiddleware`` (route matching again, two ``kserve.trace`` log lines per request), the
``DataPlane`` and ``Model.__call__`` (four histograms, one latency log line). For a model that scores a
row in tens of microseconds this machinery is most of the cost.

:class:`FastInferenceMiddleware` wraps that app: uvicorn serves the wrapper, so these requests never enter
Starlette's error middleware or FastAPI's telemetry and body-limit layers. For these two routes, when the
named model is a :class:`~kfpkit.serving.predictor.KfpkitModel`, it reads the raw
body, parses it with orjson (or, with ``Inference-Header-Content-Length``, the binary tensor extension of
:mod:`kfpkit.serving.binary`), validates it with the cheap checks of :mod:`kfpkit.serving.protocol`
(every refusal is a 4xx ``{"error": ...}``), scores, and writes the orjson response itself. It writes no
log line per request (the uvicorn access log is filtered for these paths by
:class:`InferenceAccessLogFilter`), and counts requests in the ``kfpkit_*`` metrics instead.

Everything else -- other paths, other models, CloudEvents (``ce-*`` headers, which KServe decodes), model
versions in the path -- falls through to KServe unchanged, so health, readiness, metadata, ``/metrics``
and error handling remain KServe's. :class:`BodyLimitMiddleware` is the outermost middleware of KServe's
app, so the body limit holds on every route.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple

import orjson

from kfpkit.serving.protocol import BadRequest

logger = logging.getLogger("kfpkit.serving")

Scope = Dict[str, Any]
Receive = Callable[[], Awaitable[Dict[str, Any]]]
Send = Callable[[Dict[str, Any]], Awaitable[None]]

V1_PREFIX = "/v1/models/"
V1_SUFFIX = ":predict"
V2_PREFIX = "/v2/models/"
V2_SUFFIX = "/infer"
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
# Requests up to this many rows are scored on the event loop (cheaper than a thread hop); larger ones in
# the loop's default executor so that health checks are not blocked behind them.
INLINE_MAX_ROWS = 256
_JSON_HEADERS = [(b"content-type", b"application/json")]
_BINARY_CONTENT_TYPE = b"application/octet-stream"
_HEADER_LENGTH = b"inference-header-content-length"


def match_inference_path(path: str) -> Optional[Tuple[str, str]]:
    """``("v1"|"v2", model_name)`` for a predict/infer path, else ``None``."""
    if path.startswith(V1_PREFIX) and path.endswith(V1_SUFFIX):
        name = path[len(V1_PREFIX) : -len(V1_SUFFIX)]
        protocol = "v1"
    elif path.startswith(V2_PREFIX) and path.endswith(V2_SUFFIX):
        name = path[len(V2_PREFIX) : -len(V2_SUFFIX)]
        protocol = "v2"
    else:
        return None
    if not name or "/" in name:
        return None
    return protocol, name


def check_declared_length(headers: Sequence[Tuple[bytes, bytes]], limit: int, what: str = "request body") -> None:
    """Refuses a body whose declared ``content-length`` is over ``limit``, before anything is read.

    Raises:
        BadRequest: 413, ``<what> of <n> bytes exceeds <limit>``.
    """
    for key, value in headers:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise BadRequest(f"{what} of {int(value)} bytes exceeds {limit}", status=413)


async def read_body(receive: Receive, limit: int, what: str = "request body") -> Optional[bytes]:
    """The whole request body, read chunk by chunk; ``None`` when the client disconnected first.

    The fast path, :class:`BodyLimitMiddleware` and the payload sink read bodies through it.

    Raises:
        BadRequest: 413, ``<what> exceeds <limit> bytes``, as soon as the chunks received pass ``limit``
            (the rest is never read).
    """
    chunks: List[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"{what} exceeds {limit} bytes", status=413)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_error(send: Send, status: int, message: str, extra_headers: Sequence[Tuple[bytes, bytes]] = ()) -> None:
    """Sends ``{"error": message}`` with ``status``."""
    payload = orjson.dumps({"error": message})
    headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_body_bytes`` with a 413 ``{"error": ...}`` on every route.

    A declared ``content-length`` over the limit is refused before reading; otherwise the body is read
    (counting) and replayed to the app, so KServe's routes, CloudEvents and ``--fast-path false`` are
    bounded like the fast path. Paths under ``closed_prefixes`` (the model repository extension, unless
    enabled) get a 404 ``{"error": ...}`` before they reach KServe.
    """

    def __init__(self, app: Any, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, closed_prefixes: Sequence[str] = ()):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.closed_prefixes = tuple(closed_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Passes the request on with its body bounded, or answers the 404 of a closed path or the 413."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.closed_prefixes and scope["path"].startswith(self.closed_prefixes):
            await send_error(send, 404, f"{scope['path']}: not served (the model repository extension is off)")
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        try:
            check_declared_length(scope["headers"], self.max_body_bytes)
            body = await read_body(receive, self.max_body_bytes)
        except BadRequest as exc:
            await send_error(send, exc.status, str(exc))
            return
        if body is None:  # the client went away
            return
        replayed = False

        async def replay() -> Dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class InferenceBatcher:
    """Scores the requests of one model that reach the event loop together as one batch.

    Under concurrent load, the bytes of several requests arrive in the same event-loop iteration: the fast
    path decodes each in its own task, then :meth:`submit` queues it, and the first request of an
    iteration schedules :meth:`flush` with ``loop.call_soon``, which runs after the other tasks of that
    iteration have queued theirs. The batch is scored by :meth:`KfpkitModel.score_batch` -- one transform
    and one model call for all of it, which is most of a one-row request's cost -- and each task encodes
    its own response. A lone request costs one loop hop more than scoring it inline. No timer: nothing
    waits for more requests to arrive. At most ``max_rows`` rows are scored together.
    """

    def __init__(self, model: Any, max_rows: int = INLINE_MAX_ROWS):
        self.model = model
        self.max_rows = max_rows
        self._pending: List[Tuple[Any, asyncio.Future]] = []
        self._rows = 0
        # set by the submit() that queues into an empty batch, so always set while anything is pending;
        # declared without a value so that the per-request path reads it without a None check
        self._loop: asyncio.AbstractEventLoop

    def submit(self, decoded: Any) -> asyncio.Future:
        """A future of ``(probability, labels)`` for ``decoded`` (or of its ``BadRequest``)."""
        if self._pending and self._rows + decoded.rows > self.max_rows:
            self.flush()
        if self._pending:
            # the loop that scheduled this batch's flush, in this same iteration (asking for the running
            # loop costs a getpid() system call per request on CPython 3.11)
            future = self._loop.create_future()
        else:
            self._loop = loop = asyncio.get_running_loop()
            future = loop.create_future()
            loop.call_soon(self.flush)
        self._pending.append((decoded, future))
        self._rows += decoded.rows
        return future

    def flush(self) -> None:
        """Scores every queued request and resolves its future."""
        batch, self._pending, self._rows = self._pending, [], 0
        if not batch:
            return
        try:
            results = self.model.score_batch([decoded for decoded, _ in batch])
        except Exception as exc:  # the model failed: every request of the batch answers 500
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # cancelled: the client went away
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


class FastInferenceMiddleware:
    """Serves v1 predict and v2 infer of kfpkit models without KServe's per-request machinery.

    Args:
        app: The wrapped ASGI app (KServe's middleware stack and router).
        model_repository: KServe's ``ModelRepository`` (models are looked up per request, so models
            registered or unloaded later are seen).
        max_body_bytes: Larger request bodies get a 413.
        micro_batching: Score concurrent requests together (:class:`InferenceBatcher`); ``False``: each alone.
    """

    def __init__(
        self,
        app: Any,
        model_repository: Any,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        micro_batching: bool = True,
    ):
        from kfpkit.serving.predictor import KfpkitModel

        self.app = app
        self.model_repository = model_repository
        self.max_body_bytes = max_body_bytes
        self._model_type = KfpkitModel
        self.micro_batching = micro_batching
        self._batchers: weakref.WeakKeyDictionary[Any, InferenceBatcher] = weakref.WeakKeyDictionary()

    def _batcher(self, model: Any) -> InferenceBatcher:
        batcher = self._batchers.get(model)
        if batcher is None:
            batcher = self._batchers[model] = InferenceBatcher(model)
        return batcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serves a POST to a kfpkit model's predict/infer path; hands anything else to the wrapped app.

        Binary CloudEvents (``ce-*`` headers) also go to the wrapped app, whose decoder handles them.
        """
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        route = match_inference_path(scope["path"])
        model = self.model_repository.get_model(route[1]) if route else None
        if route is None or not isinstance(model, self._model_type):
            await self.app(scope, receive, send)
            return
        content_type = ""
        content_length = -1
        header_length: Optional[bytes] = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"content-length":
                content_length = int(value) if value.isdigit() else -1
            elif key == _HEADER_LENGTH:
                header_length = value
            elif key.startswith(b"ce-"):
                await self.app(scope, receive, send)  # a binary CloudEvent: KServe's decoder handles it
                return
        await self._serve(route[0], model, content_type, content_length, header_length, receive, send)

    async def _serve(
        self,
        protocol: str,
        model: Any,
        content_type: str,
        content_length: int,
        header_length: Optional[bytes],
        receive: Receive,
        send: Send,
    ) -> None:
        start = time.perf_counter()
        status = 200
        outcome = "success"
        json_length: Optional[int] = None
        try:
            if not model.ready:
                detail = f" {model.load_error}" if model.load_error else ""
                raise BadRequest(f"Model with name {model.name} is not ready.{detail}", status=503)
            if content_length > self.max_body_bytes:
                raise BadRequest(f"request body of {content_length} bytes exceeds {self.max_body_bytes}", status=413)
            body = await read_body(receive, self.max_body_bytes)
            if body is None:
                return  # the client went away
            parsed = model.parse_body(protocol, content_type, header_length, body)
            if _rows_hint(protocol, parsed) > INLINE_MAX_ROWS:
                loop = asyncio.get_running_loop()
                payload, json_length = await loop.run_in_executor(None, model.handle, protocol, parsed)
            elif self.micro_batching:
                decoded = model.decode(protocol, parsed)
                probability, labels = await self._batcher(model).submit(decoded)
                payload, json_length = model.encode(protocol, parsed, decoded, probability, labels)
            else:
                payload, json_length = model.handle(protocol, parsed)
        except BadRequest as exc:
            status = exc.status
            outcome = _OUTCOME_BY_STATUS.get(status, "bad_request")
            payload = orjson.dumps({"error": str(exc)})
        except Exception as exc:
            logger.exception("model %s failed on a %s request", model.name, protocol)
            status = 500
            outcome = "error"
            payload = orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
        if json_length is None:
            headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        else:
            headers = [
                (b"content-type", _BINARY_CONTENT_TYPE),
                (b"content-length", str(len(payload)).encode()),
                (_HEADER_LENGTH, str(json_length).encode()),
            ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        model.metrics.observe_request(protocol, outcome, time.perf_counter() - start)


_OUTCOME_BY_STATUS = {413: "payload_too_large", 415: "unsupported_media_type", 503: "not_ready"}


def _rows_hint(protocol: str, body: Any) -> int:
    """Rows a parsed body claims (0 when it is malformed: the decoder then says what is wrong)."""
    if not isinstance(body, dict):
        return 0
    if protocol == "v1":
        instances = body.get("instances")
        return len(instances) if isinstance(instances, list) else 0
    inputs = body.get("inputs")
    first = inputs[0] if isinstance(inputs, list) and inputs else None
    shape = first.get("shape") if isinstance(first, dict) else None
    return shape[0] if isinstance(shape, list) and shape and type(shape[0]) is int else 0


class InferenceAccessLogFilter(logging.Filter):
    """Drops uvicorn access-log records of predict/infer requests (health and metadata stay logged)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) for an access-log record of a predict/infer path; true for every other record."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2].split("?", 1)[0]
            return match_inference_path(path) is None
        return True
