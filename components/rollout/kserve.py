"""The KServe traffic backend for an existing InferenceService, chosen by its deployment mode."""

from __future__ import annotations

from typing import Any

from kfpkit.components.deploy import isvc as isvc_api
from kfpkit.components.rollout.backends import KServeServerlessBackend, KServeStandardBackend


def kserve_backend(
    name: str,
    namespace: str,
    host: str = "",
    token: str = "",
    kubeconfig: str = "",
    timeout_s: float = 600.0,
    verify_ssl: bool = True,
) -> Any:
    """:class:`KServeServerlessBackend` or :class:`KServeStandardBackend` for ISVC ``namespace/name``.

    Raises:
        kfpkit.components.deploy.isvc.DeployError: the ISVC does not exist or cannot be read.
    """
    api = isvc_api.InferenceServiceApi(
        isvc_api.api_client(host=host, token=token, kubeconfig=kubeconfig, verify_ssl=verify_ssl)
    )
    obj = api.get(name, namespace)
    if obj is None:
        raise isvc_api.DeployError(f"InferenceService {namespace}/{name} not found")
    cls = KServeStandardBackend if isvc_api.deployment_mode(obj) == isvc_api.STANDARD else KServeServerlessBackend
    return cls(api, name, namespace, timeout_s=timeout_s)
