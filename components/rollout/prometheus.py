"""A minimal client of Prometheus's HTTP query API (``/api/v1/query``) for the canary analysis."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, List, Optional, Tuple


class PrometheusUnavailable(RuntimeError):
    """Prometheus could not be reached or answered with an error; the analysis counts it as inconclusive."""


class PrometheusClient:
    """Instant queries against one Prometheus server.

    Args:
        url: Base URL, e.g. ``http://prometheus.monitoring:9090``.
        timeout_s: Per-request timeout.
    """

    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def query(self, expr: str, at: Optional[float] = None) -> List[Tuple[Dict[str, str], float]]:
        """Evaluates ``expr`` (at unix time ``at``, default now); returns ``[(labels, value)]`` of a vector.

        A scalar result is returned as one sample without labels.

        Raises:
            PrometheusUnavailable: connection error, timeout, an HTTP error or ``status != success``.
        """
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=data, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise PrometheusUnavailable(f"{self.url}: HTTP {exc.code}: {detail}") from exc
        except (OSError, ValueError) as exc:
            raise PrometheusUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusUnavailable(f"{self.url}: {body.get('errorType')}: {body.get('error')}")
        result = body["data"]
        if result["resultType"] == "scalar":
            return [({}, float(result["result"][1]))]
        if result["resultType"] != "vector":
            raise PrometheusUnavailable(f"{expr!r} returned a {result['resultType']}, expected an instant vector")
        return [(sample["metric"], float(sample["value"][1])) for sample in result["result"]]

    def scalar(self, expr: str, at: Optional[float] = None) -> Optional[float]:
        """The single value of ``expr``, or ``None`` when it has no sample or is NaN (no data)."""
        samples = self.query(expr, at)
        if not samples:
            return None
        value = samples[0][1]
        return None if math.isnan(value) else value
