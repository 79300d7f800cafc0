"""FAKE Vertex AI API v1 (REST) on 127.0.0.1: the Model Registry, Endpoints, their operations and predict.

A fake for tests. Control plane, each body and query parsed with ``json_format`` into google-cloud-aiplatform's
own ``aiplatform_v1`` request messages (an unknown field or a wrong type is a 400) and checked as Vertex
documents it:

* ``models:upload`` (``UploadModelRequest``): a container image, port, predict and health routes; either
  ``model_id`` for a new model or ``parent_model`` naming an existing one; label keys and values as Vertex
  allows. Versions get IDs 1, 2, ...; ``models.get`` answers ``<model>@<version id>`` and the model's default
  version; ``models.listVersions`` filters ``labels.<key>=<value>``.
* ``endpoints.create`` (``endpointId`` query), ``endpoints.get``, ``endpoints.patch`` with
  ``updateMask=trafficSplit`` (the split names only deployed models and adds up to 100).
* ``endpoints.deployModel``: the model version must exist, ``dedicated_resources`` with a machine type and
  at least one replica; ``traffic_split`` names ``"0"`` (the new model) and deployed models, adding up to 100.
  The container is started by ``launcher`` (a real ``kfpkit serve`` with Vertex's ``AIP_*`` variables) and the
  operation is done once its health route answers 200. ``endpoints.undeployModel``: the model must exist and
  the split left must add up to 100 (or the model had no traffic).
* Every write that Vertex runs as a long-running operation answers an ``Operation`` (``done: false``);
  ``GET .../operations/<id>`` answers it done (with its ``response``) from the ``lro_polls``-th poll on.
* Every control-plane request must carry an ``Authorization: Bearer`` header.

Data plane: ``POST <endpoint>:predict`` picks a deployed model by the traffic split (seeded), forwards the body
to its container's predict route and answers ``PredictResponse`` (``predictions``, ``deployedModelId``, ...),
or the container's error status. Like Vertex, it writes the deployed model's
``prediction/online/response_count`` (``response_code`` ``2xx``/``4xx``/``5xx``) and
``prediction/online/prediction_latencies`` (``latency_type`` ``total``, ms) into the fake Cloud Monitoring.
``problems`` lists every refused request; tests assert it stays empty.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import re
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlparse

_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_LOCATION = r"projects/([^/]+)/locations/([^/]+)"


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def parse(message_class: Any, document: Any) -> Any:
    """``document`` (decoded JSON) parsed into aiplatform_v1's ``message_class``; unknown fields refused."""
    from google.protobuf import json_format

    message = message_class.pb(message_class())
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise BadRequest(f"not a {message_class.__name__}: {exc}") from None
    return message_class.wrap(message)


def to_json(message: Any) -> Dict[str, Any]:
    from google.protobuf import json_format

    return json_format.MessageToDict(type(message).pb(message))


def _now() -> datetime:
    return datetime.now(timezone.utc)


