"""Vertex AI's custom-container contract for ``kfpkit serve`` (used only when Vertex's variables are set).

Vertex AI runs a custom container with ``AIP_HTTP_PORT`` (the port to listen on), ``AIP_PREDICT_ROUTE``
(where it POSTs ``{"instances": [...], "parameters": {...}}`` and expects ``{"predictions": [...]}``) and
``AIP_HEALTH_ROUTE`` (where it GETs the health: 200 only once the model can serve). kfpkit's v1 predict
already has Vertex's request and response shape, so :class:`VertexRoutes` only maps the two routes, in front
of everything else (the fast path included):

* ``POST <AIP_PREDICT_ROUTE>`` → ``POST /v1/models/<model>:predict``;
* ``GET <AIP_HEALTH_ROUTE>`` → ``GET /v2/models/<model>/ready`` (200 when the model is loaded, else 503).

Every other path is passed through unchanged. :func:`vertex_settings` reads the variables; without them
``kfpkit serve`` adds nothing (no wrapper, the same app as before).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

AIP_HTTP_PORT = "AIP_HTTP_PORT"
AIP_PREDICT_ROUTE = "AIP_PREDICT_ROUTE"
AIP_HEALTH_ROUTE = "AIP_HEALTH_ROUTE"


@dataclasses.dataclass(frozen=True)
class VertexSettings:
    """Vertex AI's variables, as read from the environment of ``kfpkit serve``.

    Attributes:
        http_port: ``AIP_HTTP_PORT`` (``None``: not set).
        predict_route: ``AIP_PREDICT_ROUTE`` (empty: not set).
        health_route: ``AIP_HEALTH_ROUTE`` (empty: not set).
    """

    http_port: Optional[int] = None
    predict_route: str = ""
    health_route: str = ""


def vertex_settings(environ: Mapping[str, str]) -> Optional[VertexSettings]:
    """Vertex AI's variables from ``environ``, or ``None`` when none of them is set.

    Raises:
        ValueError: ``AIP_HTTP_PORT`` is not a port number, or a route does not start with ``/``.
    """
    port, predict, health = (environ.get(k, "") for k in (AIP_HTTP_PORT, AIP_PREDICT_ROUTE, AIP_HEALTH_ROUTE))
    if not (port or predict or health):
        return None
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{AIP_HTTP_PORT}={port!r} is not a port number")
    for name, route in ((AIP_PREDICT_ROUTE, predict), (AIP_HEALTH_ROUTE, health)):
        if route and not route.startswith("/"):
            raise ValueError(f"{name}={route!r} must be a path starting with '/'")
    return VertexSettings(int(port) if port else None, predict, health)


class VertexRoutes:
    """ASGI middleware mapping Vertex's predict and health routes onto kfpkit's (see the module docstring).

    Args:
        app: The ASGI app behind (the fast path, or KServe's app).
        model_name: The served model.
        predict_route: ``AIP_PREDICT_ROUTE`` (empty: not mapped).
        health_route: ``AIP_HEALTH_ROUTE`` (empty: not mapped).
    """

    def __init__(self, app: Any, model_name: str, predict_route: str = "", health_route: str = ""):
        self.app = app
        self.predict_route = predict_route
        self.health_route = health_route
        self.predict_path = f"/v1/models/{model_name}:predict"
        self.ready_path = f"/v2/models/{model_name}/ready"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Rewrites the path of a request to one of Vertex's routes, then hands it on."""
        if scope["type"] == "http":
            path, method = scope["path"], scope.get("method", "")
            target = ""
            if self.predict_route and path == self.predict_route and method == "POST":
                target = self.predict_path
            elif self.health_route and path == self.health_route and method in ("GET", "HEAD"):
                target = self.ready_path
            if target:
                scope = dict(scope, path=target, raw_path=target.encode())
        await self.app(scope, receive, send)
