"""The traffic-backend interface of the canary analysis, and the two KServe implementations.

A backend routes traffic between a stable and a canary version and answers four calls, each returning
the :class:`~kfpkit.core.traffic.Traffic` after it:

* ``current()`` -- read the split (a retried task resumes from it);
* ``set_canary_percent(p)`` -- route ``p`` % to the canary;
* ``promote()`` -- the canary becomes the stable version with 100 %;
* ``rollback()`` -- all traffic back to the stable version.

Implementations: :class:`KServeServerlessBackend` (Knative revisions, ``canaryTrafficPercent``),
:class:`KServeStandardBackend` (``spec.canary[]`` weighted by the Gateway API) and
:class:`kfpkit.onebox.stack.LocalBackend` (nginx weighted upstreams on one machine).
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict

from kfpkit.components.deploy import isvc as isvc_api
from kfpkit.components.deploy.traffic import predictor_version, serverless_traffic, standard_traffic
from kfpkit.components.rollout.analysis import RolloutError
from kfpkit.core.traffic import Traffic


class TrafficBackend:
    """The interface (see the module docstring); ``NAME`` is the backend's name in the rollout record."""

    NAME: ClassVar[str] = ""

    def current(self) -> Traffic:
        """The split served now (a retried task resumes from it)."""
        raise NotImplementedError

    def set_canary_percent(self, percent: int) -> Traffic:
        """Routes ``percent`` % to the canary; returns the split once it is served."""
        raise NotImplementedError

    def promote(self) -> Traffic:
        """Makes the canary the stable version with 100 %; returns the split once it is served."""
        raise NotImplementedError

    def rollback(self) -> Traffic:
        """Sends all traffic back to the stable version; returns the split once it is served."""
        raise NotImplementedError


class _KServeBackend(TrafficBackend):
    def __init__(self, api: isvc_api.InferenceServiceApi, name: str, namespace: str, timeout_s: float = 600.0):
        self.api = api
        self.name = name
        self.namespace = namespace
        self.timeout_s = timeout_s

    def _get(self) -> Dict[str, Any]:
        """The InferenceService; a rollout whose ISVC went away cannot go on."""
        obj = self.api.get(self.name, self.namespace)
        if obj is None:
            raise RolloutError(f"InferenceService {self.namespace}/{self.name} no longer exists")
        return obj

    def _patch_and_wait(self, patch: Dict[str, Any], ready) -> Traffic:
        applied = self.api.patch(self.name, self.namespace, patch)
        self.api.wait(
            self.name, self.namespace, ready, self.timeout_s, generation=applied["metadata"].get("generation")
        )
        return self.current()


class KServeServerlessBackend(_KServeBackend):
    """Serverless mode: the latest Knative revision is the canary; ``canaryTrafficPercent`` splits.

    Promote removes ``canaryTrafficPercent`` with an explicit ``null`` in a JSON merge patch (the
    SDK's model-object patch cannot remove it); rollback sets it to 0.
    """

    NAME: ClassVar[str] = "kserve-serverless"

    def current(self) -> Traffic:
        """The split of ``status.components.predictor.traffic[]``.

        Raises:
            RolloutError: the InferenceService no longer exists.
        """
        obj = self._get()
        return serverless_traffic(obj)

    def set_canary_percent(self, percent: int) -> Traffic:
        """Sets ``canaryTrafficPercent`` and waits until the latest revision serves ``percent`` %."""
        return self._patch_and_wait(
            {"spec": {"predictor": {"canaryTrafficPercent": percent}}},
            lambda obj: isvc_api.serverless_split_ready(obj, percent),
        )

    def promote(self) -> Traffic:
        """Removes ``canaryTrafficPercent`` and records the canary as the stable version, at 100 %."""
        canary = self.current().canary
        annotations = {isvc_api.STABLE_VERSION_ANNOTATION: canary.version} if canary else {}
        return self._patch_and_wait(
            {"metadata": {"annotations": annotations}, "spec": {"predictor": {"canaryTrafficPercent": None}}},
            lambda obj: isvc_api.serverless_split_ready(obj, 100),
        )

    def rollback(self) -> Traffic:
        """Sets ``canaryTrafficPercent`` to 0 and waits until the previous revision serves everything."""
        return self._patch_and_wait(
            {"spec": {"predictor": {"canaryTrafficPercent": 0}}},
            lambda obj: isvc_api.serverless_split_ready(obj, 0),
        )


class KServeStandardBackend(_KServeBackend):
    """Standard (RawDeployment) mode: one ``spec.canary[]`` entry named after the canary version.

    Promote: ``predictor.name`` ← the canary (its whole predictor spec) and ``canary: []``; rollback:
    ``canary: []``.
    """

    NAME: ClassVar[str] = "kserve-standard"

    def current(self) -> Traffic:
        """The split of the predictor and its ``spec.canary[]`` entry.

        Raises:
            RolloutError: the InferenceService no longer exists.
        """
        return standard_traffic(self._get())

    def set_canary_percent(self, percent: int) -> Traffic:
        """Sets the canary entry's ``trafficPercent`` and waits until its status serves it.

        Raises:
            RolloutError: the InferenceService does not have exactly one canary.
        """
        obj = self._get()
        canaries = list(obj["spec"].get("canary") or [])
        if len(canaries) != 1:
            raise RolloutError(f"{self.namespace}/{self.name} has {len(canaries)} canaries; expected exactly one")
        canaries[0] = dict(canaries[0], trafficPercent=percent)
        name = canaries[0]["predictor"]["name"]
        return self._patch_and_wait(
            {"spec": {"canary": canaries}}, lambda o: isvc_api.standard_canary_ready(o, name, percent)
        )

    def promote(self) -> Traffic:
        """The canary's predictor spec becomes the predictor, ``canary: []``, and the stable version is recorded.

        Raises:
            RolloutError: the InferenceService does not have exactly one canary.
        """
        obj = self._get()
        canaries = obj["spec"].get("canary") or []
        if len(canaries) != 1:
            raise RolloutError(f"{self.namespace}/{self.name} has {len(canaries)} canaries; expected exactly one")
        predictor = canaries[0]["predictor"]
        patch = {
            "metadata": {"annotations": {isvc_api.STABLE_VERSION_ANNOTATION: predictor_version(predictor)}},
            "spec": {"predictor": predictor, "canary": []},
        }
        return self._patch_and_wait(patch, isvc_api.standard_no_canary_ready)

    def rollback(self) -> Traffic:
        """Removes the canary entry (``canary: []``) and waits until no canary is left."""
        return self._patch_and_wait({"spec": {"canary": []}}, isvc_api.standard_no_canary_ready)
