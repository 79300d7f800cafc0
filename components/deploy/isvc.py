"""The InferenceService side of deploy and rollout: manifests, JSON merge patches and readiness.

* :func:`predictor_spec` builds kfpkit's predictor (a ``kserve-container`` running ``kfpkit serve`` with the
  pushed content digest pinned) with the kserve SDK's model classes.
* :class:`InferenceServiceApi` creates, reads and patches ISVCs with the kubernetes client's
  ``CustomObjectsApi``. Patches are JSON merge patches (``application/merge-patch+json``) so that an
  explicit ``None`` removes a field, and every write uses ``fieldValidation=Strict``: a field the cluster's
  CRD does not know (``spec.canary`` before KServe 0.20) is refused instead of silently dropped.
* :meth:`InferenceServiceApi.wait` waits for a readiness predicate with a watch on the object (no sleeps);
  on a timeout it fails with the ISVC's condition messages.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
KIND = "InferenceService"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
VERSION_LABEL = "kfpkit.dev/model-version"
DIGEST_ANNOTATION = "kfpkit.dev/content-sha256"
STABLE_VERSION_ANNOTATION = "kfpkit.dev/stable-version"
SERVERLESS, STANDARD = "Serverless", "Standard"
MODES = (SERVERLESS, STANDARD)


class DeployError(RuntimeError):
    """The cluster refused a request, or the ISVC did not become ready in time (the message says why)."""


def version_label(version: int) -> str:
    """A registry version as Kubernetes labels, annotations and the predictor's flags carry it: ``"3"``."""
    return str(version)


# ------------------------------------------------------------------------------------------- manifests
def predictor_spec(
    *,
    model_name: str,
    storage_uri: str,
    version: int,
    content_sha256: str,
    image: str,
    protocol: str = "v1",
    cpu: str = "1",
    memory: str = "1Gi",
    min_replicas: int = 1,
    max_replicas: int = 1,
    service_account: str = "",
    logger_url: str = "",
    logger_mode: str = "all",
    name: str = "",
) -> Dict[str, Any]:
    """The kfpkit predictor as a plain dict (the kserve SDK's ``V1beta1PredictorSpec``, serialized).

    The container runs ``kfpkit serve --expected-digest <content_sha256>`` on the model that KServe's
    storage initializer downloads from ``STORAGE_URI`` into ``/mnt/models``; the pods carry the
    ``kfpkit.dev/model-version`` label the PodMonitor turns into the ``model_version`` target label.
    """
    from kserve import V1beta1LoggerSpec, V1beta1PredictorSpec
    from kubernetes import client

    args = [
        "serve",
        "--model-dir",
        "/mnt/models",
        "--model-name",
        model_name,
        "--model-version",
        version_label(version),
        "--http-port",
        "8080",
        "--expected-digest",
        content_sha256,
    ]
    container = client.V1Container(
        name="kserve-container",
        image=image,
        command=["kfpkit"],
        args=args,
        env=[
            client.V1EnvVar(name="STORAGE_URI", value=storage_uri),
            client.V1EnvVar(name="PROTOCOL", value=protocol),
        ],
        ports=[client.V1ContainerPort(container_port=8080, protocol="TCP")],
        resources=client.V1ResourceRequirements(
            requests={"cpu": cpu, "memory": memory}, limits={"cpu": cpu, "memory": memory}
        ),
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False,
            run_as_non_root=True,
            read_only_root_filesystem=True,
            capabilities=client.V1Capabilities(drop=["ALL"]),
        ),
    )
    spec = V1beta1PredictorSpec(
        containers=[container],
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        labels={VERSION_LABEL: version_label(version)},
        annotations={DIGEST_ANNOTATION: content_sha256},
        service_account_name=service_account or None,
        logger=V1beta1LoggerSpec(url=logger_url, mode=logger_mode) if logger_url else None,
        name=name or None,
    )
    return client.ApiClient().sanitize_for_serialization(spec)


def inference_service(
    name: str, namespace: str, mode: str, predictor: Dict[str, Any], stable_version: int
) -> Dict[str, Any]:
    """A whole ISVC manifest (``V1beta1InferenceService``) with the deployment-mode and stable-version annotations."""
    from kserve import V1beta1InferenceService
    from kubernetes import client

    isvc = V1beta1InferenceService(
        api_version=f"{GROUP}/{VERSION}",
        kind=KIND,
        metadata=client.V1ObjectMeta(
            name=name,
            namespace=namespace,
            annotations={MODE_ANNOTATION: mode, STABLE_VERSION_ANNOTATION: version_label(stable_version)},
            labels={"app.kubernetes.io/managed-by": "kfpkit"},
        ),
        spec={"predictor": predictor},
    )
    return client.ApiClient().sanitize_for_serialization(isvc)


def deployment_mode(obj: Dict[str, Any]) -> str:
    """``Serverless`` or ``Standard`` (``RawDeployment`` is the old name of Standard)."""
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(MODE_ANNOTATION) or (obj.get("status") or {}).get(
        "deploymentMode", SERVERLESS
    )
    return STANDARD if raw in ("RawDeployment", STANDARD) else SERVERLESS


# ------------------------------------------------------------------------------------------- readiness
def condition(obj: Dict[str, Any], kind: str) -> Optional[Dict[str, Any]]:
    """The ``status.conditions[]`` entry of type ``kind``, or ``None``."""
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def _true(obj: Dict[str, Any], kind: str) -> bool:
    found = condition(obj, kind)
    return found is not None and found.get("status") == "True"


