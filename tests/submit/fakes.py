"""Loopback fakes of the Kubeflow Pipelines v2beta1 REST API and of the Vertex AI v1 REST API.

These are FAKES for tests: no pipeline runs. They answer the way the real services document it, and they
check every request body against the client libraries' own request models, so that a malformed body
fails the test instead of passing silently:

* KFP: each JSON body is matched field by field against the ``kfp_server_api`` model of its endpoint
  (``openapi_types`` / ``attribute_map`` / enum ``allowable_values``: an unknown field, a wrong type or
  an unknown enum value is rejected); an uploaded package must parse into
  ``pipeline_spec_pb2.PipelineSpec`` / ``PlatformSpec`` with ``json_format`` (unknown fields rejected),
  and run parameters must be of the types the uploaded spec declares.
* Vertex AI: each JSON body must parse with ``json_format`` into ``google.cloud.aiplatform_v1``'s
  ``PipelineJob`` / ``Schedule`` (unknown fields rejected).

A request that fails a check gets HTTP 400 and lands in ``problems``; tests assert ``problems == []``.
Runs advance through ``run_script``, one step per GET, so that ``--wait`` sees real progress.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlparse

import yaml


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class _FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1 that routes to ``self.handle(method, path, query, headers, body)``."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        self.problems: List[str] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
                record = {
                    "method": self.command,
                    "path": parsed.path,
                    "query": query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
                with fake._lock:
                    fake.requests.append(record)
                    try:
                        status, answer = fake.handle(self.command, parsed.path, query, self.headers, body)
                    except BadRequest as exc:
                        fake.problems.append(f"{self.command} {parsed.path}: {exc}")
                        status, answer = exc.status, fake.error_document(exc.status, str(exc))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def next_id(self) -> str:
        return f"{next(self._ids):04d}"

    def error_document(self, status: int, message: str) -> Dict[str, Any]:
        raise NotImplementedError

    def routes(self) -> List[Tuple[str, str, Any]]:
        """``(method, path regex, handler(match, query, headers, body) -> JSON document)`` per endpoint."""
        raise NotImplementedError

    def handle(self, method, path, query, headers, body) -> Tuple[int, Any]:
        for route_method, pattern, handler in self.routes():
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return 200, handler(match, query, headers, body)
        raise BadRequest(f"{type(self).__name__} has no route {method} {path}", status=404)

    def calls(self, method: Optional[str] = None, path: Optional[str] = None) -> List[Dict[str, Any]]:
        """The recorded requests, optionally those of one method and/or path (a regex, full match)."""
        return [
            r
            for r in self.requests
            if (method is None or r["method"] == method) and (path is None or re.fullmatch(path, r["path"]))
        ]


# ---------------------------------------------------------------------------------------------------
# Kubeflow Pipelines (REST v2beta1, the API kfp.Client 2.x speaks)
# ---------------------------------------------------------------------------------------------------


# int64 fields of the v2beta1 request messages kfpkit sends (typed 'str' in kfp_server_api's models).
_INT64_FIELDS = ("max_concurrency", "interval_second")


# the swagger type names of plain JSON values, and the Python types their values decode to
_SIMPLE_KFP_TYPES = {"str": str, "bool": bool, "int": int, "float": (int, float), "datetime": str, "date": str}


def check_kfp_model(data: Any, klass: str, where: str = "") -> None:
    """Raises BadRequest unless ``data`` (decoded JSON) fits the kfp_server_api model ``klass`` exactly."""
    where = where or klass
    if klass in ("object",):
        return
    if klass.startswith(("list[", "dict(")):
        _check_kfp_container(data, klass, where)
    elif klass in _SIMPLE_KFP_TYPES:
        _check_kfp_simple(data, klass, where)
    else:
        _check_kfp_object(data, klass, where)


def _check_kfp_container(data: Any, klass: str, where: str) -> None:
    """A ``list[T]`` or ``dict(str, T)``: the container, then every item as a ``T``."""
    if klass.startswith("list["):
        if not isinstance(data, list):
            raise BadRequest(f"{where}: expected a list, got {type(data).__name__}")
        for i, item in enumerate(data):
            check_kfp_model(item, klass[5:-1], f"{where}[{i}]")
        return
    if not isinstance(data, dict):
        raise BadRequest(f"{where}: expected an object, got {type(data).__name__}")
    value_type = klass[5:-1].split(", ", 1)[1]
    for key, item in data.items():
        check_kfp_model(item, value_type, f"{where}.{key}")


def _check_kfp_simple(data: Any, klass: str, where: str) -> None:
    """A plain JSON value of a swagger type (:data:`_SIMPLE_KFP_TYPES`); a datetime must parse."""
    if klass == "str" and where.rsplit(".", 1)[-1] in _INT64_FIELDS and isinstance(data, int):
        return  # proto3 JSON: an int64 (a 'str' in the swagger models) may be a number or a string
    if not isinstance(data, _SIMPLE_KFP_TYPES[klass]) or (klass in ("int", "float") and isinstance(data, bool)):
        raise BadRequest(f"{where}: expected {klass}, got {data!r}")
    if klass == "datetime":
        datetime.fromisoformat(data.replace("Z", "+00:00"))


def _check_kfp_object(data: Any, klass: str, where: str) -> None:
    """A kfp_server_api model: an enum's value, or an object whose every field is known and fits its type."""
    import kfp_server_api

    model = getattr(kfp_server_api.models, klass)
    allowed = getattr(model, "allowable_values", None)
    if allowed is not None and not model.openapi_types:
        if data not in allowed:
            raise BadRequest(f"{where}: {data!r} is not one of {allowed}")
        return
    if not isinstance(data, dict):
        raise BadRequest(f"{where}: expected a {klass} object, got {type(data).__name__}")
    json_to_attr = {json_key: attr for attr, json_key in model.attribute_map.items()}
    for key, value in data.items():
        if key not in json_to_attr:
            raise BadRequest(f"{where}: unknown field {key!r} (a {klass} has {sorted(json_to_attr)})")
        if value is not None:
            check_kfp_model(value, model.openapi_types[json_to_attr[key]], f"{where}.{key}")


