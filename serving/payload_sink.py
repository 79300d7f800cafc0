"""``kfpkit payload-sink``: receives KServe's logger CloudEvents and writes payload records.

KServe's inference logger (``spec.predictor.logger``, ``mode: all``) sends every request and, for HTTP 200
only, its response as **binary-mode CloudEvents v1.0**: ``ce-type`` ``org.kubeflow.serving.inference.request``
or ``org.kubeflow.serving.inference.response``, the same ``ce-id`` for both (the request's ``Ce-Id`` header or
a new UUID), the raw request/response body as data, and the extensions ``ce-inferenceservicename``,
``ce-namespace``, ``ce-component``, ``ce-endpoint`` (plus ``ce-recordedtime`` and ``ce-metadata``). The logger
treats any status but 200 as a failed delivery, and delivery is at least once.

The sink joins request and response by ``ce-id``, decodes v1 and v2 bodies with the served model's own
:class:`~kfpkit.serving.protocol.RequestCodec`, dedupes, and writes the same payload records as
``kfpkit serve --payload-log`` (:mod:`kfpkit.core.payload_record`).

**An acknowledged event is never lost.** Each accepted event is appended to the active spool segment
(``<spool>/segment-<n>.jsonl``, one ``write`` on an ``O_APPEND`` descriptor; ``fsync`` too with
``--fsync``) *before* the 200 is sent. Segments are rotated every ``segment_events`` events or
``compact_seconds`` and **compacted**: the joined records of segment ``n`` are written as
``part-spool-<n>.parquet`` in their hour partitions (the same name for the same rows, so a compaction
repeated after a crash rewrites the same files), their ids are appended to ``<spool>/compacted.ids``,
unmatched events are carried into the active segment, and segment ``n`` is deleted. On start the sink
replays every segment left by a previous process (a torn last line, never acknowledged, is ignored) and
compacts them; ids in ``compacted.ids`` are never written again.

**Bad events** get a 4xx and are counted in ``kfpkit_payload_sink_events_total{outcome}``; they never stop the
sink: no ``ce-id`` or not a CloudEvent (``no_id``, 400), an unknown ``ce-type`` (``unknown_type``, 400), an
unknown inference service (``unknown_model``, 404), a body the model's codec refuses (``undecodable``, 400),
a response whose request does not arrive within ``orphan_wait_s`` (``orphan_response``, 409), and a body over
``max_body_bytes`` (``payload_too_large``, 413; the predictor's limit by default), refused from its
``content-length`` before it is read, or as soon as its streamed chunks pass the limit. A request whose response
never comes (the predictor answered an error) is dropped after ``pending_ttl_s`` and counted as
``kfpkit_payload_sink_unanswered_total``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

import numpy as np

from kfpkit.core.payload_record import UNVERSIONED, PayloadEntry, PayloadSchema, write_partitioned
from kfpkit.serving.fast_path import DEFAULT_MAX_BODY_BYTES, check_declared_length, read_body
from kfpkit.serving.payload_log import counter
from kfpkit.serving.protocol import BadRequest

logger = logging.getLogger("kfpkit.serving.payload_sink")

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
_KIND = {REQUEST_TYPE: "request", RESPONSE_TYPE: "response"}
SEGMENT_RE = re.compile(r"segment-(\d{8})\.jsonl")
COMPACTED_IDS = "compacted.ids"
OUTCOMES = (
    "accepted",
    "duplicate",
    "no_id",
    "unknown_type",
    "unknown_model",
    "undecodable",
    "orphan_response",
    "payload_too_large",
)


class BadEvent(Exception):
    """An event the sink refuses: answered with ``status`` and counted under ``outcome``."""

    def __init__(self, outcome: str, message: str, status: int = 400):
        super().__init__(message)
        self.outcome = outcome
        self.status = status


@dataclass
class ModelTarget:
    """A served model whose events the sink decodes."""

    name: str
    version: str
    codec: Any
    schema: PayloadSchema

    @classmethod
    def from_model_dir(cls, name: str, model_dir: str, version: Optional[str] = None) -> ModelTarget:
        """The target of a model version directory: its codec and payload schema from ``preprocessing.json``.

        Args:
            name: The InferenceService name of the model's events.
            model_dir: Local model version directory.
            version: The version to record; by default parsed from a registry version path, else
                ``UNVERSIONED``.
        """
        from kfpkit.core.preprocessing import PreprocessingSpec
        from kfpkit.serving.protocol import RequestCodec

        spec = PreprocessingSpec.load(os.path.join(model_dir, "preprocessing.json"))
        if not version:
            from kfpkit.core.registry import RegistryError, parse_version_uri

            try:
                version = str(parse_version_uri(model_dir).version)
            except RegistryError:
                version = UNVERSIONED
        return cls(name, version, RequestCodec.from_spec(spec, name, version), PayloadSchema(spec))


def _metrics() -> Dict[str, Any]:
    return {
        "sink_events": counter(
            "sink_events", "kfpkit_payload_sink_events", "CloudEvents received by the payload sink", ["outcome"]
        ),
        "sink_records": counter(
            "sink_records", "kfpkit_payload_sink_records", "Payload records the sink wrote", ["model_name"]
        ),
        "sink_unanswered": counter(
            "sink_unanswered",
            "kfpkit_payload_sink_unanswered",
            "Requests dropped because no response event came",
            ["model_name"],
        ),
    }


# --------------------------------------------------------------------------- decoding
def decode_request(target: ModelTarget, body: bytes) -> Any:
    """The request's decoded feature columns (v1 ``instances`` or v2 ``inputs``).

    Raises:
        BadEvent: the body is not JSON or the model's codec refuses it.
    """
    from kfpkit.serving.protocol import BadRequest

    parsed = _json(body, "request")
    try:
        if isinstance(parsed, dict) and "inputs" in parsed:
            return target.codec.decode_v2(parsed)
        return target.codec.decode_v1(parsed)
    except BadRequest as exc:
        raise BadEvent("undecodable", f"request body refused by model {target.name}: {exc}") from exc


def decode_response(body: bytes, rows: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(score, label)`` float64 arrays (NaN where absent) of a v1 or v2 response body.

    Raises:
        BadEvent: not JSON, neither shape, or not ``rows`` instances.
    """
    parsed = _json(body, "response")
    score = label = None
    if isinstance(parsed, dict) and isinstance(parsed.get("predictions"), list):
        predictions = parsed["predictions"]
        if all(isinstance(p, dict) for p in predictions):
            score = [p.get("probability") for p in predictions]
            label = [p.get("label") for p in predictions]
        else:
            score = predictions
    elif isinstance(parsed, dict) and isinstance(parsed.get("outputs"), list):
        for output in parsed["outputs"]:
            if isinstance(output, dict) and output.get("name") == "probability":
                score = output.get("data")
            elif isinstance(output, dict) and output.get("name") == "label":
                label = output.get("data")
    else:
        raise BadEvent("undecodable", "response body has neither 'predictions' (v1) nor 'outputs' (v2)")
    n = len(score if score is not None else label or [])
    try:
        scores = (
            np.asarray([np.nan if v is None else v for v in score], dtype=np.float64) if score else np.full(n, np.nan)
        )
        labels = (
            np.asarray([np.nan if v is None else v for v in label], dtype=np.float64) if label else np.full(n, np.nan)
        )
    except (TypeError, ValueError) as exc:
        raise BadEvent("undecodable", f"response scores are not numbers ({exc})") from exc
    if len(scores) != len(labels) or (rows is not None and len(scores) != rows):
        raise BadEvent("undecodable", f"response has {len(scores)} instance(s), the request {rows}")
    return scores, labels