def _observed(obj: Dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"].get("generation")


def serverless_split_ready(obj: Dict[str, Any], canary_percent: int) -> bool:
    """``Ready`` and ``status.components.predictor.traffic[]`` giving the latest revision ``canary_percent``."""
    if not (_observed(obj) and _true(obj, "Ready")):
        return False
    traffic = (((obj.get("status") or {}).get("components") or {}).get("predictor") or {}).get("traffic") or []
    latest = sum(int(t.get("percent") or 0) for t in traffic if t.get("latestRevision"))
    return latest == canary_percent


def standard_canary_ready(obj: Dict[str, Any], name: str, percent: int) -> bool:
    """``CanaryPredictorReady`` and a ready ``status.canaryStatuses[]`` entry ``name`` at ``percent``."""
    if not (_observed(obj) and _true(obj, "Ready") and _true(obj, "CanaryPredictorReady")):
        return False
    entry = next((c for c in (obj.get("status") or {}).get("canaryStatuses") or [] if c.get("name") == name), None)
    return entry is not None and entry.get("ready") is True and int(entry.get("trafficPercent", -1)) == percent


def standard_no_canary_ready(obj: Dict[str, Any]) -> bool:
    """``Ready`` with no canary left (``CanaryPredictorReady`` cleared, no ``canaryStatuses``)."""
    status = obj.get("status") or {}
    return (
        _observed(obj)
        and _true(obj, "Ready")
        and not status.get("canaryStatuses")
        and not condition(obj, "CanaryPredictorReady")
    )


def ready(obj: Dict[str, Any]) -> bool:
    """``Ready`` for the current generation (the controller has observed the latest spec)."""
    return _observed(obj) and _true(obj, "Ready")


def condition_messages(obj: Dict[str, Any]) -> str:
    """``Type=Status (Reason: message)`` of every condition, for error messages."""
    parts: List[str] = []
    for c in (obj.get("status") or {}).get("conditions") or []:
        detail = ": ".join(x for x in (c.get("reason"), c.get("message")) if x)
        parts.append(f"{c.get('type')}={c.get('status')}" + (f" ({detail})" if detail else ""))
    return "; ".join(parts) or "no status conditions reported"


# ------------------------------------------------------------------------------------------- the API
def api_client(host: str = "", token: str = "", verify_ssl: bool = True, kubeconfig: str = "") -> Any:
    """A kubernetes ``ApiClient``: explicit ``host`` (and token), else a kubeconfig, else in-cluster config."""
    from kubernetes import client, config

    configuration = client.Configuration()
    if host:
        configuration.host = host
        configuration.verify_ssl = verify_ssl
        if token:
            configuration.api_key = {"authorization": f"Bearer {token}"}
    elif kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


class InferenceServiceApi:
    """Create / get / merge-patch / wait for ``serving.kserve.io/v1beta1`` InferenceServices."""

    def __init__(self, api_client: Any):
        from kubernetes import client

        self.custom = client.CustomObjectsApi(api_client)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.rest import ApiException

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            if exc.status == 404 and what.startswith("get"):
                return None
            raise DeployError(f"{what}: HTTP {exc.status} {exc.reason}: {_api_message(exc)}") from exc

    def get(self, name: str, namespace: str) -> Optional[Dict[str, Any]]:
        """The ISVC, or ``None`` when it does not exist."""
        return self._call(
            f"get {namespace}/{name}", self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
        )

    def create(self, body: Dict[str, Any]) -> Dict[str, Any]:
        """Creates the ISVC ``body`` with strict field validation; returns it as stored.

        Raises:
            DeployError: the API refused it (the message has the status and the API's reason).
        """
        ns = body["metadata"]["namespace"]
        return self._call(
            f"create {ns}/{body['metadata']['name']}",
            self.custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            body,
            field_validation="Strict",
        )

    def patch(self, name: str, namespace: str, patch: Dict[str, Any]) -> Dict[str, Any]:
        """Applies a JSON merge patch (``None`` removes a field)."""
        return self._call(
            f"patch {namespace}/{name}",
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            field_validation="Strict",
        )

    def wait(
        self,
        name: str,
        namespace: str,
        predicate: Callable[[Dict[str, Any]], bool],
        timeout_s: float,
        generation: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Watches the ISVC until ``predicate`` holds (for ``generation`` or later); returns it.

        Raises:
            DeployError: not ready within ``timeout_s``; the message lists its status conditions.
        """
        from kubernetes import watch

        deadline = time.monotonic() + timeout_s
        obj = self.get(name, namespace)

        def done(o: Optional[Dict[str, Any]]) -> bool:
            if not o:
                return False
            if generation is not None and (o.get("status") or {}).get("observedGeneration", 0) < generation:
                return False
            return predicate(o)

        while not done(obj):
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeployError(
                    f"{namespace}/{name} not ready after {timeout_s:.0f}s: {condition_messages(obj or {})}"
                )
            version = (obj or {}).get("metadata", {}).get("resourceVersion")
            w = watch.Watch()
            for event in w.stream(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                field_selector=f"metadata.name={name}",
                resource_version=version,
                timeout_seconds=max(1, int(min(left, 60))),
            ):
                obj = event["object"]
                if done(obj) or time.monotonic() >= deadline:
                    w.stop()
                    break
            else:
                obj = self.get(name, namespace)
        return obj  # type: ignore[return-value]


def _api_message(exc: Any) -> str:
    import json

    try:
        return json.loads(exc.body).get("message", exc.body)
    except (TypeError, ValueError):
        return str(exc.body)[:500]