def parse_kfp_package(data: bytes) -> Dict[str, Any]:
    """The pipeline spec of an uploaded package, checked against the PipelineSpec / PlatformSpec protos."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    documents = [d for d in yaml.safe_load_all(data.decode("utf-8")) if d is not None]
    if not documents or len(documents) > 2:
        raise BadRequest(f"package has {len(documents)} YAML documents; expected the pipeline spec (+ platform spec)")
    try:
        json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
        if len(documents) == 2:
            json_format.ParseDict(documents[1], pipeline_spec_pb2.PlatformSpec())
    except json_format.ParseError as exc:
        raise BadRequest(f"package is not a pipeline spec: {exc}") from None
    return documents[0]


def _multipart_file(headers, body: bytes, field: str) -> bytes:
    content_type = headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        raise BadRequest(f"expected multipart/form-data, got {content_type!r}")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field:
            return part.get_payload(decode=True)
    raise BadRequest(f"multipart body has no {field!r} part")


_PARAMETER_TYPES = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
    "LIST": (list,),
    "STRUCT": (dict,),
}


def check_run_parameters(spec: Dict[str, Any], parameters: Dict[str, Any]) -> None:
    """As the KFP backend does: every parameter declared, of its declared type, required ones present."""
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for name, value in parameters.items():
        if name not in declared:
            raise BadRequest(f"runtime_config.parameters: {name!r} is not a pipeline parameter")
        kind = declared[name]["parameterType"]
        if isinstance(value, bool) != (kind == "BOOLEAN") or not isinstance(value, _PARAMETER_TYPES[kind]):
            raise BadRequest(f"runtime_config.parameters.{name}: {value!r} is not a {kind}")
    for name, definition in declared.items():
        if not definition.get("isOptional") and "defaultValue" not in definition and name not in parameters:
            raise BadRequest(f"runtime_config.parameters: required parameter {name!r} missing")


class FakeKfp(_FakeServer):
    """FAKE Kubeflow Pipelines API server (REST v2beta1) on 127.0.0.1.

    Args:
        run_script: states a run goes through, one per ``GET /runs/{id}``: ``(run state, {task: state})``;
            the last one repeats.
        multi_user: what ``/healthz`` answers.
    """

    PREFIX = "/apis/v2beta1"

    def __init__(self, run_script: Optional[List[Tuple[str, Dict[str, str]]]] = None, multi_user: bool = False):
        super().__init__()
        self.run_script = run_script or [
            ("PENDING", {}),
            ("RUNNING", {"ingest": "RUNNING"}),
            ("SUCCEEDED", {"ingest": "SUCCEEDED"}),
        ]
        self.multi_user = multi_user
        self.pipelines: Dict[str, Dict[str, Any]] = {}
        self.versions: Dict[str, Dict[str, Any]] = {}  # version id -> version (with the parsed spec)
        self.experiments: Dict[str, Dict[str, Any]] = {}
        self.runs: Dict[str, Dict[str, Any]] = {}
        self.recurring_runs: Dict[str, Dict[str, Any]] = {}
        self._polls: Dict[str, int] = {}

    def error_document(self, status: int, message: str) -> Dict[str, Any]:
        # grpc-gateway's error body: google.rpc.Status plus the legacy "error" field.
        code = {400: 3, 404: 5, 409: 6}.get(status, 2)
        return {"error": message, "code": code, "message": message, "details": []}

    # --- helpers -------------------------------------------------------------------------------------

    @staticmethod
    def _json(body: bytes, klass: str) -> Dict[str, Any]:
        try:
            data = json.loads(body or b"null")
        except json.JSONDecodeError as exc:
            raise BadRequest(f"body is not JSON: {exc}") from None
        check_kfp_model(data, klass)
        return data

    @staticmethod
    def _filter_name(query: Dict[str, str]) -> Optional[str]:
        if not query.get("filter"):
            return None
        predicates = json.loads(query["filter"])["predicates"]
        for predicate in predicates:
            if predicate.get("key") != "display_name" or predicate.get("operation") not in ("EQUALS", 1):
                raise BadRequest(f"fake supports display_name EQUALS filters only, got {predicate}")
        return predicates[0]["stringValue"]

    def _public_version(self, version: Dict[str, Any]) -> Dict[str, Any]:
        return {k: v for k, v in version.items() if k != "_spec"}

    def _pipeline_version(self, reference: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        if not reference:
            raise BadRequest("pipeline_version_reference is required (kfpkit runs uploaded versions)")
        version = self.versions.get(reference.get("pipeline_version_id", ""))
        if version is None or version["pipeline_id"] != reference.get("pipeline_id"):
            raise BadRequest(f"no pipeline version {reference}", status=404)
        return version

    def _store_version(self, pipeline_id: str, name: str, description: str, package: bytes) -> Dict[str, Any]:
        spec = parse_kfp_package(package)
        if any(v["pipeline_id"] == pipeline_id and v["name"] == name for v in self.versions.values()):
            raise BadRequest(f"pipeline version {name!r} already exists", status=409)
        version_id = "v-" + self.next_id()
        version = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": version_id,
            "display_name": name,
            "name": name,
            "description": description,
            "created_at": _now(),
            "pipeline_spec": spec,
            "_spec": spec,
        }
        self.versions[version_id] = version
        return version

    def advance(self, run: Dict[str, Any]) -> None:
        step = min(self._polls.get(run["run_id"], 0), len(self.run_script) - 1)
        self._polls[run["run_id"]] = step + 1
        state, tasks = self.run_script[step]
        run["state"] = state
        run["run_details"] = {
            "task_details": [
                {"run_id": run["run_id"], "task_id": f"t{i}", "display_name": name, "state": task_state}
                for i, (name, task_state) in enumerate(sorted(tasks.items()))
            ]
        }
        if state == "FAILED":
            run["error"] = {"code": 2, "message": "task train failed: exit status 1", "details": []}
        if state in ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"):
            run["finished_at"] = _now()

    # --- routes ----------------------------------------------------------------------------------------

    def routes(self):
        p = self.PREFIX
        return [
            ("GET", p + "/healthz", self._healthz),
            ("GET", p + "/pipelines", self._list_pipelines),
            ("POST", p + "/pipelines", self._create_pipeline),
            ("POST", p + "/pipelines/upload", self._upload_pipeline),
            ("POST", p + "/pipelines/upload_version", self._upload_version),
            ("GET", p + "/pipelines/([^/]+)/versions", self._list_versions),
            ("GET", p + "/experiments", self._list_experiments),
            ("POST", p + "/experiments", self._create_experiment),
            ("POST", p + "/runs", self._create_run),
            ("GET", p + "/runs/([^/:]+)", self._get_run),
            ("POST", p + "/recurringruns", self._create_recurring_run),
        ]

    def _healthz(self, match, query, headers, body):
        return {"multi_user": self.multi_user, "pipeline_store": "database"}

    def _list(self, items, query, key: str):
        name = self._filter_name(query)
        namespace = query.get("namespace") or ""
        found = [
            i for i in items if (name is None or i["display_name"] == name) and i.get("namespace", "") == namespace
        ]
        return {key: found, "total_size": len(found)} if found else {}

    def _list_pipelines(self, match, query, headers, body):
        return self._list(self.pipelines.values(), query, "pipelines")

    def _create_pipeline(self, match, query, headers, body):
        data = self._json(body, "V2beta1Pipeline")
        if not data.get("display_name"):
            raise BadRequest("pipeline display_name is required")
        if data.get("pipeline_id"):
            raise BadRequest("pipeline_id is output only")
        pipeline = dict(data, pipeline_id="p-" + self.next_id(), created_at=_now())
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        return pipeline

    def _upload_pipeline(self, match, query, headers, body):
        package = _multipart_file(headers, body, "uploadfile")
        name = query.get("name") or query.get("display_name")
        if not name:
            raise BadRequest("upload needs a name")
        pipeline = {"pipeline_id": "p-" + self.next_id(), "display_name": name, "name": name, "created_at": _now()}
        pipeline["description"] = query.get("description", "")
        if query.get("namespace"):
            pipeline["namespace"] = query["namespace"]
        self._store_version(pipeline["pipeline_id"], name, pipeline["description"], package)
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        return pipeline

    def _upload_version(self, match, query, headers, body):
        package = _multipart_file(headers, body, "uploadfile")
        pipeline_id = query.get("pipelineid", "")
        if pipeline_id not in self.pipelines:
            raise BadRequest(f"no pipeline {pipeline_id!r}", status=404)
        if not query.get("name"):
            raise BadRequest("upload_version needs a name")
        version = self._store_version(pipeline_id, query["name"], query.get("description", ""), package)
        return self._public_version(version)

    def _list_versions(self, match, query, headers, body):
        if match.group(1) not in self.pipelines:
            raise BadRequest(f"no pipeline {match.group(1)!r}", status=404)
        versions = [self._public_version(v) for v in self.versions.values() if v["pipeline_id"] == match.group(1)]
        return self._list(versions, dict(query, namespace=""), "pipeline_versions")

    def _list_experiments(self, match, query, headers, body):
        return self._list(self.experiments.values(), query, "experiments")

    def _create_experiment(self, match, query, headers, body):
        data = self._json(body, "V2beta1Experiment")
        if not data.get("display_name"):
            raise BadRequest("experiment display_name is required")
        experiment = dict(data, experiment_id="e-" + self.next_id(), created_at=_now(), storage_state="AVAILABLE")
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def _create_run(self, match, query, headers, body):
        data = self._json(body, "V2beta1Run")
        self._check_run_like(data)
        run = dict(data, run_id="r-" + self.next_id(), created_at=_now(), state="PENDING", storage_state="AVAILABLE")
        self.runs[run["run_id"]] = run
        return run

    def _get_run(self, match, query, headers, body):
        run = self.runs.get(match.group(1))
        if run is None:
            raise BadRequest(f"no run {match.group(1)!r}", status=404)
        self.advance(run)
        return run

    def _create_recurring_run(self, match, query, headers, body):
        data = self._json(body, "V2beta1RecurringRun")
        self._check_run_like(data)
        trigger = data.get("trigger") or {}
        cron = (trigger.get("cron_schedule") or {}).get("cron")
        if not cron and not (trigger.get("periodic_schedule") or {}).get("interval_second"):
            raise BadRequest("recurring run needs trigger.cron_schedule.cron or trigger.periodic_schedule")
        if cron and len(cron.split()) != 6 and not cron.startswith("@"):
            raise BadRequest(f"cron {cron!r}: the KFP scheduler expects 6 fields (seconds first)")
        recurring = dict(data, recurring_run_id="rr-" + self.next_id(), created_at=_now(), updated_at=_now())
        recurring["status"] = "ENABLED" if data.get("mode") == "ENABLE" else "DISABLED"
        self.recurring_runs[recurring["recurring_run_id"]] = recurring
        return recurring

    def _check_run_like(self, data: Dict[str, Any]) -> None:
        if not data.get("display_name"):
            raise BadRequest("display_name is required")
        if data.get("experiment_id") not in self.experiments:
            raise BadRequest(f"no experiment {data.get('experiment_id')!r}", status=404)
        version = self._pipeline_version(data.get("pipeline_version_reference"))
        check_run_parameters(version["_spec"], (data.get("runtime_config") or {}).get("parameters") or {})

    def uploaded_spec(self, version_id: str) -> Dict[str, Any]:
        return self.versions[version_id]["_spec"]


# ---------------------------------------------------------------------------------------------------
# Vertex AI (REST v1)
# ---------------------------------------------------------------------------------------------------


def parse_vertex(body: bytes, message_class):
    """``body`` parsed into the aiplatform_v1 proto-plus ``message_class``; unknown fields are an error."""
    from google.protobuf import json_format

    message = message_class.pb(message_class())
    try:
        json_format.Parse(body.decode("utf-8"), message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise BadRequest(f"body is not a {message_class.__name__}: {exc}") from None
    return message_class.wrap(message)


def _vertex_json(message) -> Dict[str, Any]:
    from google.protobuf import json_format

    return json_format.MessageToDict(type(message).pb(message))


class FakeVertex(_FakeServer):
    """FAKE Vertex AI API (REST v1: pipelineJobs.create/get, schedules.create) on 127.0.0.1.

    Point aiplatform's clients at it with ``api_endpoint=fake.url`` (the REST transport).

    Args:
        run_script: ``(PipelineState name, {task: PipelineTaskDetail.State name})`` per GET of a job.
    """

    def __init__(self, run_script: Optional[List[Tuple[str, Dict[str, str]]]] = None):
        super().__init__()
        self.run_script = run_script or [
            ("PIPELINE_STATE_PENDING", {}),
            ("PIPELINE_STATE_RUNNING", {"ingest": "RUNNING"}),
            ("PIPELINE_STATE_SUCCEEDED", {"ingest": "SUCCEEDED"}),
        ]
        self.jobs: Dict[str, Any] = {}  # resource name -> aiplatform_v1.PipelineJob
        self.schedules: Dict[str, Any] = {}
        self._polls: Dict[str, int] = {}

    def error_document(self, status: int, message: str) -> Dict[str, Any]:
        names = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}
        return {"error": {"code": status, "message": message, "status": names.get(status, "UNKNOWN")}}

    def routes(self):
        location = r"/v1/(projects/[^/]+/locations/[^/]+)"
        return [
            ("POST", location + "/pipelineJobs", self._create_job),
            ("GET", location + "/pipelineJobs/([^/]+)", self._get_job),
            ("POST", location + "/schedules", self._create_schedule),
        ]

    def _create_job(self, match, query, headers, body):
        from google.cloud import aiplatform_v1

        job = parse_vertex(body, aiplatform_v1.PipelineJob)
        job_id = query.get("pipelineJobId") or "job-" + self.next_id()
        if not re.fullmatch(r"[a-z][-a-z0-9]{0,127}", job_id):
            raise BadRequest(f"pipelineJobId {job_id!r} is not a valid ID")
        name = f"{match.group(1)}/pipelineJobs/{job_id}"
        if name in self.jobs:
            raise BadRequest(f"{name} already exists", status=409)
        self._check_job(job)
        job.name = name
        job.state = aiplatform_v1.PipelineState.PIPELINE_STATE_PENDING
        job.create_time = datetime.now(timezone.utc)
        self.jobs[name] = job
        return _vertex_json(job)

    def _get_job(self, match, query, headers, body):
        name = f"{match.group(1)}/pipelineJobs/{match.group(2)}"
        if name not in self.jobs:
            raise BadRequest(f"{name} not found", status=404)
        self._advance(self.jobs[name])
        return _vertex_json(self.jobs[name])

    def _create_schedule(self, match, query, headers, body):
        from google.cloud import aiplatform_v1

        schedule = parse_vertex(body, aiplatform_v1.Schedule)
        if not schedule.display_name or not schedule.cron or not schedule.max_concurrent_run_count:
            raise BadRequest("a Schedule needs display_name, cron and max_concurrent_run_count")
        if len(re.sub(r"^(CRON_TZ|TZ)=\S+\s+", "", schedule.cron).split()) != 5:
            raise BadRequest(f"cron {schedule.cron!r}: Vertex AI expects 5 fields")
        request = schedule.create_pipeline_job_request
        if request.parent != match.group(1):
            raise BadRequest(f"createPipelineJobRequest.parent {request.parent!r} != {match.group(1)!r}")
        self._check_job(request.pipeline_job)
        schedule.name = f"{match.group(1)}/schedules/{self.next_id()}"
        schedule.state = aiplatform_v1.Schedule.State.ACTIVE
        schedule.create_time = datetime.now(timezone.utc)
        self.schedules[schedule.name] = schedule
        return _vertex_json(schedule)

    def _check_job(self, job) -> None:
        spec = dict(job.pipeline_spec)
        if "root" not in spec or "pipelineInfo" not in spec:
            raise BadRequest("pipelineSpec is not a compiled pipeline spec")
        if not job.runtime_config.gcs_output_directory.startswith("gs://"):
            raise BadRequest("runtimeConfig.gcsOutputDirectory must be a gs:// URI")
        declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
        values = dict(job.runtime_config.parameter_values)
        # Vertex carries numbers as protobuf Values (doubles): check the kind, and integers stay integral.
        for name, value in values.items():
            if name not in declared:
                raise BadRequest(f"runtimeConfig.parameterValues: {name!r} is not a pipeline parameter")
            kind = declared[name]["parameterType"]
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = {
                "STRING": isinstance(value, str),
                "NUMBER_INTEGER": is_number and float(value).is_integer(),
                "NUMBER_DOUBLE": is_number,
                "BOOLEAN": isinstance(value, bool),
            }.get(kind, True)
            if not ok:
                raise BadRequest(f"runtimeConfig.parameterValues.{name}: {value!r} is not a {kind}")
        for name, definition in declared.items():
            if not definition.get("isOptional") and "defaultValue" not in definition and name not in values:
                raise BadRequest(f"runtimeConfig.parameterValues: required parameter {name!r} missing")

    def _advance(self, job) -> None:
        from google.cloud import aiplatform_v1

        step = min(self._polls.get(job.name, 0), len(self.run_script) - 1)
        self._polls[job.name] = step + 1
        state, tasks = self.run_script[step]
        job.state = aiplatform_v1.PipelineState[state]
        del job.job_detail.task_details[:]
        for i, (name, task_state) in enumerate(sorted(tasks.items())):
            job.job_detail.task_details.append(
                aiplatform_v1.PipelineTaskDetail(
                    task_id=i + 1, task_name=name, state=aiplatform_v1.PipelineTaskDetail.State[task_state]
                )
            )
        if state == "PIPELINE_STATE_FAILED":
            job.error = {"code": 9, "message": "The DAG failed because some tasks failed: train"}