class FakeVertexAI:
    """The fake (see the module docstring).

    Args:
        launcher: ``(model version, deployed model ID) -> base URL`` of a started, healthy container.
        monitoring: The fake Cloud Monitoring the data plane writes to.
        lro_polls: The poll from which an operation answers done.
        seed: Seed of the traffic routing.
    """

    def __init__(self, launcher: Callable[[Any, str], str], monitoring: Any, lro_polls: int = 1, seed: int = 0):
        self.launcher = launcher
        self.monitoring = monitoring
        self.lro_polls = lro_polls
        self.problems: List[str] = []
        self.requests: List[Tuple[str, str]] = []
        self.models: Dict[str, List[Any]] = {}  # model name -> versions (aiplatform_v1.Model)
        self.endpoints: Dict[str, Any] = {}  # endpoint name -> aiplatform_v1.Endpoint
        self.containers: Dict[str, str] = {}  # deployed model id -> base URL
        self.operations: Dict[str, Dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._random = random.Random(seed)
        self._local = threading.local()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(parsed.query).items() if not k.startswith("$")}
                status, answer = fake.handle(self.command, unquote(parsed.path), query, self.headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeVertexAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ routing
    def handle(self, method: str, path: str, query: Dict[str, str], headers: Any, body: bytes) -> Tuple[int, Any]:
        if method == "POST" and path.endswith(":predict"):
            return self._predict(path[len("/v1/") : -len(":predict")], body)
        self.requests.append((method, path))
        try:
            if not (headers.get("Authorization") or "").startswith("Bearer "):
                raise BadRequest("request without bearer credentials", status=401)
            document = json.loads(body) if body else {}
            for route_method, pattern, handler in self._routes():
                match = re.fullmatch(pattern, path)
                if match and route_method == method:
                    with self._lock:
                        return 200, handler(match, query, document)
            raise BadRequest(f"fake has no route {method} {path}", status=404)
        except BadRequest as exc:
            if exc.status != 404 or "has no route" in str(exc):
                self.problems.append(f"{method} {path}: {exc}")
            names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}
            return exc.status, {"error": {"code": exc.status, "message": str(exc), "status": names.get(exc.status)}}

    def _routes(self) -> List[Tuple[str, str, Any]]:
        loc = f"/v1/({_LOCATION})"
        return [
            ("POST", loc + "/models:upload", self._upload),
            ("GET", loc + r"/models/([^/:@]+)(?:@([^/:]+))?", self._get_model),
            ("GET", loc + r"/models/([^/:@]+):listVersions", self._list_versions),
            ("POST", loc + "/endpoints", self._create_endpoint),
            ("GET", loc + "/endpoints/([^/:]+)", self._get_endpoint),
            ("PATCH", loc + "/endpoints/([^/:]+)", self._patch_endpoint),
            ("POST", loc + "/endpoints/([^/:]+):deployModel", self._deploy),
            ("POST", loc + "/endpoints/([^/:]+):undeployModel", self._undeploy),
            # aiplatform's REST operations client polls the first binding of GetOperation, /ui/{name=...}
            ("GET", r"/(?:v1|ui)/(.+/operations/[^/]+)", self._get_operation),
        ]

    # ------------------------------------------------------------------ operations
    def _operation(self, parent: str, metadata_type: Any, finish: Callable[[], Optional[Any]]) -> Dict[str, Any]:
        """A long-running operation; ``finish()`` returns its response message once done (``None``: not yet)."""
        from google.protobuf import any_pb2

        name = f"{parent}/operations/{next(self._ids)}"
        metadata = any_pb2.Any()
        metadata.Pack(metadata_type.pb(metadata_type(generic_metadata={"create_time": _now()})))
        self.operations[name] = {"finish": finish, "polls": 0, "metadata": metadata, "response": None}
        return self._operation_json(name, done=False)

    def _operation_json(self, name: str, done: bool) -> Dict[str, Any]:
        from google.longrunning import operations_pb2
        from google.protobuf import json_format

        operation = self.operations[name]
        message = operations_pb2.Operation(name=name, done=done)
        message.metadata.CopyFrom(operation["metadata"])
        if done:
            message.response.Pack(type(operation["response"]).pb(operation["response"]))
        return json_format.MessageToDict(message)

    def _get_operation(self, match, query, document):
        name = match.group(1)
        if name not in self.operations:
            raise BadRequest(f"operation {name} not found", status=404)
        operation = self.operations[name]
        operation["polls"] += 1
        if operation["response"] is None and operation["polls"] >= self.lro_polls:
            operation["response"] = operation["finish"]()
        return self._operation_json(name, done=operation["response"] is not None)

    # ------------------------------------------------------------------ models
    def _upload(self, match, query, document):
        from google.cloud import aiplatform_v1

        request = parse(aiplatform_v1.UploadModelRequest, document)
        parent = match.group(1)
        model = request.model
        spec = model.container_spec
        if not spec.image_uri or not spec.predict_route or not spec.health_route or not spec.ports:
            raise BadRequest("model.containerSpec needs imageUri, ports, predictRoute and healthRoute")
        for key, value in model.labels.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
                raise BadRequest(f"label {key}={value!r} is not a valid Vertex label")
        if model.artifact_uri and not model.artifact_uri.startswith("gs://"):
            raise BadRequest(f"artifactUri {model.artifact_uri!r} must be a gs:// URI")
        if request.parent_model:
            if request.model_id:
                raise BadRequest("modelId and parentModel are exclusive")
            name = request.parent_model
            if name not in self.models:
                raise BadRequest(f"parentModel {name} not found", status=404)
        else:
            if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,62}", request.model_id or ""):
                raise BadRequest(f"modelId {request.model_id!r} is invalid")
            name = f"{parent}/models/{request.model_id}"
            if name in self.models:
                raise BadRequest(f"{name} already exists; upload a version with parentModel", status=409)
            self.models[name] = []
        versions = self.models[name]
        model.name = name
        model.version_id = str(len(versions) + 1)
        model.version_create_time = model.create_time = _now()
        versions.append(model)
        response = aiplatform_v1.UploadModelResponse(model=name, model_version_id=model.version_id)
        return self._operation(name, aiplatform_v1.UploadModelOperationMetadata, lambda: response)

    def _version(self, name: str) -> Any:
        base, _, version = name.partition("@")
        versions = self.models.get(base)
        if not versions:
            return None
        if not version:
            return versions[0]  # the default version
        return next((v for v in versions if v.version_id == version), None)

    def _get_model(self, match, query, document):
        name = f"{match.group(1)}/models/{match.group(4)}" + (f"@{match.group(5)}" if match.group(5) else "")
        model = self._version(name)
        if model is None:
            raise BadRequest(f"model {name} not found", status=404)
        return to_json(model)

    def _list_versions(self, match, query, document):
        from google.cloud import aiplatform_v1

        request = parse(aiplatform_v1.ListModelVersionsRequest, query)
        name = f"{match.group(1)}/models/{match.group(4)}"
        if name not in self.models:
            raise BadRequest(f"model {name} not found", status=404)
        versions = self.models[name]
        if request.filter:
            term = re.fullmatch(r'labels\.([a-z0-9_-]+)\s*=\s*"?([a-z0-9_-]*)"?', request.filter.strip())
            if not term:
                raise BadRequest(f"filter {request.filter!r}: the fake knows labels.<key>=<value> only")
            versions = [v for v in versions if v.labels.get(term.group(1)) == term.group(2)]
        return to_json(aiplatform_v1.ListModelVersionsResponse(models=versions))

    # ------------------------------------------------------------------ endpoints
    def _endpoint(self, match) -> Any:
        name = f"{match.group(1)}/endpoints/{match.group(4)}"
        if name not in self.endpoints:
            raise BadRequest(f"endpoint {name} not found", status=404)
        return self.endpoints[name]

    def _create_endpoint(self, match, query, document):
        from google.cloud import aiplatform_v1

        endpoint = parse(aiplatform_v1.Endpoint, document)
        request = parse(aiplatform_v1.CreateEndpointRequest, {"endpointId": query.get("endpointId", "")})
        if not re.fullmatch(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|[1-9][0-9]{0,8}", request.endpoint_id):
            raise BadRequest(f"endpointId {request.endpoint_id!r} is invalid")
        if not endpoint.display_name:
            raise BadRequest("endpoint.displayName is required")
        name = f"{match.group(1)}/endpoints/{request.endpoint_id}"
        if name in self.endpoints:
            raise BadRequest(f"{name} already exists", status=409)
        endpoint.name = name
        endpoint.create_time = _now()
        self.endpoints[name] = endpoint
        return self._operation(name, aiplatform_v1.CreateEndpointOperationMetadata, lambda: self.endpoints[name])

    def _get_endpoint(self, match, query, document):
        return to_json(self._endpoint(match))

    @staticmethod
    def _check_split(split: Dict[str, int], allowed: List[str]) -> None:
        unknown = sorted(set(split) - set(allowed))
        if unknown:
            raise BadRequest(f"trafficSplit names {unknown}, which are not deployed here ({allowed})")
        if split and sum(split.values()) != 100:
            raise BadRequest(f"trafficSplit {split} must add up to 100")

    def _patch_endpoint(self, match, query, document):
        from google.cloud import aiplatform_v1

        endpoint = self._endpoint(match)
        update = parse(aiplatform_v1.Endpoint, document)
        request = parse(aiplatform_v1.UpdateEndpointRequest, {"updateMask": query.get("updateMask", "")})
        if list(request.update_mask.paths) != ["traffic_split"]:
            raise BadRequest(f"updateMask {list(request.update_mask.paths)}: the fake updates traffic_split only")
        if update.name and update.name != endpoint.name:
            raise BadRequest(f"endpoint.name {update.name!r} differs from the path")
        split = dict(update.traffic_split)
        self._check_split(split, [d.id for d in endpoint.deployed_models])
        endpoint.traffic_split = split
        endpoint.update_time = _now()
        return to_json(endpoint)

    def _deploy(self, match, query, document):
        from google.cloud import aiplatform_v1

        endpoint = self._endpoint(match)
        request = parse(aiplatform_v1.DeployModelRequest, document)
        deployed = request.deployed_model
        version = self._version(deployed.model)
        if version is None:
            raise BadRequest(f"deployedModel.model {deployed.model} not found", status=404)
        resources = deployed.dedicated_resources
        if not resources.machine_spec.machine_type or resources.min_replica_count < 1:
            raise BadRequest("a custom container needs dedicatedResources with a machine type and >= 1 replica")
        split = dict(request.traffic_split)
        self._check_split(split, ["0", *(d.id for d in endpoint.deployed_models)])
        if not endpoint.deployed_models and split != {"0": 100}:
            raise BadRequest(f"the first model of an endpoint gets all traffic, not {split}")
        deployed.id = str(7_000_000_000_000_000_000 + next(self._ids))
        deployed.model_version_id = version.version_id
        deployed.model = version.name
        started: Dict[str, Any] = {}

        def start() -> None:
            try:
                started["url"] = self.launcher(version, deployed.id)
            except Exception as exc:
                started["error"] = exc

        threading.Thread(target=start, daemon=True).start()

        def finish() -> Optional[Any]:
            if "error" in started:
                raise started["error"]
            if "url" not in started:
                return None  # the container is not healthy yet: the operation goes on
            self.containers[deployed.id] = started["url"]
            deployed.create_time = _now()
            endpoint.deployed_models = [*endpoint.deployed_models, deployed]
            endpoint.traffic_split = {(deployed.id if k == "0" else k): v for k, v in split.items()}
            return aiplatform_v1.DeployModelResponse(deployed_model=deployed)

        return self._operation(endpoint.name, aiplatform_v1.DeployModelOperationMetadata, finish)

    def _undeploy(self, match, query, document):
        from google.cloud import aiplatform_v1

        endpoint = self._endpoint(match)
        request = parse(aiplatform_v1.UndeployModelRequest, document)
        ids = [d.id for d in endpoint.deployed_models]
        if request.deployed_model_id not in ids:
            raise BadRequest(f"deployed model {request.deployed_model_id} is not on {endpoint.name}", status=404)
        left = [i for i in ids if i != request.deployed_model_id]
        split = dict(request.traffic_split)
        if split:
            self._check_split(split, left)
        elif dict(endpoint.traffic_split).get(request.deployed_model_id, 0):
            raise BadRequest("the model to undeploy still has traffic and no trafficSplit was given")

        def finish() -> Any:
            endpoint.deployed_models = [d for d in endpoint.deployed_models if d.id != request.deployed_model_id]
            endpoint.traffic_split = split or {k: v for k, v in endpoint.traffic_split.items() if k in left}
            return aiplatform_v1.UndeployModelResponse()

        return self._operation(endpoint.name, aiplatform_v1.UndeployModelOperationMetadata, finish)

    # ------------------------------------------------------------------ data plane
    def _route(self, name: str) -> Optional[Tuple[Any, Any, str]]:
        with self._lock:
            endpoint = self.endpoints.get(name)
            if endpoint is None or not endpoint.deployed_models:
                return None
            split = dict(endpoint.traffic_split)
            models = [d for d in endpoint.deployed_models if split.get(d.id, 0) > 0]
            if not models:
                return None
            chosen = self._random.choices(models, weights=[split[d.id] for d in models])[0]
            return endpoint, chosen, self.containers[chosen.id]

    def _predict(self, name: str, body: bytes) -> Tuple[int, Any]:
        started = time.time()
        routed = self._route(name)
        if routed is None:
            return 404, {"error": {"code": 404, "message": f"{name} serves no model", "status": "NOT_FOUND"}}
        _endpoint, deployed, base = routed
        version = self._version(f"{deployed.model}@{deployed.model_version_id}")
        status, answer = self._forward(base, version.container_spec.predict_route, body)
        now = time.time()
        resource = {"resource_container": name.split("/")[1], "location": name.split("/")[3]}
        resource["endpoint_id"] = name.rsplit("/", 1)[1]
        labels = {"deployed_model_id": deployed.id}
        prefix = "aiplatform.googleapis.com/prediction/online/"
        code = f"{status // 100}xx"
        self.monitoring.add_count(prefix + "response_count", resource, dict(labels, response_code=code), now)
        self.monitoring.add_latency(
            prefix + "prediction_latencies", resource, dict(labels, latency_type="total"), now, (now - started) * 1000
        )
        if status != 200:
            return status, {"error": {"code": status, "message": str(answer)[:300], "status": "INTERNAL"}}
        return 200, {
            "predictions": answer["predictions"],
            "deployedModelId": deployed.id,
            "model": deployed.model,
            "modelVersionId": deployed.model_version_id,
            "modelDisplayName": version.display_name,
        }

    def _forward(self, base: str, route: str, body: bytes) -> Tuple[int, Any]:
        """POSTs the body to the container (one kept-alive connection per thread and container)."""
        connections = self._local.__dict__.setdefault("connections", {})
        parsed = urlparse(base)
        for attempt in (0, 1):
            conn = connections.get(base) or http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            connections[base] = conn
            try:
                conn.request("POST", route, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                try:
                    return response.status, json.loads(data)
                except ValueError:
                    return response.status, data.decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                connections.pop(base, None)
                if attempt:
                    return 503, f"container unreachable: {exc}"
        return 503, "container unreachable"
