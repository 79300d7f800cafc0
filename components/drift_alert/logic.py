"""The drift alert: one JSON POST to a webhook (Slack/Teams/PagerDuty relays, Alertmanager receivers, ...).

Body::

    {"event": "kfpkit.drift_detected", "model_uri": ..., "drifted_features": [...], "report_uri": ...,
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
from typing import Any, Dict, List, Optional


class AlertError(RuntimeError):
    """The webhook could not be reached or kept refusing the alert."""


def alert_body(
    model_uri: str, drifted_features: List[str], report_uri: Optional[str], pipeline_run: Optional[str]
) -> Dict[str, Any]:
    """The alert's JSON body (see the module docstring), stamped with the current UTC time."""
    return {
        "event": "kfpkit.drift_detected",
        "model_uri": model_uri,
        "drifted_features": list(drifted_features),
        "report_uri": report_uri,
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
