"""kfp-free logic of the deploy component: create the InferenceService, or add the version as a canary.

* Absent ISVC: create it with the version as its only predictor and wait until it is ``Ready``.
* Present ISVC, **Serverless**: replace the predictor with the new version and set
  ``canaryTrafficPercent`` (Knative keeps the previous revision for the rest), in one JSON merge patch
  whose explicit ``null`` values remove what the new predictor does not set; wait for ``Ready`` and
  ``status.components.predictor.traffic[]`` showing the split.
* Present ISVC, **Standard**: add a ``spec.canary[]`` entry named ``v<version>`` with ``trafficPercent``
  (KServe ≥ 0.20); wait for ``CanaryPredictorReady`` and ``status.canaryStatuses[]``.

The registry version is an ``int`` here (push's ``version``, or :func:`resolve_version` from the version URI);
it becomes a string only where Kubernetes needs one: the ``kfpkit.dev/model-version`` label, the
stable-version annotation and the Standard canary name ``v<version>``. What is read back from the ISVC
(:class:`DeployResult`'s versions) is the version label, a string.

Refused loudly, where KServe would silently ignore the request: ``canaryTrafficPercent`` on a Standard
ISVC (kserve#5335), ``spec.canary`` on a cluster whose CRD lacks it (every write uses
``fieldValidation=Strict``), and a mode different from the existing ISVC's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

from kfpkit.components.deploy import isvc as api_mod
from kfpkit.components.deploy.isvc import DeployError
from kfpkit.components.deploy.traffic import serverless_traffic, standard_traffic
from kfpkit.core.registry import RegistryError, parse_version_uri
from kfpkit.core.traffic import Traffic


@dataclasses.dataclass
class DeployResult:
    """What deploy did and the traffic it left.

    The versions are the ``kfpkit.dev/model-version`` labels read back from the ISVC (strings), and
    ``traffic`` is keyed by them.
    """

    action: str  # created | canary | unchanged
    url: str
    mode: str
    stable_version: str
    canary_version: str
    stable_revision: str
    canary_revision: str
    traffic: Dict[str, int]

    @classmethod
    def from_traffic(cls, action: str, traffic: Traffic, mode: str, url: str) -> DeployResult:
        """The result of ``action`` from the traffic a backend reports after it (KServe or Vertex).

        Args:
            action: ``created``, ``canary`` or ``unchanged``.
            traffic: What the backend routes now.
            mode: The deployment mode (KServe's ``Serverless``/``Standard``, or ``Vertex``).
            url: The service URL; empty when unknown.

        Returns:
            The result, with the traffic split keyed by version.
        """
        split: Dict[str, int] = {traffic.stable.version: 100 - traffic.canary_percent}
        if traffic.canary is not None:
            split[traffic.canary.version] = traffic.canary_percent
        return cls(
            action=action,
            url=url,
            mode=mode,
            stable_version=traffic.stable.version,
            canary_version=traffic.canary.version if traffic.canary else "",
            stable_revision=traffic.stable.revision,
            canary_revision=traffic.canary.revision if traffic.canary else "",
            traffic=split,
        )

    def as_dict(self) -> Dict[str, Any]:
        """Every field as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def outputs(self) -> Tuple[str, str, str, str, str, int]:
        """The deploy component's outputs: URL, stable and canary versions and revisions, the canary's share."""
        share = self.traffic.get(self.canary_version, 0) if self.canary_version else 0
        return (self.url, self.stable_version, self.canary_version, self.stable_revision, self.canary_revision, share)


def canary_name(version: int) -> str:
    """The ``spec.canary[].predictor.name`` of a version (a DNS label: ``v<version>``)."""
    return f"v{api_mod.version_label(version)}"


def resolve_version(model_uri: str, model_version: int = 0) -> int:
    """The registry version to deploy: ``model_version``, else the version that ``model_uri`` names.

    Args:
        model_uri: The registry version URI ``<root>/<model_name>/<version>`` (push's ``model_uri``).
        model_version: The registry version number; 0 takes it from ``model_uri``.

    Returns:
        ``model_version`` when it is set, else the version parsed by
        :func:`kfpkit.core.registry.parse_version_uri`.

    Raises:
        DeployError: ``model_version`` is not a version number (an ``int`` ``>= 0``), it is set and
            ``model_uri`` names another version, or it is 0 and ``model_uri`` is not a registry version URI.
    """
    if isinstance(model_version, bool) or not isinstance(model_version, int) or model_version < 0:
        raise DeployError(
            f"model_version must be a registry version number 1, 2, ... (0: from model_uri), got {model_version!r}"
        )
    try:
        named: Optional[int] = parse_version_uri(model_uri).version
    except RegistryError:
        named = None
    if model_version and named is not None and named != model_version:
        # the pods would carry the label of another version than the one they serve
        raise DeployError(
            f"model_version {model_version} disagrees with model_uri {model_uri!r}, which is version {named}"
        )
    if model_version:
        return model_version
    if named is None:
        raise DeployError(
            f"model_version is not set (0) and model_uri {model_uri!r} is not a registry version URI "
            "<root>/<model_name>/<version> to take it from: pass model_version, or push's pushed_model"
        )
    return named


def replacement(old: Dict[str, Any], new: Dict[str, Any]) -> Dict[str, Any]:
    """A merge patch turning ``old`` into ``new`` at the top level: ``None`` for keys only ``old`` has."""
    patch: Dict[str, Any] = {key: None for key in old if key not in new}
    patch.update(new)
    return patch


def check_mode(obj: Dict[str, Any], mode: str) -> None:
    """Refuses a request KServe would silently ignore in ``mode``.

    Raises:
        DeployError: ``canaryTrafficPercent`` in Standard mode (kserve#5335: Standard ignores it).
    """
    if (
        mode == api_mod.STANDARD
        and (obj.get("spec", {}).get("predictor") or {}).get("canaryTrafficPercent") is not None
    ):
        raise DeployError(
            f"{obj['metadata'].get('namespace')}/{obj['metadata'].get('name')}: spec.predictor.canaryTrafficPercent is "
            "set on a Standard (RawDeployment) InferenceService, which KServe ignores (kserve#5335); "
            "Standard mode splits traffic with spec.canary[].trafficPercent"
        )


@dataclasses.dataclass(frozen=True)
class _Request:
    """One deploy request, its arguments checked: where, which version, and the predictor it becomes."""

    api: api_mod.InferenceServiceApi
    name: str
    namespace: str
    mode: str
    version: int
    canary_percent: int
    timeout_s: float
    spec_args: Dict[str, Any]

    def wait(self, condition: Callable[[Dict[str, Any]], bool], applied: Dict[str, Any]) -> Dict[str, Any]:
        """Waits until the ISVC of the write that returned ``applied`` meets ``condition``."""
        return self.api.wait(
            self.name, self.namespace, condition, self.timeout_s, generation=applied["metadata"].get("generation")
        )


def run_deploy(
    api: api_mod.InferenceServiceApi,
    *,
    name: str,
    namespace: str,
    storage_uri: str,
    version: int,
    content_sha256: str,
    image: str,
    mode: str = api_mod.SERVERLESS,
    protocol: str = "v1",
    cpu: str = "1",
    memory: str = "1Gi",
    min_replicas: int = 1,
    max_replicas: int = 1,
    service_account: str = "",
    canary_percent: int = 10,
    logger_url: str = "",
    logger_mode: str = "all",
    timeout_s: float = 600.0,
) -> DeployResult:
    """Deploys ``version`` of a pushed model to ISVC ``namespace/name`` (see the module docstring).

    ``version`` is the registry version number (an ``int``); it is written as the
    ``kfpkit.dev/model-version`` label.

    Raises:
        DeployError: bad arguments, a refusal by the cluster (its message included), or no readiness within
            ``timeout_s`` (the ISVC's condition messages included).
    """
    _check_arguments(
        mode=mode, version=version, canary_percent=canary_percent, protocol=protocol, content_sha256=content_sha256
    )
    request = _Request(
        api=api,
        name=name,
        namespace=namespace,
        mode=mode,
        version=version,
        canary_percent=canary_percent,
        timeout_s=timeout_s,
        spec_args=dict(
            model_name=name,
            storage_uri=storage_uri,
            version=version,
            content_sha256=content_sha256,
            image=image,
            protocol=protocol,
            cpu=cpu,
            memory=memory,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            service_account=service_account,
            logger_url=logger_url,
            logger_mode=logger_mode,
        ),
    )
    existing = api.get(name, namespace)
    if existing is None:
        return _create(request)
    current_mode = api_mod.deployment_mode(existing)
    if current_mode != mode:
        raise DeployError(
            f"{namespace}/{name} runs in {current_mode} mode; deploy was asked for {mode} "
            "(modes cannot change in place)"
        )
    check_mode(existing, mode)
    if mode == api_mod.SERVERLESS:
        return _serverless_canary(request, existing)
    return _standard_canary(request, existing)


def _check_arguments(*, mode: str, version: int, canary_percent: int, protocol: str, content_sha256: str) -> None:
    """Raises DeployError naming the first invalid argument."""
    if mode not in api_mod.MODES:
        raise DeployError(f"mode must be one of {', '.join(api_mod.MODES)}, got {mode!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DeployError(f"version must be a registry version number 1, 2, ..., got {version!r}")
    if not 0 <= canary_percent <= 100:
        raise DeployError(f"canary_percent must be within 0..100, got {canary_percent}")
    if protocol not in ("v1", "v2"):
        raise DeployError(f"protocol must be v1 or v2, got {protocol!r}")
    if not content_sha256:
        raise DeployError("content_sha256 is required: deploy pins the pushed content digest on the predictor")


def _create(request: _Request) -> DeployResult:
    """Creates the ISVC with the version as its only predictor and waits until it is ``Ready``."""
    standard = request.mode == api_mod.STANDARD
    predictor = api_mod.predictor_spec(**request.spec_args, name=canary_name(request.version) if standard else "")
    body = api_mod.inference_service(
        request.name, request.namespace, request.mode, predictor, stable_version=request.version
    )
    created = request.api.create(body)
    obj = request.wait(api_mod.ready, created)
    return _result("created", obj, request.mode)


def _serverless_canary(request: _Request, existing: Dict[str, Any]) -> DeployResult:
    """Serverless: the new version becomes the predictor with ``canaryTrafficPercent``, in one merge patch.

    Knative keeps the previous revision for the rest of the traffic. Unchanged when the version already is
    the stable one.
    """
    version = api_mod.version_label(request.version)  # compared with the labels read back from the ISVC
    stable_labels = existing["spec"]["predictor"].get("labels") or {}
    annotations = existing["metadata"].get("annotations") or {}
    already_canary = existing["spec"]["predictor"].get("canaryTrafficPercent") is not None
    if stable_labels.get(api_mod.VERSION_LABEL) == version and not already_canary:
        return _result("unchanged", existing, request.mode)
    stable_version = (
        annotations.get(api_mod.STABLE_VERSION_ANNOTATION, "")
        if stable_labels.get(api_mod.VERSION_LABEL) == version
        else stable_labels.get(api_mod.VERSION_LABEL, annotations.get(api_mod.STABLE_VERSION_ANNOTATION, ""))
    )
    predictor = api_mod.predictor_spec(**request.spec_args)
    predictor["canaryTrafficPercent"] = request.canary_percent
    patch = {
        "metadata": {"annotations": {api_mod.STABLE_VERSION_ANNOTATION: stable_version}},
        "spec": {"predictor": replacement(existing["spec"]["predictor"], predictor)},
    }
    applied = request.api.patch(request.name, request.namespace, patch)
    obj = request.wait(lambda o: api_mod.serverless_split_ready(o, request.canary_percent), applied)
    return _result("canary", obj, request.mode)


def _standard_canary(request: _Request, existing: Dict[str, Any]) -> DeployResult:
    """Standard: adds a ``spec.canary[]`` entry ``v<version>`` with ``trafficPercent``.

    Unchanged when the version already is the stable one.

    Raises:
        DeployError: the cluster's CRD has no ``spec.canary`` (KServe < 0.20), or another refusal.
    """
    stable_labels = existing["spec"]["predictor"].get("labels") or {}
    if stable_labels.get(api_mod.VERSION_LABEL) == api_mod.version_label(request.version):
        return _result("unchanged", existing, request.mode)
    entry_name = canary_name(request.version)
    predictor = api_mod.predictor_spec(**request.spec_args, name=entry_name)
    patch = {"spec": {"canary": [{"trafficPercent": request.canary_percent, "predictor": predictor}]}}
    try:
        applied = request.api.patch(request.name, request.namespace, patch)
    except DeployError as exc:
        if "unknown field" in str(exc) and "canary" in str(exc):
            raise DeployError(
                f"{request.namespace}/{request.name}: the cluster's InferenceService CRD has no spec.canary "
                f"(KServe < 0.20); upgrade KServe or use mode=Serverless. Cluster said: {exc}"
            ) from exc
        raise
    obj = request.wait(lambda o: api_mod.standard_canary_ready(o, entry_name, request.canary_percent), applied)
    return _result("canary", obj, request.mode)


def _result(action: str, obj: Dict[str, Any], mode: str) -> DeployResult:
    traffic = standard_traffic(obj) if mode == api_mod.STANDARD else serverless_traffic(obj)
    return DeployResult.from_traffic(action, traffic, mode, (obj.get("status") or {}).get("url", ""))


def to_markdown(result: DeployResult, obj: Optional[Dict[str, Any]] = None) -> str:
    """The deploy status as Markdown for the KFP UI."""
    lines = [
        f"# Deploy: {result.action} ({result.mode})",
        "",
        f"URL: {result.url or 'n/a'}",
        "",
        "| version | revision | traffic |",
        "|---|---|---|",
    ]
    for role, version, revision in (
        ("stable", result.stable_version, result.stable_revision),
        ("canary", result.canary_version, result.canary_revision),
    ):
        if version:
            lines.append(f"| {version} ({role}) | {revision or '-'} | {result.traffic.get(version, 0)}% |")
    if obj is not None:
        lines += ["", f"Conditions: {api_mod.condition_messages(obj)}"]
    return "\n".join(lines) + "\n"