def _json(body: bytes, what: str) -> Any:
    import orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadEvent("undecodable", f"{what} body is not JSON: {exc}") from exc


def _event_time(value: Any) -> float:
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


# --------------------------------------------------------------------------- spool
class Spool:
    """Append-only JSON Lines segments plus the ids already compacted."""

    def __init__(self, directory: str, fsync: bool = False):
        self.directory = directory
        self.fsync = fsync
        os.makedirs(directory, exist_ok=True)
        self._fd: Optional[int] = None
        self.active: Optional[int] = None
        self.active_events = 0
        self.active_since = time.monotonic()

    def segments(self) -> List[int]:
        """Numbers of the segment files in the spool, ascending."""
        return sorted(int(m.group(1)) for f in os.listdir(self.directory) if (m := SEGMENT_RE.fullmatch(f)))

    def path(self, number: int) -> str:
        """Path of segment ``number``."""
        return os.path.join(self.directory, f"segment-{number:08d}.jsonl")

    def open_new(self) -> int:
        """Closes the active segment (if any) and opens the next one; returns the closed one's number."""
        closed = self.active
        if self._fd is not None:
            os.close(self._fd)
        existing = self.segments()
        self.active = (max(existing) if existing else 0) + 1
        self._fd = os.open(self.path(self.active), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.active_events = 0
        self.active_since = time.monotonic()
        return closed if closed is not None else 0

    def append(self, line: Mapping[str, Any]) -> None:
        """Appends ``line`` as one JSON line to the active segment (fsynced when the spool is).

        Raises:
            OSError: the write was short or failed.
        """
        assert self._fd is not None
        data = json.dumps(line, separators=(",", ":")).encode() + b"\n"
        written = os.write(self._fd, data)
        if written != len(data):
            raise OSError(f"short write to the spool ({written} of {len(data)} bytes)")
        if self.fsync:
            os.fsync(self._fd)
        self.active_events += 1

    def read(self, number: int) -> List[Dict[str, Any]]:
        """The complete lines of a segment (a torn last line, never acknowledged, is skipped)."""
        lines = []
        with open(self.path(number), "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    logger.warning("spool segment %d: ignoring a torn last line (never acknowledged)", number)
                    break
                lines.append(json.loads(raw))
        return lines

    def remove(self, number: int) -> None:
        """Deletes segment ``number`` and fsyncs the spool folder, so that the removal is durable."""
        os.remove(self.path(number))
        _fsync_dir(self.directory)

    def compacted_ids(self) -> Set[str]:
        """Ids of the events already written as payload records (complete lines of the ids file only)."""
        path = os.path.join(self.directory, COMPACTED_IDS)
        if not os.path.exists(path):
            return set()
        with open(path, encoding="utf-8") as fh:
            return {line.rstrip("\n") for line in fh if line.endswith("\n")}

    def add_compacted(self, ids: List[str]) -> None:
        """Appends ``ids`` to the compacted ids file and fsyncs it."""
        if not ids:
            return
        with open(os.path.join(self.directory, COMPACTED_IDS), "a", encoding="utf-8") as fh:
            fh.write("".join(f"{i}\n" for i in ids))
            fh.flush()
            os.fsync(fh.fileno())

    def close(self) -> None:
        """Closes the active segment's file (it stays in the spool)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- the sink
class PayloadSink:
    """Receives, spools, joins and compacts KServe logger events (see the module docstring).

    Args:
        models: ``{inference service name: ModelTarget}``; with one model every event is that model's.
        spool_dir: Local folder of the spool (a PVC in the cluster).
        out_uri: Payload-log root the records go to (local, ``gs://``, ``s3://``).
        segment_events: Events per spool segment before it is rotated and compacted.
        compact_seconds: Longest age of the active segment before it is rotated and compacted.
        orphan_wait_s: How long a response waits for its request before it is refused.
        pending_ttl_s: How long a request waits for its response before it is dropped (counted).
        fsync: ``fsync`` the spool after each event (survives power loss, not only a process crash).
    """

    def __init__(
        self,
        models: Mapping[str, ModelTarget],
        spool_dir: str,
        out_uri: str,
        segment_events: int = 5000,
        compact_seconds: float = 30.0,
        orphan_wait_s: float = 2.0,
        pending_ttl_s: float = 600.0,
        fsync: bool = False,
    ):
        if not models:
            raise ValueError("the payload sink needs at least one model (--model NAME=MODEL_DIR)")
        self.models = dict(models)
        self.spool = Spool(spool_dir, fsync=fsync)
        self.out_uri = out_uri
        self.segment_events = segment_events
        self.compact_seconds = compact_seconds
        self.orphan_wait_s = orphan_wait_s
        self.pending_ttl_s = pending_ttl_s
        self.pending: Dict[str, Dict[str, Any]] = {}  # request lines waiting for their response
        self.joined: Set[str] = set()  # ids joined in segments not yet compacted
        self.compacted: Set[str] = set()
        self._waiters: Dict[str, asyncio.Event] = {}
        metrics = _metrics()
        self._events = {o: metrics["sink_events"].labels(outcome=o) for o in OUTCOMES}
        self._records = metrics["sink_records"]
        self._unanswered = metrics["sink_unanswered"]
        self.started = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Replays and compacts what a previous process left, then opens a new active segment."""
        self.compacted = self.spool.compacted_ids()
        left = self.spool.segments()
        for number in left:
            for line in self.spool.read(number):
                self._track(line)
        self.spool.open_new()
        for number in left:
            self.compact_segment(number)
        self.started = True
        if left:
            logger.info("payload sink: recovered %d spool segment(s) from a previous run", len(left))

    def rotate_and_compact(self) -> None:
        """Closes the active segment and compacts every closed one."""
        self.spool.open_new()
        for number in self.spool.segments():
            if number != self.spool.active:
                self.compact_segment(number)

    def stop(self) -> None:
        """Compacts everything joined so far (unmatched events stay spooled for the next start)."""
        if self.started:
            self.rotate_and_compact()
            self.spool.close()
            self.started = False

    def _track(self, line: Mapping[str, Any]) -> None:
        event_id = line["id"]
        if event_id in self.compacted:
            return
        if line["kind"] == "request":
            if event_id not in self.joined:
                self.pending.setdefault(event_id, dict(line))
        elif event_id in self.pending:
            del self.pending[event_id]
            self.joined.add(event_id)

    # ------------------------------------------------------------------ receiving
    def target_for(self, service: Optional[str]) -> ModelTarget:
        """The model of an event's InferenceService name; the only model when the sink serves one.

        Raises:
            BadEvent: ``unknown_model`` (404), when several models are configured and none has that name.
        """
        if service in self.models:
            return self.models[service]
        if len(self.models) == 1:
            return next(iter(self.models.values()))
        raise BadEvent("unknown_model", f"no model configured for inference service {service!r}", status=404)

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Tuple[int, Dict[str, Any]]:
        """Handles one HTTP delivery; returns ``(status, JSON body)``."""
        try:
            outcome = await self._receive(headers, body)
        except BadEvent as exc:
            return self.refuse(exc)
        self._events[outcome].inc()
        return 200, {"outcome": outcome}

    def refuse(self, exc: BadEvent) -> Tuple[int, Dict[str, Any]]:
        """Counts a refused delivery under its outcome; returns ``(status, JSON body)`` of the answer."""
        self._events[exc.outcome].inc()
        return exc.status, {"error": str(exc), "outcome": exc.outcome}

    async def _receive(self, headers: Mapping[str, str], body: bytes) -> str:
        event = self._parse(headers, body)
        event_id, kind = str(event["id"]), _KIND.get(event["type"])
        if kind is None:
            raise BadEvent("unknown_type", f"unknown ce-type {event['type']!r}; expected {sorted(_KIND)}")
        service = event.get("inferenceservicename")
        target = self.target_for(service)
        data = event.get_data() or b""
        if isinstance(data, str):
            data = data.encode()
        if event_id in self.compacted or event_id in self.joined:
            return "duplicate"
        if kind == "request":
            if event_id in self.pending:
                return "duplicate"
            decoded = decode_request(target, data)
            line = {"id": event_id, "kind": kind, "model": target.name, "time": _event_time(event.get("time"))}
            line.update(received=time.time(), rows=decoded.rows, body=data.decode("utf-8"))
            self.spool.append(line)
            self.pending[event_id] = line
            waiter = self._waiters.pop(event_id, None)
            if waiter:
                waiter.set()
        else:
            if event_id not in self.pending:
                waiter = self._waiters.setdefault(event_id, asyncio.Event())
                try:
                    await asyncio.wait_for(waiter.wait(), self.orphan_wait_s)
                except asyncio.TimeoutError:
                    self._waiters.pop(event_id, None)
                    raise BadEvent(
                        "orphan_response", f"response {event_id!r} without a request event", status=409
                    ) from None
                if event_id in self.joined or event_id not in self.pending:
                    return "duplicate"
            decode_response(data, self.pending[event_id].get("rows"))
            self.spool.append({"id": event_id, "kind": kind, "model": target.name, "body": data.decode("utf-8")})
            del self.pending[event_id]
            self.joined.add(event_id)
        if self.spool.active_events >= self.segment_events:
            self.rotate_and_compact()
        return "accepted"

    @staticmethod
    def _parse(headers: Mapping[str, str], body: bytes) -> Any:
        from cloudevents.exceptions import GenericException
        from cloudevents.http import from_http

        lowered = {k.lower(): v for k, v in headers.items()}
        if not lowered.get("ce-id") and "application/cloudevents" not in lowered.get("content-type", ""):
            raise BadEvent("no_id", "not a binary-mode CloudEvent: no ce-id header")
        try:
            return from_http(lowered, body, data_unmarshaller=lambda raw: raw)
        except GenericException as exc:
            raise BadEvent("no_id", f"not a valid CloudEvent: {exc}") from exc

    # ------------------------------------------------------------------ compaction
    def compact_segment(self, number: int) -> int:
        """Writes the joined records of closed segment ``number``, carries the rest, deletes it."""
        requests: Dict[str, Dict[str, Any]] = {}
        responses: Dict[str, Dict[str, Any]] = {}
        for line in self.spool.read(number):
            if line["id"] in self.compacted:
                continue
            (requests if line["kind"] == "request" else responses).setdefault(line["id"], line)
        joined = [i for i in requests if i in responses]
        by_model: Dict[str, List[PayloadEntry]] = {}
        for event_id in joined:
            request, response = requests[event_id], responses[event_id]
            target = self.models.get(request["model"])
            if target is None:
                logger.error("spool segment %d: event %s names unknown model %s", number, event_id, request["model"])
                continue
            decoded = decode_request(target, request["body"].encode())
            score, label = decode_response(response["body"].encode(), decoded.rows)
            entry = PayloadEntry(request["time"], event_id, decoded.columns, score, label)
            by_model.setdefault(target.name, []).append(entry)
        for name, entries in by_model.items():
            target = self.models[name]
            table = target.schema.table(target.name, target.version, entries)
            write_partitioned(self.out_uri, table, f"part-spool-{number:08d}.parquet")
            self._records.labels(model_name=name).inc(table.num_rows)
        self.spool.add_compacted(joined)
        self.compacted.update(joined)
        self.joined.difference_update(joined)
        now = time.time()
        for event_id, line in [*requests.items(), *responses.items()]:
            if event_id in responses and event_id in requests:
                continue
            if line["kind"] == "request" and now - line.get("received", now) > self.pending_ttl_s:
                self.pending.pop(event_id, None)
                self._unanswered.labels(model_name=line["model"]).inc()
                continue
            self.spool.append(line)  # carried into the active segment: joined there later
        self.spool.remove(number)
        return len(joined)

    async def compact_periodically(self) -> None:
        """Rotates and compacts the active segment once it is ``compact_seconds`` old and holds events.

        Runs until cancelled; a failed compaction is logged and leaves the events in the spool.
        """
        while True:
            await asyncio.sleep(min(self.compact_seconds, 1.0))
            if self.spool.active_events and time.monotonic() - self.spool.active_since >= self.compact_seconds:
                try:
                    self.rotate_and_compact()
                except Exception:
                    logger.exception("payload sink: compaction failed; the spool keeps the events")


# --------------------------------------------------------------------------- ASGI app
class PayloadSinkApp:
    """The ASGI app: ``POST`` any path (events), ``GET /healthz``, ``GET /metrics``.

    Args:
        sink: The sink that handles each delivered event.
        max_body_bytes: Larger bodies get a 413 (``payload_too_large``) without being read into memory:
            refused from their ``content-length``, or once the streamed chunks pass the limit.
    """

    def __init__(self, sink: PayloadSink, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        self.sink = sink
        self.max_body_bytes = max_body_bytes
        self._task: Optional[asyncio.Task] = None

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        """Answers one ASGI connection: lifespan events, ``/metrics``, ``/healthz``, or a POSTed event."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            await _respond(send, 200, generate_latest(), CONTENT_TYPE_LATEST.encode())
            return
        if scope["method"] == "GET" and scope["path"] in ("/healthz", "/"):
            if self.sink.started:
                await _respond(send, 200, b'{"status":"ok"}')
            else:
                await _respond(send, 503, b'{"status":"unavailable"}')
            return
        if scope["method"] != "POST":
            await _respond(send, 405, b'{"error":"POST CloudEvents here"}')
            return
        await self._deliver(scope, receive, send)

    async def _deliver(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        """Reads one POSTed event (within the body limit), hands it to the sink, answers with its verdict."""
        try:
            body = await self._read_body(scope, receive)
        except BadEvent as exc:
            status, document = self.sink.refuse(exc)
            await _respond(send, status, json.dumps(document).encode())
            return
        if body is None:  # the client went away
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status, document = await self.sink.receive(headers, body)
        await _respond(send, status, json.dumps(document).encode())

    async def _read_body(self, scope: Dict[str, Any], receive: Any) -> Optional[bytes]:
        """The request body, or ``None`` when the client disconnected first.

        Raises:
            BadEvent: ``payload_too_large`` (413), from the declared ``content-length`` before anything is
                read, or from the chunks received so far, before the next one is read.
        """
        try:
            check_declared_length(scope["headers"], self.max_body_bytes, what="event body")
            return await read_body(receive, self.max_body_bytes, what="event body")
        except BadRequest as exc:
            raise BadEvent("payload_too_large", str(exc), status=exc.status) from None

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if not self.sink.started:
                        self.sink.start()
                    self._task = asyncio.get_running_loop().create_task(self.sink.compact_periodically())
                except Exception as exc:
                    logger.exception("payload sink failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._task:
                    self._task.cancel()
                self.sink.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _respond(send: Any, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
