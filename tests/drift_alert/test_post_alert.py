"""drift_alert's webhook POST against a loopback server: which answers are retried, and what reaches it."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Iterator, List

import pytest

from kfpkit.components.drift_alert import logic


class _Webhook(http.server.BaseHTTPRequestHandler):
    statuses: List[int] = []
    bodies: List[dict] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch) -> Iterator[type]:
    handler = type("Webhook", (_Webhook,), {"statuses": [], "bodies": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(logic.time, "sleep", lambda _s: None)  # the doubling pauses are not under test
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield handler
    server.shutdown()
    server.server_close()


def test_a_5xx_and_a_429_are_retried_until_the_webhook_accepts(webhook):
    webhook.statuses = [503, 429, 200]
    body = logic.alert_body("gs://r/m/3", ["amount"], "gs://r/report.html", "run-1")

    assert logic.post_alert(webhook.url, body, attempts=3) == 200
    assert len(webhook.bodies) == 3 and webhook.bodies[-1]["drifted_features"] == ["amount"]
    assert webhook.bodies[-1]["event"] == "kfpkit.drift_detected"


def test_another_4xx_is_not_retried_and_fails_the_alert(webhook):
    webhook.statuses = [404, 200]

    with pytest.raises(logic.AlertError, match="HTTP 404"):
        logic.post_alert(webhook.url, logic.alert_body("m", [], None, None), attempts=3)
    assert len(webhook.bodies) == 1


def test_a_webhook_that_keeps_failing_fails_the_alert_after_every_attempt(webhook):
    webhook.statuses = [500, 500, 500]

    with pytest.raises(logic.AlertError, match="HTTP 500"):
        logic.post_alert(webhook.url, logic.alert_body("m", [], None, None), attempts=3)
    assert len(webhook.bodies) == 3


def test_the_alert_names_the_check_that_triggered_the_retrain():
    assert logic.alert_body("m", [], None, None)["triggered_by"] == ["drift"]
    performance = logic.alert_body("m", [], None, None, triggered_by=["performance"])
    assert performance["event"] == logic.PERFORMANCE_EVENT and performance["triggered_by"] == ["performance"]
    both = logic.alert_body("m", ["amount"], None, None, triggered_by=["drift", "performance"])
    assert both["event"] == logic.DRIFT_EVENT and both["triggered_by"] == ["drift", "performance"]
