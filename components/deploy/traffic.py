"""The traffic split of an InferenceService, read from its spec and status (kfp-free).

deploy reports the split it left; the rollout's KServe backends (:mod:`kfpkit.components.rollout.backends`)
read it before and after every change. Both get a :class:`kfpkit.core.traffic.Traffic`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from kfpkit.components.deploy import isvc as isvc_api
from kfpkit.core.traffic import Side, Traffic


def serverless_traffic(obj: Dict[str, Any]) -> Traffic:
    """The split of a Serverless ISVC from ``status.components.predictor.traffic[]`` and its spec."""
    meta, spec = obj["metadata"], obj.get("spec", {})
    predictor = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
    traffic = predictor.get("traffic") or []
    latest = next((t for t in traffic if t.get("latestRevision")), None)
    # the previous revision is listed (tag "prev") while canaryTrafficPercent is set, at 0 % too: at a step of
    # 100 % the latest revision is still the canary, not yet promoted
    previous = next((t for t in traffic if not t.get("latestRevision")), None)
    labels = spec.get("predictor", {}).get("labels") or {}
    version = labels.get(isvc_api.VERSION_LABEL, "")
    percent_spec = spec.get("predictor", {}).get("canaryTrafficPercent")
    if previous is None or latest is None or percent_spec is None:
        stable_rev = (latest or {}).get("revisionName", predictor.get("latestReadyRevision", ""))
        stable = Side(version=version, revision=stable_rev)
        return Traffic(meta["namespace"], meta["name"], stable, None, 0, url=obj.get("status", {}).get("url", ""))
    annotations = meta.get("annotations") or {}
    stable_version = annotations.get(isvc_api.STABLE_VERSION_ANNOTATION, "")
    return Traffic(
        namespace=meta["namespace"],
        isvc=meta["name"],
        stable=Side(version=stable_version, revision=previous.get("revisionName", "")),
        canary=Side(version=version, revision=latest.get("revisionName", "")),
        canary_percent=int(latest.get("percent") or 0),
        url=(obj.get("status") or {}).get("url", ""),
    )


def predictor_version(predictor: Dict[str, Any]) -> str:
    """The version a predictor spec serves: its ``kfpkit.dev/model-version`` label, else its name."""
    return (predictor.get("labels") or {}).get(isvc_api.VERSION_LABEL, predictor.get("name", ""))


def standard_traffic(obj: Dict[str, Any]) -> Traffic:
    """The split of a Standard-mode ISVC from ``spec.canary[]`` and ``status.canaryStatuses[]``."""
    meta, spec = obj["metadata"], obj["spec"]
    status = obj.get("status") or {}
    stable = Side(version=predictor_version(spec["predictor"]), revision=spec["predictor"].get("name", ""))
    canaries = spec.get("canary") or []
    canary: Optional[Side] = None
    percent = 0
    if canaries:
        entry = canaries[0]
        canary = Side(version=predictor_version(entry["predictor"]), revision=entry["predictor"].get("name", ""))
        reported = next((c for c in status.get("canaryStatuses") or [] if c["name"] == canary.revision), None)
        percent = int((reported or entry).get("trafficPercent") or 0)
    return Traffic(meta["namespace"], meta["name"], stable, canary, percent, url=status.get("url", ""))
