"""The drift alert: one JSON POST to a webhook (Slack/Teams/PagerDuty relays, Alertmanager receivers, ...).

When the monitoring pipeline retrains, the event names the check that triggered it (drift first)::

    {"event": "kfpkit.drift_detected" | "kfpkit.performance_degraded", "model_uri": ...,
     "triggered_by": ["drift", "performance"], "drifted_features": [...], "report_uri": ...,
     "pipeline_run": ..., "sent_at": ISO-8601}

When a canary was decided (the continuous-training pipeline, also when the monitoring pipeline retrains
through it), ``event`` says which and ``rollout`` says why::

    {"event": "kfpkit.canary_promoted" | "kfpkit.canary_rolled_back", "model_uri": <the canary's version>,
     "rollout": {"decision", "reason", "namespace", "isvc", "stable_version", "canary_version",
                 "intervals_to_decision", "final_traffic", "record_uri"},
     "pipeline_run": ..., "sent_at": ISO-8601}

Only the standard library is used. A network error, a 5xx or a 429 answer is retried (``attempts`` times, with
doubling pauses) and then raised; another 4xx answer (a wrong URL or token: retrying cannot help) is raised at
once. Either way the alert task fails visibly rather than dropping the alert.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, List, Optional

if TYPE_CHECKING:
    from kfpkit.core.rollout_record import RolloutRecord

DRIFT_EVENT = "kfpkit.drift_detected"
PERFORMANCE_EVENT = "kfpkit.performance_degraded"
PROMOTED_EVENT = "kfpkit.canary_promoted"
ROLLED_BACK_EVENT = "kfpkit.canary_rolled_back"


class AlertError(RuntimeError):
    """The webhook could not be reached or kept refusing the alert."""


def alert_body(
    model_uri: str,
    drifted_features: List[str],
    report_uri: Optional[str],
    pipeline_run: Optional[str],
    triggered_by: Optional[List[str]] = None,
) -> Dict[str, Any]:
    """The alert's JSON body (see the module docstring), stamped with the current UTC time.

    ``triggered_by`` (the monitoring pipeline's retrain_decision; unset: drift) names the checks that
    triggered the retrain; the event is ``kfpkit.drift_detected`` when drift is one of them, else
    ``kfpkit.performance_degraded``.
    """
    triggered = list(triggered_by) if triggered_by else ["drift"]
    return {
        "event": DRIFT_EVENT if "drift" in triggered else PERFORMANCE_EVENT,
        "model_uri": model_uri,
        "triggered_by": triggered,
        "drifted_features": list(drifted_features),
        "report_uri": report_uri,
        "pipeline_run": pipeline_run,
        "sent_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def rollout_alert_body(
    model_uri: str, record: RolloutRecord, record_uri: Optional[str], pipeline_run: Optional[str]
) -> Dict[str, Any]:
    """The alert's JSON body when a canary was decided: promoted or rolled back, and why (module docstring).

    Raises:
        ValueError: the rollout record has no decision yet.
    """
    from kfpkit.core.rollout_record import PROMOTE, ROLLBACK

    events = {PROMOTE: PROMOTED_EVENT, ROLLBACK: ROLLED_BACK_EVENT}
    if record.decision not in events:
        raise ValueError(
            f"rollout record of {record.namespace}/{record.isvc} has no decision (decision={record.decision!r})"
        )
    return {
        "event": events[record.decision],
        "model_uri": model_uri,
        "rollout": {
            "decision": record.decision,
            "reason": record.reason,
            "namespace": record.namespace,
            "isvc": record.isvc,
            "stable_version": record.stable_version,
            "canary_version": record.canary_version,
            "intervals_to_decision": record.intervals_to_decision,
            "final_traffic": dict(record.final_traffic),
            "record_uri": record_uri,
        },
        "pipeline_run": pipeline_run,
        "sent_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def post_alert(url: str, body: Dict[str, Any], attempts: int = 3, timeout_s: float = 10.0) -> int:
    """POSTs ``body`` as JSON to ``url``; returns the HTTP status.

    Raises:
        AlertError: every attempt failed (the message has the last status or error).
    """
    data = json.dumps(body).encode("utf-8")
    last = ""
    for attempt in range(attempts):
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if attempt + 1 < attempts:
            time.sleep(0.5 * 2**attempt)
    raise AlertError(f"alert webhook {url} failed: {last}")
