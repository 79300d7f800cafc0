"""The traffic split between a stable and a canary version: what a traffic backend routes now.

deploy reads it from an InferenceService's spec and status (:mod:`kfpkit.components.deploy.traffic`), the
traffic backends of the canary analysis (:mod:`kfpkit.components.rollout.backends`, the local stack's
nginx backend) return it after every change, and the analysis measures each :class:`Side` by its version
and revision. Plain values, in process: the rollout record (:mod:`kfpkit.core.rollout_record`) is what
crosses a process.
"""

from __future__ import annotations

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Side:
    """One version behind the traffic split, as the query placeholders name it.

    Attributes:
        version: The registry version it serves (the ``kfpkit.dev/model-version`` label).
        revision: The Knative revision (Serverless) or the predictor's name (Standard); empty where the
            backend has none (the local stack).
    """

    version: str
    revision: str = ""


@dataclasses.dataclass
class Traffic:
    """What a backend routes now: the canary's share in percent (0 when there is no canary).

    Attributes:
        namespace: Namespace of the InferenceService (or the local stack's).
        isvc: Name of the InferenceService.
        stable: The stable version.
        canary: The canary version; ``None`` without one.
        canary_percent: The canary's share of the traffic in percent.
        url: The service URL; empty when unknown.
    """

    namespace: str
    isvc: str
    stable: Side
    canary: Optional[Side]
    canary_percent: int
    url: str = ""
