"""The one helper for tests that need a Debian package: skip naming the package, or fail under CI=true.

``make test`` (target ``system-packages``) apt-installs prometheus, nginx-light and wrk when it runs as root
and they are missing; elsewhere the tests that need them skip, except under ``CI=true`` where a missing
package fails the test so that CI always runs them.
"""

from __future__ import annotations

import os
import shutil

import pytest

# binary -> (Debian package, extra places Debian installs it that may be off PATH)
PACKAGES = {
    "prometheus": ("prometheus", ["/usr/bin/prometheus"]),
    "promtool": ("prometheus", ["/usr/bin/promtool"]),
    "nginx": ("nginx-light", ["/usr/sbin/nginx"]),
    "wrk": ("wrk", ["/usr/bin/wrk"]),
    "kubectl": ("kubernetes-client", ["/usr/bin/kubectl"]),
}


def require(binary: str) -> str:
    """The path of ``binary``; skips the test (fails it under ``CI=true``) when its package is missing."""
    package, candidates = PACKAGES[binary]
    found = shutil.which(binary) or next((c for c in candidates if os.access(c, os.X_OK)), None)
    if found:
        return found
    message = f"needs the Debian package {package!r} ({binary} not found): apt-get install -y {package}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " [CI=true: a missing system package is a failure]")
    pytest.skip(message)
