"""Vertex AI Endpoints as deploy's target (kfp-free): a Model Registry version, deployed as a canary.

deploy on Vertex AI, step by step (every call through ``google-cloud-aiplatform``'s ``aiplatform_v1`` clients
over REST; each long-running operation is polled to its end):

1. **Upload** the pushed version as a new version of one Vertex model (``models:upload`` with
   ``parent_model``; the first upload creates the model with ``model_id``). The version's container is
   kfpkit's serving image running ``kfpkit serve --model-dir <registry URI> --expected-digest <sha256>``
   (:func:`serving_container`): the content digest is pinned in the arguments, which the server enforces
   before it loads anything, and repeated in the ``KFPKIT_CONTENT_SHA256`` variable and the version
   description. The version carries the labels ``kfpkit-model-version`` (the registry version) and
   ``kfpkit-model``. A retried task finds the version it uploaded before (same label, same digest) instead
   of uploading it twice; the same registry version with another digest is refused.
2. **Create the Endpoint** when it does not exist (``endpoints.create`` with ``endpoint_id``).
3. **Deploy** the version to the Endpoint (``endpoints.deployModel``) with a ``traffic_split`` that gives it
   ``canary_percent`` and the stable deployed model the rest; on an empty Endpoint it gets 100 %.

The stable/canary roles: an Endpoint holds one deployed model (stable only) or two, of which the newer
(``create_time``) is the canary (:func:`endpoint_traffic`). Promote and rollback live in the rollout's
:class:`~kfpkit.components.rollout.vertex.VertexEndpointBackend`: a ``traffic_split`` update, then the loser
is undeployed.

Refused: a third deployed model (a canary that was never decided), an invalid model or endpoint ID, the
same registry version under another digest. Nothing reads the environment at import.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Dict, List, Optional, Sequence

from kfpkit.components.deploy.isvc import DeployError
from kfpkit.components.deploy.logic import DeployResult
from kfpkit.core.traffic import Side, Traffic

VERTEX = "Vertex"  # DeployResult.mode of a Vertex deployment
DEFAULT_LOCATION = "us-central1"
DEFAULT_MACHINE_TYPE = "n1-standard-2"
VERSION_LABEL = "kfpkit-model-version"
MODEL_LABEL = "kfpkit-model"
DIGEST_ENV = "KFPKIT_CONTENT_SHA256"
CONTAINER_PORT = 8080
PREDICT_ROUTE = "/predict"
HEALTH_ROUTE = "/health"
# Vertex's rules for IDs chosen by the caller (UploadModelRequest.model_id, CreateEndpointRequest.endpoint_id)
_MODEL_ID = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
_ENDPOINT_ID = re.compile(r"^(?:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|[1-9][0-9]{0,8})$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def label_value(text: str) -> str:
    """``text`` as a Vertex label value: lowercase, other characters as ``-``, at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


@dataclasses.dataclass(frozen=True)
class VertexLocation:
    """Where the model and the Endpoint live, and how to reach Vertex AI.

    Attributes:
        project: Google Cloud project ID.
        location: Region, e.g. ``us-central1``.
        api_endpoint: Vertex AI API base: empty for ``https://<location>-aiplatform.googleapis.com``; a
            ``http(s)://host:port`` URL for another address (a Private Service Connect endpoint, a test fake).
        timeout_s: Longest wait for one long-running operation.
        poll_s: First interval between two polls of a long-running operation (it grows 1.5× up to 10 s).
    """

    project: str
    location: str = DEFAULT_LOCATION
    api_endpoint: str = ""
    timeout_s: float = 1800.0
    poll_s: float = 1.0

    @property
    def parent(self) -> str:
        """``projects/<project>/locations/<location>``."""
        return f"projects/{self.project}/locations/{self.location}"

    def endpoint_name(self, endpoint_id: str) -> str:
        """The Endpoint's resource name."""
        return f"{self.parent}/endpoints/{endpoint_id}"

    def model_name(self, model_id: str) -> str:
        """The (parent) model's resource name."""
        return f"{self.parent}/models/{model_id}"

    @property
    def predict_base(self) -> str:
        """The URL prefix clients send ``<endpoint name>:predict`` to."""
        return (self.api_endpoint or f"https://{self.location}-aiplatform.googleapis.com").rstrip("/") + "/v1/"


