"""KFP component: deploy a pushed model version as a KServe InferenceService (new, or as a canary)."""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Input, Markdown, Model, Output

from kfpkit.components import images


@dsl.component(base_image=images.base_image(), install_kfp_package=False)
def deploy(
    isvc_name: str,
    namespace: str,
    status: Output[Markdown],
    model_uri: str = "",
    model_version: int = 0,
    content_sha256: str = "",
    pushed_model: Optional[Input[Model]] = None,
    mode: str = "Serverless",
    predictor_image: str = "",
    protocol: str = "v1",
    cpu: str = "1",
    memory: str = "1Gi",
    min_replicas: int = 1,
    max_replicas: int = 1,
    service_account: str = "",
    canary_percent: int = 10,
    logger_url: str = "",
    logger_mode: str = "all",
    timeout_seconds: float = 600.0,
    backend: str = "kserve",
    vertex_project: str = "",
    vertex_location: str = "us-central1",
    vertex_endpoint: str = "",
    payload_log: str = "",
    machine_type: str = "n1-standard-2",
) -> NamedTuple(  # type: ignore[valid-type]  # KFP reads the functional NamedTuple
    "DeployOutputs",
    [
        ("url", str),
        ("stable_version", str),
        ("canary_version", str),
        ("stable_revision", str),
        ("canary_revision", str),
        ("canary_traffic_percent", int),
    ],
):
    """Creates the InferenceService when absent, else adds the version as a canary, and waits until ready.

    Serverless mode replaces the predictor and sets ``canaryTrafficPercent``; Standard mode adds a
    ``spec.canary[]`` entry named ``v<version>`` (KServe ≥ 0.20). Changes are JSON merge patches with
    ``fieldValidation=Strict``; readiness comes from a watch on the status conditions; a timeout fails with
    the ISVC's condition messages. The predictor runs ``kfpkit serve --expected-digest`` with the pushed
    content digest, so a version edited after push never serves. Refused: ``canaryTrafficPercent`` on a
    Standard ISVC (kserve#5335), ``spec.canary`` against a CRD without it, a mode change.

    Args:
        isvc_name: InferenceService name (the registry's model name).
        namespace: Namespace of the InferenceService (the runner's Role grants it there).
        status: Markdown for the KFP UI: action, URL, versions, revisions and traffic, conditions.
        model_uri: Registry version URI (KServe ``storageUri``), e.g. push's ``model_uri``.
        model_version: Registry version number (0: the version that ``model_uri`` names; a ``model_uri``
            that is not a registry version URI then fails, naming this parameter). A version that
            disagrees with the one ``model_uri`` names is refused.
        content_sha256: The version's content digest (push's ``content_sha256``).
        pushed_model: push's ``pushed_model`` output; when given, its ``model_uri``, ``version`` and
            ``content_sha256`` replace the three parameters above.
        mode: ``Serverless`` (Knative revisions) or ``Standard`` (RawDeployment, Gateway API weights).
        predictor_image: Predictor image (empty: kfpkit's serving image of this kfpkit version).
        protocol: ``v1`` or ``v2`` (Open Inference Protocol) for clients; the predictor serves both.
        cpu: CPU request and limit of the predictor container.
        memory: Memory request and limit of the predictor container.
        min_replicas: Minimum replicas (0 lets Serverless scale to zero).
        max_replicas: Maximum replicas.
        service_account: Service account with the storage credentials (empty: the namespace default).
        canary_percent: Traffic share of the new version when the ISVC exists (0: dark launch).
        logger_url: KServe payload-logger sink URL (empty: no logger).
        logger_mode: KServe logger mode: ``all``, ``request`` or ``response``.
        timeout_seconds: Readiness timeout (Vertex AI: per long-running operation).
        backend: ``kserve`` (an InferenceService) or ``vertex`` (a Vertex AI Endpoint: the version is uploaded as
            a new version of the Vertex model ``isvc_name`` with kfpkit's serving image, its digest pinned, and
            deployed at ``canary_percent`` beside the stable one; kfpkit.components.deploy.vertex).
        vertex_project: Vertex AI: the Google Cloud project.
        vertex_location: Vertex AI: the region.
        vertex_endpoint: Vertex AI: the Endpoint ID (empty: ``isvc_name``); created when absent.
        payload_log: Vertex AI: where the served version logs its payload records (``gs://...``, required):
            the rollout compares the two versions' score distributions there.
        machine_type: Vertex AI: machine type of each replica.

    Returns:
        url: The InferenceService URL.
        stable_version: The version label (``kfpkit.dev/model-version``, a string) serving the stable traffic.
        canary_version: The version label of the canary (empty without one).
        stable_revision: Knative revision (Serverless) or predictor name (Standard) of the stable version.
        canary_revision: Knative revision or ``spec.canary[]`` name of the canary (empty without one).
        canary_traffic_percent: The canary's traffic share after deploy.
    """
    import collections

    from kfpkit.components import images as kfpkit_images
    from kfpkit.components.deploy import isvc
    from kfpkit.components.deploy.logic import resolve_version, run_deploy, to_markdown
    from kfpkit.core.records import read_record
    from kfpkit.core.registry import PushedModel

    if pushed_model is not None:
        pushed = read_record(pushed_model.path, PushedModel)
        uri, version, digest = pushed.model_uri, pushed.version, pushed.content_sha256
    else:
        uri, version, digest = model_uri, resolve_version(model_uri, model_version), content_sha256
    if backend not in ("kserve", "vertex"):
        raise ValueError(f"backend must be kserve or vertex, got {backend!r}")
    shared: dict = dict(storage_uri=uri, version=version, content_sha256=digest, service_account=service_account)
    shared.update(image=predictor_image or kfpkit_images.serving_image(), canary_percent=canary_percent)
    shared.update(min_replicas=min_replicas, max_replicas=max_replicas, timeout_s=timeout_seconds)
    obj = None
    if backend == "vertex":
        from kfpkit.components.deploy.vertex import deploy_to_vertex

        result = deploy_to_vertex(
            project=vertex_project, location=vertex_location, endpoint_id=vertex_endpoint or isvc_name,
            model_name=isvc_name, payload_log=payload_log, machine_type=machine_type, **shared,
        )  # fmt: skip
    else:
        api = isvc.InferenceServiceApi(isvc.api_client())
        result = run_deploy(
            api, name=isvc_name, namespace=namespace, mode=mode, protocol=protocol, cpu=cpu, memory=memory,
            logger_url=logger_url, logger_mode=logger_mode, **shared,
        )  # fmt: skip
        obj = api.get(isvc_name, namespace)
    with open(status.path, "w", encoding="utf-8") as fh:
        fh.write(to_markdown(result, obj))
    status.metadata.update(result.as_dict())
    DeployOutputs = collections.namedtuple(
        "DeployOutputs",
        ["url", "stable_version", "canary_version", "stable_revision", "canary_revision", "canary_traffic_percent"],
    )
    return DeployOutputs(*result.outputs())
