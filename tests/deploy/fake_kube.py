"""FakeKubeApiServer: an in-process, loopback stand-in for the Kubernetes API serving KServe ISVCs.

It is a fake, named so in every test that uses it. What it does like the real API server and KServe:

* ``POST``/``GET``/``PATCH`` of ``serving.kserve.io/v1beta1`` InferenceServices and ``GET ...?watch=true``
  (newline-delimited watch events, as the kubernetes client's ``Watch`` reads them);
* ``PATCH`` accepts ``application/merge-patch+json`` only and applies RFC 7386 (``null`` removes);
* every created object, every patch result and every status it writes is validated against the KServe
  v0.20 CRD schema (``tests/manifests/kserve_schemas.py``); ``fieldValidation=Strict`` refuses unknown
  fields with the API server's ``strict decoding error: unknown field "..."``. ``crd_without_canary=True``
  serves a CRD lacking ``spec.canary`` (a cluster before KServe 0.20);
* a controller thread answers each generation with status documents shaped like KServe's
  (``test/e2e/predictor/test_canary_raw_deployment.py``, the canary docs): Serverless ``Ready`` and
  ``status.components.predictor.traffic[]`` over Knative revisions ``<name>-predictor-0000N``; Standard
  ``status.canaryStatuses[]`` and ``CanaryPredictorReady``/``AllCanariesReady``. A predictor whose
  ``kfpkit.dev/model-version`` label is in ``failing_versions`` never becomes ready and reports why.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

from tests.manifests import kserve_schemas

VERSION_LABEL = "kfpkit.dev/model-version"
_PATH = re.compile(r"^/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices(?:/([^/]+))?$")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class FakeKubeApiServer:
    """See the module docstring. ``url`` is the API base; ``requests`` logs ``(method, path, content_type, body)``."""

    def __init__(
        self,
        crd_without_canary: bool = False,
        failing_versions: Optional[Dict[str, str]] = None,
        reconcile_delay_s: float = 0.05,
    ):
        schema = copy.deepcopy(kserve_schemas.isvc_schema())
        if crd_without_canary:
            schema["properties"]["spec"]["properties"].pop("canary")
        self.schema = schema
        self.failing_versions = dict(failing_versions or {})
        self.reconcile_delay_s = reconcile_delay_s
        self.objects: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self.revisions: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self.requests: List[Tuple[str, str, str, Any]] = []
        self.schema_violations: List[str] = []
        self.resource_version = 0
        self.changed = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.timers: List[threading.Timer] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeKubeApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()
        with self.changed:
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # ----------------------------------------------------------------------------------------- storage
    def _validate(self, obj: Dict[str, Any], strict: bool) -> List[str]:
        errors = kserve_schemas.schema_errors(obj, self.schema)
        if not strict:
            errors = [e for e in errors if not e.startswith("unknown field")]
        return errors

    def _store(self, key: Tuple[str, str], obj: Dict[str, Any], spec_changed: bool) -> Dict[str, Any]:
        with self.changed:
            self.resource_version += 1
            meta = obj["metadata"]
            meta["resourceVersion"] = str(self.resource_version)
            if spec_changed:
                meta["generation"] = int(meta.get("generation", 0)) + 1
            self.objects[key] = obj
            self.changed.notify_all()
        if spec_changed:
            timer = threading.Timer(self.reconcile_delay_s, self._reconcile, args=(key, meta["generation"]))
            timer.daemon = True
            self.timers.append(timer)
            timer.start()
        return copy.deepcopy(obj)

    # -------------------------------------------------------------------------------------- controller
    def _reconcile(self, key: Tuple[str, str], generation: int) -> None:
        with self.changed:
            obj = copy.deepcopy(self.objects.get(key))
        if obj is None or obj["metadata"]["generation"] != generation:
            return
        annotations = obj["metadata"].get("annotations") or {}
        standard = annotations.get("serving.kserve.io/deploymentMode") in ("Standard", "RawDeployment")
        status = self._standard_status(obj) if standard else self._serverless_status(key, obj)
        status["observedGeneration"] = generation
        status["deploymentMode"] = "Standard" if standard else "Serverless"
        status["url"] = f"http://{key[1]}.{key[0]}.example.com"
        problems = kserve_schemas.schema_errors(
            {"status": status}, {"type": "object", "properties": {"status": self.schema["properties"]["status"]}}
        )
        self.schema_violations += [f"status of {key}: {p}" for p in problems]
        obj["status"] = status
        self._store(key, obj, spec_changed=False)

    def _failure(self, predictor: Dict[str, Any]) -> Optional[str]:
        return self.failing_versions.get((predictor.get("labels") or {}).get(VERSION_LABEL, ""))

    @staticmethod
    def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Dict[str, Any]:
        out = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        if reason:
            out["reason"] = reason
        if message:
            out["message"] = message
        return out

    def _serverless_status(self, key: Tuple[str, str], obj: Dict[str, Any]) -> Dict[str, Any]:
        predictor = dict(obj["spec"]["predictor"])
        percent = predictor.pop("canaryTrafficPercent", None)
        revs = self.revisions.setdefault(
            key, {"count": 0, "spec": None, "latest": "", "rolled_out": "", "previous": ""}
        )
        if revs["spec"] != predictor:  # a new Knative revision for every predictor change
            revs["count"] += 1
            revs["spec"] = predictor
            revs["latest"] = f"{key[1]}-predictor-{revs['count']:05d}"
        failure = self._failure(predictor)
        ready = failure is None
        if ready and percent is None:
            if revs["rolled_out"] != revs["latest"]:
                revs["previous"], revs["rolled_out"] = revs["rolled_out"], revs["latest"]
        stable = revs["rolled_out"] or revs["latest"]
        if not ready:
            traffic = (
                [{"revisionName": stable, "percent": 100, "latestRevision": False, "tag": "prev"}]
                if revs["rolled_out"]
                else []
            )
        elif percent is None or stable == revs["latest"]:
            traffic = [{"revisionName": revs["latest"], "percent": 100, "latestRevision": True}]
        else:
            traffic = [
                {"revisionName": revs["latest"], "percent": percent, "latestRevision": True, "tag": "latest"},
                {"revisionName": stable, "percent": 100 - percent, "latestRevision": False, "tag": "prev"},
            ]
        conditions = [
            self._condition("IngressReady", ready),
            self._condition("PredictorConfigurationReady", ready, "" if ready else "RevisionFailed", failure or ""),
            self._condition("PredictorReady", ready, "" if ready else "RevisionMissing", failure or ""),
            self._condition("PredictorRouteReady", ready),
            self._condition("Ready", ready, "" if ready else "RevisionMissing", failure or ""),
        ]
        component = {
            "latestCreatedRevision": revs["latest"],
            "traffic": traffic,
            "url": f"http://{key[1]}-predictor.{key[0]}.example.com",
        }
        if ready:
            component["latestReadyRevision"] = revs["latest"]
            component["latestRolledoutRevision"] = stable
        if revs["previous"]:
            component["previousRolledoutRevision"] = revs["previous"]
        return {"conditions": conditions, "components": {"predictor": component}}

    def _standard_status(self, obj: Dict[str, Any]) -> Dict[str, Any]:
        stable_failure = self._failure(obj["spec"]["predictor"])
        conditions = [
            self._condition(
                "PredictorReady",
                stable_failure is None,
                "" if stable_failure is None else "ProgressDeadlineExceeded",
                stable_failure or "",
            )
        ]
        status: Dict[str, Any] = {}
        canaries = obj["spec"].get("canary") or []
        if canaries:
            statuses, all_ready = [], True
            for entry in canaries:
                failure = self._failure(entry["predictor"])
                all_ready &= failure is None
                statuses.append(
                    {
                        "name": entry["predictor"]["name"],
                        "ready": failure is None,
                        "trafficPercent": entry["trafficPercent"],
                    }
                )
            status["canaryStatuses"] = statuses
            conditions.append(
                self._condition(
                    "CanaryPredictorReady", all_ready, "AllCanariesReady" if all_ready else "CanariesNotReady"
                )
            )
        conditions.append(
            self._condition(
                "Ready",
                stable_failure is None,
                "" if stable_failure is None else "PredictorNotReady",
                stable_failure or "",
            )
        )
        status["conditions"] = conditions
        return status

    # ------------------------------------------------------------------------------------------- HTTP
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # watch events go out as chunks, as the real API server sends them

            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str) -> None:
                self._send(
                    code,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": reason,
                        "message": message,
                        "code": code,
                    },
                )

            def _route(self):
                parsed = urllib.parse.urlparse(self.path)
                match = _PATH.match(parsed.path)
                return match, urllib.parse.parse_qs(parsed.query)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"null")

            def do_GET(self):
                match, query = self._route()
                if not match:
                    return self._status(
                        404, "NotFound", f"the server could not find the requested resource {self.path}"
                    )
                namespace, name = match.groups()
                fake.requests.append(("GET", self.path, "", None))
                if name:
                    obj = fake.objects.get((namespace, name))
                    if obj is None:
                        return self._status(404, "NotFound", f'inferenceservices.serving.kserve.io "{name}" not found')
                    return self._send(200, obj)
                if query.get("watch", ["false"])[0] in ("true", "1", "True"):
                    return self._watch(namespace, query)
                items = [o for (ns, _), o in fake.objects.items() if ns == namespace]
                return self._send(
                    200,
                    {
                        "apiVersion": "serving.kserve.io/v1beta1",
                        "kind": "InferenceServiceList",
                        "items": items,
                        "metadata": {"resourceVersion": str(fake.resource_version)},
                    },
                )

            def _watch(self, namespace: str, query: Dict[str, List[str]]) -> None:
                selector = query.get("fieldSelector", [""])[0]
                name = selector.split("=", 1)[1] if selector.startswith("metadata.name=") else None
                since = int(query.get("resourceVersion", ["0"])[0] or 0)
                timeout = float(query.get("timeoutSeconds", ["30"])[0])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                import time

                deadline = time.monotonic() + timeout
                with fake.changed:
                    while time.monotonic() < deadline:
                        for (ns, n), obj in list(fake.objects.items()):
                            if (
                                ns == namespace
                                and (name is None or n == name)
                                and int(obj["metadata"]["resourceVersion"]) > since
                            ):
                                since = int(obj["metadata"]["resourceVersion"])
                                event = (json.dumps({"type": "MODIFIED", "object": obj}) + "\n").encode()
                                try:
                                    self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                                    self.wfile.flush()
                                except OSError:
                                    self.close_connection = True
                                    return
                        fake.changed.wait(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
                try:
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
                self.close_connection = True

            def do_POST(self):
                match, query = self._route()
                if not match or match.group(2):
                    return self._status(405, "MethodNotAllowed", "POST only on the collection")
                namespace = match.group(1)
                body = self._body()
                fake.requests.append(("POST", self.path, self.headers.get("Content-Type", ""), body))
                strict = query.get("fieldValidation", [""])[0] == "Strict"
                errors = fake._validate(body, strict)
                if errors:
                    return self._invalid(body, errors)
                name = body["metadata"]["name"]
                if (namespace, name) in fake.objects:
                    return self._status(
                        409, "AlreadyExists", f'inferenceservices.serving.kserve.io "{name}" already exists'
                    )
                body = copy.deepcopy(body)
                body["metadata"]["namespace"] = namespace
                body.pop("status", None)
                self._send(201, fake._store((namespace, name), body, spec_changed=True))

            def do_PATCH(self):
                match, query = self._route()
                if not match or not match.group(2):
                    return self._status(405, "MethodNotAllowed", "PATCH only on an object")
                namespace, name = match.groups()
                content_type = self.headers.get("Content-Type", "")
                body = self._body()
                fake.requests.append(("PATCH", self.path, content_type, body))
                if content_type != "application/merge-patch+json":
                    return self._status(
                        415, "UnsupportedMediaType", f"the fake accepts merge patches only, got {content_type}"
                    )
                current = fake.objects.get((namespace, name))
                if current is None:
                    return self._status(404, "NotFound", f'inferenceservices.serving.kserve.io "{name}" not found')
                strict = query.get("fieldValidation", [""])[0] == "Strict"
                patched = merge_patch(current, body)
                errors = fake._validate(patched, strict)
                if errors:
                    return self._invalid(patched, errors)
                spec_changed = patched.get("spec") != current.get("spec")
                self._send(200, fake._store((namespace, name), patched, spec_changed=spec_changed))

            def _invalid(self, body: Dict[str, Any], errors: List[str]) -> None:
                unknown = [e for e in errors if e.startswith("unknown field")]
                name = (body.get("metadata") or {}).get("name", "")
                if unknown and len(unknown) == len(errors):
                    message = "strict decoding error: " + ", ".join(unknown)
                    return self._status(400, "BadRequest", message)
                self._status(
                    422, "Invalid", f'InferenceService.serving.kserve.io "{name}" is invalid: ' + "; ".join(errors)
                )

        return Handler