class VertexApi:
    """The Model Registry and Endpoint calls deploy and rollout make, through aiplatform_v1's REST clients.

    Args:
        where: Project, location, API address and operation timing.
        credentials: google-auth credentials (default: Application Default Credentials).
    """

    def __init__(self, where: VertexLocation, credentials: Any = None):
        from google.cloud.aiplatform_v1 import EndpointServiceClient, ModelServiceClient

        if not where.project:
            raise DeployError("a Vertex AI project is required")
        self.where = where
        base = where.api_endpoint or f"https://{where.location}-aiplatform.googleapis.com"
        options = {"api_endpoint": base}
        self.models = ModelServiceClient(credentials=credentials, client_options=options, transport="rest")
        self.endpoints = EndpointServiceClient(credentials=credentials, client_options=options, transport="rest")
        self._versions: Dict[str, Any] = {}

    # ------------------------------------------------------------------ operations
    def wait(self, operation: Any, what: str) -> Any:
        """The result of a long-running operation, polled until done.

        Raises:
            DeployError: the operation failed or did not finish within ``timeout_s`` (its message included).
        """
        from google.api_core import exceptions
        from google.api_core.future.polling import DEFAULT_POLLING

        polling = DEFAULT_POLLING.with_delay(initial=self.where.poll_s, maximum=max(10.0, self.where.poll_s))
        polling = polling.with_timeout(self.where.timeout_s)
        try:
            return operation.result(timeout=self.where.timeout_s, polling=polling)
        except (exceptions.GoogleAPICallError, TimeoutError) as exc:
            raise DeployError(f"{what}: {type(exc).__name__}: {exc}") from exc

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        from google.api_core import exceptions

        try:
            return function(*args, **kwargs)
        except exceptions.GoogleAPICallError as exc:
            raise DeployError(f"{what}: {type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------------ reads
    def get_endpoint(self, endpoint_id: str) -> Optional[Any]:
        """The ``aiplatform_v1.Endpoint``, or ``None`` when it does not exist."""
        from google.api_core import exceptions

        try:
            return self.endpoints.get_endpoint(name=self.where.endpoint_name(endpoint_id))
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as exc:
            raise DeployError(f"reading endpoint {endpoint_id}: {type(exc).__name__}: {exc}") from exc

    def get_model(self, name: str) -> Optional[Any]:
        """The ``aiplatform_v1.Model`` (``name`` may carry ``@<version id>``), or ``None`` when absent."""
        from google.api_core import exceptions

        try:
            return self.models.get_model(name=name)
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as exc:
            raise DeployError(f"reading model {name}: {type(exc).__name__}: {exc}") from exc

    def served_version(self, deployed: Any) -> Any:
        """The model version (an ``aiplatform_v1.Model``) a deployed model serves; cached, versions do not change.

        Raises:
            DeployError: the version no longer exists.
        """
        name = f"{deployed.model}@{deployed.model_version_id}" if deployed.model_version_id else deployed.model
        if name not in self._versions:
            model = self.get_model(name)
            if model is None:
                raise DeployError(f"deployed model {deployed.id} serves {name}, which does not exist")
            self._versions[name] = model
        return self._versions[name]

    def find_version(self, model_id: str, version: int) -> List[Any]:
        """The uploaded versions of ``model_id`` labelled with registry version ``version`` (empty: none)."""
        if self.get_model(self.where.model_name(model_id)) is None:
            return []
        pager = self._call(
            f"listing versions of {model_id}",
            self.models.list_model_versions,
            request={"name": self.where.model_name(model_id), "filter": f"labels.{VERSION_LABEL}={version}"},
        )
        return list(pager)

    # ------------------------------------------------------------------ writes
    def upload(self, model_id: str, model: Any) -> str:
        """Uploads ``model`` as a new version of ``model_id`` (creating it first time); returns ``<name>@<id>``."""
        parent_model = self.where.model_name(model_id)
        request: Dict[str, Any] = {"parent": self.where.parent, "model": model}
        if self.get_model(parent_model) is None:
            request["model_id"] = model_id
        else:
            request["parent_model"] = parent_model
        operation = self._call(f"uploading a version of {model_id}", self.models.upload_model, request=request)
        response = self.wait(operation, f"uploading a version of {model_id}")
        return f"{response.model}@{response.model_version_id}"

    def create_endpoint(self, endpoint_id: str, display_name: str) -> Any:
        """Creates the Endpoint ``endpoint_id`` and returns it."""
        operation = self._call(
            f"creating endpoint {endpoint_id}",
            self.endpoints.create_endpoint,
            request={
                "parent": self.where.parent,
                "endpoint": {"display_name": display_name},
                "endpoint_id": endpoint_id,
            },
        )
        return self.wait(operation, f"creating endpoint {endpoint_id}")

    def deploy(self, endpoint_id: str, deployed_model: Any, traffic_split: Dict[str, int]) -> Any:
        """Deploys a model version to the Endpoint (key ``"0"`` of ``traffic_split`` is the new one)."""
        operation = self._call(
            f"deploying to endpoint {endpoint_id}",
            self.endpoints.deploy_model,
            request={
                "endpoint": self.where.endpoint_name(endpoint_id),
                "deployed_model": deployed_model,
                "traffic_split": traffic_split,
            },
        )
        return self.wait(operation, f"deploying to endpoint {endpoint_id}").deployed_model

    def set_traffic(self, endpoint_id: str, traffic_split: Dict[str, int]) -> Any:
        """Sets the Endpoint's ``traffic_split`` (``endpoints.patch`` with ``update_mask=traffic_split``)."""
        return self._call(
            f"updating the traffic of endpoint {endpoint_id}",
            self.endpoints.update_endpoint,
            request={
                "endpoint": {"name": self.where.endpoint_name(endpoint_id), "traffic_split": traffic_split},
                "update_mask": {"paths": ["traffic_split"]},
            },
        )

    def undeploy(self, endpoint_id: str, deployed_model_id: str, traffic_split: Dict[str, int]) -> None:
        """Undeploys a deployed model; ``traffic_split`` is the split of the models that stay."""
        operation = self._call(
            f"undeploying {deployed_model_id} from endpoint {endpoint_id}",
            self.endpoints.undeploy_model,
            request={
                "endpoint": self.where.endpoint_name(endpoint_id),
                "deployed_model_id": deployed_model_id,
                "traffic_split": traffic_split,
            },
        )
        self.wait(operation, f"undeploying {deployed_model_id} from endpoint {endpoint_id}")


# ---------------------------------------------------------------------------------------- the traffic
def endpoint_traffic(api: VertexApi, endpoint_id: str, endpoint: Any = None) -> Traffic:
    """The Endpoint's split as a :class:`~kfpkit.core.traffic.Traffic`.

    Each side's ``version`` is the ``kfpkit-model-version`` label of the model version it serves and its
    ``revision`` the deployed model ID; with two deployed models the newer one is the canary.

    Raises:
        DeployError: the Endpoint does not exist, holds no deployed model or more than two.
    """
    endpoint = endpoint if endpoint is not None else api.get_endpoint(endpoint_id)
    if endpoint is None:
        raise DeployError(f"endpoint {api.where.endpoint_name(endpoint_id)} does not exist")
    deployed = sorted(endpoint.deployed_models, key=lambda d: (d.create_time.timestamp(), d.id))
    if not deployed or len(deployed) > 2:
        raise DeployError(
            f"endpoint {endpoint_id} holds {len(deployed)} deployed models; kfpkit expects a stable one and at most "
            "one canary"
        )
    split = dict(endpoint.traffic_split)
    sides = [
        Side(version=api.served_version(d).labels.get(VERSION_LABEL, d.display_name), revision=d.id) for d in deployed
    ]
    url = f"{api.where.predict_base}{api.where.endpoint_name(endpoint_id)}:predict"
    canary = sides[1] if len(sides) == 2 else None
    percent = int(split.get(canary.revision, 0)) if canary else 0
    return Traffic(api.where.parent, endpoint_id, sides[0], canary, percent, url=url)


# ---------------------------------------------------------------------------------------- deploy
def serving_container(
    *,
    image: str,
    storage_uri: str,
    model_name: str,
    version: int,
    content_sha256: str,
    payload_log: str,
    payload_log_flush_seconds: float = 10.0,
) -> Dict[str, Any]:
    """The version's ``ModelContainerSpec``: ``kfpkit serve`` on Vertex's routes, the digest pinned.

    Vertex sets ``AIP_HTTP_PORT``, ``AIP_PREDICT_ROUTE`` and ``AIP_HEALTH_ROUTE`` from ``ports``,
    ``predict_route`` and ``health_route``; ``kfpkit serve`` honours them.
    """
    args = [
        "serve",
        "--model-dir",
        storage_uri,
        "--model-name",
        model_name,
        "--model-version",
        str(version),
        "--expected-digest",
        content_sha256,
    ]
    if payload_log:
        args += ["--payload-log", payload_log, "--payload-log-flush-seconds", f"{payload_log_flush_seconds:g}"]
    return {
        "image_uri": image,
        "command": ["kfpkit"],
        "args": args,
        "env": [{"name": DIGEST_ENV, "value": content_sha256}],
        "ports": [{"container_port": CONTAINER_PORT}],
        "predict_route": PREDICT_ROUTE,
        "health_route": HEALTH_ROUTE,
    }


def container_flag(container_args: Sequence[str], flag: str) -> str:
    """The value of ``flag`` (e.g. ``--payload-log``) in a serving container's arguments (empty: not set)."""
    args = list(container_args)
    for index, arg in enumerate(args[:-1]):
        if arg == flag:
            return args[index + 1]
    return ""


@dataclasses.dataclass(frozen=True)
class VertexDeployment:
    """What deploy puts on Vertex AI, besides the version itself.

    Attributes:
        model_id: The Vertex model whose versions the registry versions become.
        endpoint_id: The Endpoint serving them.
        image: The serving image (kfpkit's).
        payload_log: Where the served version logs its payload records (``gs://...``); the rollout reads the
            score distributions there. Required.
        payload_log_flush_seconds: Longest time a payload record waits in the server's memory.
        machine_type: Compute Engine machine type of each replica.
        min_replicas: Minimum replicas.
        max_replicas: Maximum replicas.
        service_account: Service account the container runs as (reads the registry, writes the payload log).
        canary_percent: Traffic share of a new version when the Endpoint already serves one.
    """

    model_id: str
    endpoint_id: str
    image: str
    payload_log: str
    payload_log_flush_seconds: float = 10.0
    machine_type: str = DEFAULT_MACHINE_TYPE
    min_replicas: int = 1
    max_replicas: int = 1
    service_account: str = ""
    canary_percent: int = 10

    def check(self) -> None:
        """Raises DeployError naming the first invalid field."""
        if not _MODEL_ID.match(self.model_id):
            raise DeployError(
                f"model_id {self.model_id!r}: Vertex model IDs hold up to 63 of [a-z0-9_-], not starting with a "
                "digit or '-'"
            )
        if not _ENDPOINT_ID.match(self.endpoint_id):
            raise DeployError(
                f"endpoint_id {self.endpoint_id!r}: Vertex endpoint IDs are up to 63 of [a-z0-9-] starting with a "
                "letter, or up to 9 digits without a leading zero"
            )
        if not self.payload_log:
            raise DeployError(
                "payload_log is required on Vertex AI: the rollout reads each version's score distribution there"
            )
        if not 0 <= self.canary_percent <= 100:
            raise DeployError(f"canary_percent must be within 0..100, got {self.canary_percent}")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise DeployError(f"replicas must satisfy 1 <= min <= max, got {self.min_replicas}..{self.max_replicas}")


def run_vertex_deploy(
    api: VertexApi,
    deployment: VertexDeployment,
    *,
    model_name: str,
    storage_uri: str,
    version: int,
    content_sha256: str,
) -> DeployResult:
    """Deploys registry ``version`` of ``model_name`` to the Endpoint (see the module docstring).

    Returns:
        ``created`` (the Endpoint's first model, 100 %), ``canary`` (beside the stable one at
        ``canary_percent``) or ``unchanged`` (the Endpoint already serves this version).

    Raises:
        DeployError: bad arguments, an undecided canary of another version on the Endpoint, the version
            uploaded before under another digest, or a refusal or timeout of Vertex AI (its message included).
    """
    deployment.check()
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DeployError(f"version must be a registry version number 1, 2, ..., got {version!r}")
    if not content_sha256:
        raise DeployError("content_sha256 is required: deploy pins the pushed content digest on the container")
    endpoint = api.get_endpoint(deployment.endpoint_id)
    if endpoint is not None and endpoint.deployed_models:
        traffic = endpoint_traffic(api, deployment.endpoint_id, endpoint)
        if str(version) in (traffic.stable.version, traffic.canary.version if traffic.canary else ""):
            return _result("unchanged", traffic)
        if traffic.canary is not None:
            raise DeployError(
                f"endpoint {deployment.endpoint_id} already has an undecided canary (version {traffic.canary.version}"
                f" beside {traffic.stable.version}); let its rollout promote or roll it back first"
            )
    model = _model_version(api, deployment, model_name, storage_uri, version, content_sha256)
    if endpoint is None:
        api.create_endpoint(deployment.endpoint_id, display_name=deployment.endpoint_id)
        endpoint = api.get_endpoint(deployment.endpoint_id)
    stable = list(endpoint.deployed_models) if endpoint is not None else []
    percent = deployment.canary_percent
    split = {"0": 100} if not stable else {"0": percent, stable[0].id: 100 - percent}
    api.deploy(deployment.endpoint_id, _deployed_model(deployment, model, version), split)
    return _result("canary" if stable else "created", endpoint_traffic(api, deployment.endpoint_id))


def _model_version(
    api: VertexApi, deployment: VertexDeployment, model_name: str, storage_uri: str, version: int, digest: str
) -> str:
    """``<model>@<version id>`` of the registry version: uploaded before (a retried task), else now."""
    for existing in api.find_version(deployment.model_id, version):
        pinned = {e.name: e.value for e in existing.container_spec.env}.get(DIGEST_ENV, "")
        if pinned != digest:
            raise DeployError(
                f"model {deployment.model_id} version {existing.version_id} holds registry version {version} with "
                f"content digest {pinned or 'none'}, not {digest}: a registry version cannot change its content"
            )
        return f"{api.where.model_name(deployment.model_id)}@{existing.version_id}"
    container = serving_container(
        image=deployment.image,
        storage_uri=storage_uri,
        model_name=model_name,
        version=version,
        content_sha256=digest,
        payload_log=deployment.payload_log,
        payload_log_flush_seconds=deployment.payload_log_flush_seconds,
    )
    model: Dict[str, Any] = {
        "display_name": deployment.model_id,
        "version_description": f"kfpkit {model_name} version {version}, content sha256:{digest}",
        "container_spec": container,
        "labels": {VERSION_LABEL: str(version), MODEL_LABEL: label_value(model_name)},
    }
    if storage_uri.startswith("gs://"):
        model["artifact_uri"] = storage_uri  # Vertex copies it to AIP_STORAGE_URI; the server reads the registry
    return api.upload(deployment.model_id, model)


def _deployed_model(deployment: VertexDeployment, model: str, version: int) -> Dict[str, Any]:
    deployed: Dict[str, Any] = {
        "model": model,  # <model>@<version id>: that version, not the model's default one
        "display_name": f"{deployment.model_id}-v{version}",
        "dedicated_resources": {
            "machine_spec": {"machine_type": deployment.machine_type},
            "min_replica_count": deployment.min_replicas,
            "max_replica_count": deployment.max_replicas,
        },
    }
    if deployment.service_account:
        deployed["service_account"] = deployment.service_account
    return deployed


def _result(action: str, traffic: Traffic) -> DeployResult:
    return DeployResult.from_traffic(action, traffic, VERTEX, traffic.url)


def deploy_to_vertex(
    *,
    project: str,
    location: str,
    endpoint_id: str,
    model_name: str,
    storage_uri: str,
    version: int,
    content_sha256: str,
    image: str,
    payload_log: str,
    machine_type: str = DEFAULT_MACHINE_TYPE,
    min_replicas: int = 1,
    max_replicas: int = 1,
    service_account: str = "",
    canary_percent: int = 10,
    timeout_s: float = 1800.0,
    api_endpoint: str = "",
    credentials: Any = None,
) -> DeployResult:
    """The Vertex AI path of the deploy component (``backend="vertex"``): :func:`run_vertex_deploy`, its clients.

    The Vertex model's ID is ``model_name`` (the registry's model); replicas are at least 1 (Vertex AI does not
    scale a custom container to zero). Credentials: Application Default Credentials unless given.

    Raises:
        DeployError: see :func:`run_vertex_deploy`.
    """
    api = VertexApi(VertexLocation(project, location, api_endpoint=api_endpoint, timeout_s=timeout_s), credentials)
    deployment = VertexDeployment(
        model_id=model_name,
        endpoint_id=endpoint_id,
        image=image,
        payload_log=payload_log,
        machine_type=machine_type,
        min_replicas=max(1, min_replicas),
        max_replicas=max(1, min_replicas, max_replicas),
        service_account=service_account,
        canary_percent=canary_percent,
    )
    return run_vertex_deploy(
        api, deployment, model_name=model_name, storage_uri=storage_uri, version=version, content_sha256=content_sha256
    )
