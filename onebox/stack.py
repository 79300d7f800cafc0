"""The local traffic backend and its processes: nginx, Prometheus and ``kfpkit serve`` on loopback ports.

* :class:`Nginx` -- the real nginx (Debian's ``nginx-light``) with a weighted upstream over the stable and
  canary predictors, reloaded for each step (the ingress-nginx canary idea). Its folder keeps the split in
  ``traffic.json`` and nginx's pid file, so a rollout restarted with the same folder adopts the running
  nginx and continues from its split.
* :class:`LocalBackend` -- :class:`~kfpkit.components.rollout.backends.TrafficBackend` over :class:`Nginx`.
* :class:`PrometheusServer` -- Debian's ``prometheus`` with a generated config scraping each predictor as
  its own target, labelled ``namespace``, ``isvc`` and ``model_version``.
* :class:`Predictor` -- one ``kfpkit serve`` process.

Every process binds 127.0.0.1 only and is stopped by whoever started it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Sequence

import yaml

from kfpkit.components.rollout.backends import TrafficBackend
from kfpkit.core.publish import publish_json
from kfpkit.core.traffic import Side, Traffic

LOCAL_NAMESPACE = "local"


class LocalProcessError(RuntimeError):
    """A local process (nginx, Prometheus, kfpkit serve) failed to start or answer."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_binary(name: str, candidates: Sequence[str] = ()) -> Optional[str]:
    """``name`` on PATH or one of ``candidates`` (Debian installs nginx in /usr/sbin)."""
    found = shutil.which(name)
    if found:
        return found
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def terminate(process: Optional[subprocess.Popen], grace_s: float = 15.0) -> None:
    """SIGTERM ``process`` (if it still runs), SIGKILL after ``grace_s``, and reap it."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until(check, timeout_s: float, what: str, process: Optional[subprocess.Popen] = None) -> None:
    """Polls ``check()`` (True when ready) until ``timeout_s``; fails early when ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise LocalProcessError(f"{what} exited with status {process.returncode}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.05)
    raise LocalProcessError(f"{what} not ready after {timeout_s:.0f}s")


# ----------------------------------------------------------------------------------------------- nginx
NGINX_CONF = """\
worker_processes 1;
daemon on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    client_body_buffer_size 1m;
    client_max_body_size 8m;
    upstream kfpkit_predictors {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /kfpkit/traffic {{
            default_type application/json;
            return 200 '{traffic}';
        }}
        location / {{
            proxy_pass http://kfpkit_predictors;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream off;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


class Nginx:
    """nginx splitting traffic between two upstreams by weight, configured in ``directory``.

    Args:
        directory: Folder for the config, pid file, logs and ``traffic.json``.
        stable: ``host:port`` of the stable predictor.
        canary: ``host:port`` of the canary predictor.
        port: Listen port (default: the one in ``traffic.json``, else a free one).
        binary: The nginx executable (default: ``nginx`` on PATH or ``/usr/sbin/nginx``).
    """

    def __init__(self, directory: str, stable: str, canary: str, port: int = 0, binary: str = ""):
        self.directory = os.path.abspath(directory)
        os.makedirs(os.path.join(self.directory, "tmp"), exist_ok=True)
        self.binary = binary or find_binary("nginx", ["/usr/sbin/nginx"]) or ""
        if not self.binary:
            raise LocalProcessError("nginx not found: install Debian's nginx-light (apt-get install -y nginx-light)")
        self.stable, self.canary = stable, canary
        state = self.state()
        self.port = port or int(state.get("port") or 0) or free_port()
        self.generation = int(state.get("generation") or 0)
        self.started_here = False

    @property
    def conf(self) -> str:
        """Path of the nginx config in the folder."""
        return os.path.join(self.directory, "nginx.conf")

    @property
    def url(self) -> str:
        """Base URL of the weighted upstream (what clients send their requests to)."""
        return f"http://127.0.0.1:{self.port}"

    def state(self) -> Dict[str, Any]:
        """The saved ``traffic.json`` (port, split, generation, upstreams), or ``{}`` before the first apply."""
        path = os.path.join(self.directory, "traffic.json")
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)

    def pid(self) -> Optional[int]:
        """The pid of the nginx master running from this folder, or ``None`` when none is alive."""
        try:
            with open(os.path.join(self.directory, "nginx.pid"), encoding="utf-8") as fh:
                pid = int(fh.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        """Whether the nginx master of this folder is alive."""
        return self.pid() is not None

    def canary_percent(self) -> int:
        """The split nginx serves now (its ``/kfpkit/traffic`` answer), else the saved state."""
        if self.running():
            try:
                return int(json.loads(_get(self.url + "/kfpkit/traffic"))["canary_percent"])
            except (OSError, ValueError, KeyError):
                pass
        return int(self.state().get("canary_percent") or 0)

    def apply(self, canary_percent: int, timeout_s: float = 15.0) -> None:
        """Writes the config for ``canary_percent``, starts or reloads nginx, and waits until it serves it."""
        if not 0 <= canary_percent <= 100:
            raise ValueError(f"canary percent must be within 0..100, got {canary_percent}")
        self.generation += 1
        servers = []
        if canary_percent < 100:
            servers.append(f"        server {self.stable} weight={100 - canary_percent} max_fails=0;")
        if canary_percent > 0:
            servers.append(f"        server {self.canary} weight={canary_percent} max_fails=0;")
        traffic = {"canary_percent": canary_percent, "generation": self.generation}
        text = NGINX_CONF.format(
            dir=self.directory, servers="\n".join(servers), port=self.port, traffic=json.dumps(traffic)
        )
        with open(self.conf + ".new", "w", encoding="utf-8") as fh:
            fh.write(text)
        test = subprocess.run(
            [self.binary, "-t", "-q", "-p", self.directory, "-c", self.conf + ".new"],
            capture_output=True,
            text=True,
            check=False,
        )
        if test.returncode != 0:
            raise LocalProcessError(f"nginx refused its config: {test.stderr.strip()}")
        os.replace(self.conf + ".new", self.conf)
        old_workers = self._workers()
        if self.running():
            subprocess.run(
                [self.binary, "-p", self.directory, "-c", self.conf, "-s", "reload"], check=True, capture_output=True
            )
        else:
            started = subprocess.run(
                [self.binary, "-p", self.directory, "-c", self.conf], capture_output=True, text=True, check=False
            )
            if started.returncode != 0:
                raise LocalProcessError(f"nginx did not start: {started.stderr.strip()}")
            self.started_here = True

        def serves_it() -> bool:
            # an old worker keeps accepting until it handles the reload's QUIT: wait until each one has
            # closed its listening socket (it then calls itself "shutting down") or exited
            if any(self._accepting(pid) for pid in old_workers):
                return False
            return json.loads(_get(self.url + "/kfpkit/traffic")).get("generation") == self.generation

        wait_until(serves_it, timeout_s, f"nginx on port {self.port}")
        publish_json(
            os.path.join(self.directory, "traffic.json"),
            {
                "port": self.port,
                "canary_percent": canary_percent,
                "generation": self.generation,
                "stable": self.stable,
                "canary": self.canary,
            },
        )

    def _workers(self) -> List[int]:
        """Worker pids of the running master (empty when it is not running or /proc is unavailable)."""
        master = self.pid()
        if master is None or not os.path.isdir("/proc"):
            return []
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                        if int(fh.read().rsplit(")", 1)[1].split()[1]) == master:
                            out.append(int(entry))
                except (OSError, ValueError, IndexError):
                    continue
        return out

    @staticmethod
    def _accepting(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                title = fh.read()
        except OSError:
            return False
        return b"worker process" in title and b"shutting down" not in title

    def stop(self) -> None:
        """Stops nginx (graceful quit, then waits for the master to exit)."""
        pid = self.pid()
        if pid is None:
            return
        subprocess.run(
            [self.binary, "-p", self.directory, "-c", self.conf, "-s", "quit"], capture_output=True, check=False
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.05)
        if self.pid() is not None:
            os.kill(pid, signal.SIGTERM)


class LocalBackend(TrafficBackend):
    """Traffic backend over :class:`Nginx`; versions are the ``model_version`` target labels."""

    NAME = "local"

    def __init__(self, nginx: Nginx, isvc: str, stable_version: str, canary_version: str):
        self.nginx = nginx
        self.isvc = isvc
        self.stable = Side(version=stable_version)
        self.canary = Side(version=canary_version)
        self.promoted = False

    def _traffic(self, percent: int) -> Traffic:
        canary = None if self.promoted else self.canary
        stable = self.canary if self.promoted else self.stable
        return Traffic(LOCAL_NAMESPACE, self.isvc, stable, canary, percent, url=self.nginx.url)

    def current(self) -> Traffic:
        """The split nginx serves now."""
        return self._traffic(self.nginx.canary_percent())

    def set_canary_percent(self, percent: int) -> Traffic:
        """Sends ``percent`` of the requests to the canary, once nginx serves that split."""
        self.nginx.apply(percent)
        return self._traffic(percent)

    def promote(self) -> Traffic:
        """Sends every request to the canary, which becomes the stable version of later reports."""
        self.nginx.apply(100)
        traffic = self._traffic(100)
        self.promoted = True
        return traffic

    def rollback(self) -> Traffic:
        """Sends every request back to the stable version."""
        self.nginx.apply(0)
        return self._traffic(0)


# ------------------------------------------------------------------------------------------ prometheus
class PrometheusServer:
    """Debian's Prometheus on a loopback port, scraping ``targets`` every ``scrape_interval_s``.

    Args:
        directory: Folder for the config and the TSDB.
        targets: ``[{"address": "127.0.0.1:8081", "labels": {"namespace": ..., "isvc": ..., "model_version": ...}}]``.
        scrape_interval_s: Scrape (and evaluation) interval.
    """

    def __init__(self, directory: str, targets: List[Dict[str, Any]], scrape_interval_s: float = 1.0, port: int = 0):
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.binary = find_binary("prometheus", ["/usr/bin/prometheus"]) or ""
        if not self.binary:
            raise LocalProcessError("prometheus not found: install Debian's prometheus (apt-get install -y prometheus)")
        self.port = port or free_port()
        self.targets = targets
        self.scrape_interval_s = scrape_interval_s
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        """Base URL of Prometheus's HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> Dict[str, Any]:
        """The ``prometheus.yml`` document: one job scraping each target with its labels."""
        interval = f"{int(self.scrape_interval_s * 1000)}ms"
        return {
            "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
            "scrape_configs": [
                {
                    "job_name": "kfpkit",
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": [t["address"]], "labels": dict(t["labels"])} for t in self.targets],
                }
            ],
        }

    def start(self, timeout_s: float = 60.0) -> PrometheusServer:
        """Writes the config, starts Prometheus and waits until it is ready.

        Raises:
            LocalProcessError: it exited or was not ready within ``timeout_s``.
        """
        path = os.path.join(self.directory, "prometheus.yml")
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(self.config(), fh, sort_keys=False)
        log = open(os.path.join(self.directory, "prometheus.log"), "ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={os.path.join(self.directory, 'data')}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(lambda: _get(self.url + "/-/ready") is not None, timeout_s, "prometheus", self.process)
        return self

    def wait_scraped(self, targets: int, timeout_s: float = 30.0) -> None:
        """Waits until ``targets`` targets were scraped successfully at least twice (``increase`` needs two)."""

        def scraped() -> bool:
            query = urllib.parse.urlencode({"query": "count(count_over_time(up[1m]) >= 2 and up == 1)"})
            result = json.loads(_get(f"{self.url}/api/v1/query?{query}"))["data"]["result"]
            return bool(result) and int(float(result[0]["value"][1])) >= targets

        wait_until(scraped, timeout_s, f"prometheus scraping {targets} targets", self.process)

    def stop(self) -> None:
        """Terminates Prometheus (a no-op when it is not running)."""
        terminate(self.process)
        self.process = None


# ------------------------------------------------------------------------------------------- predictors
class Predictor:
    """One ``kfpkit serve`` process on 127.0.0.1.

    Args:
        model_dir: Model version directory or registry URI.
        model_name: The served model name (the ISVC name).
        port: HTTP port (default: a free one).
        log_path: Where its output goes (default: a temporary file).
    """

    def __init__(
        self, model_dir: str, model_name: str, port: int = 0, log_path: str = "", extra_args: Sequence[str] = ()
    ):
        self.model_dir = model_dir
        self.model_name = model_name
        self.port = port or free_port()
        self.log_path = log_path or tempfile.mkstemp(prefix="kfpkit-serve-", suffix=".log")[1]
        self.extra_args = list(extra_args)
        self.process: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, the scrape and upstream address."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Predictor:
        """Starts the ``kfpkit serve`` process (HTTP only) without waiting for it; see :meth:`wait_ready`."""
        command = [
            sys.executable, "-m", "kfpkit.cli.main", "serve",
            "--model-dir", self.model_dir, "--model-name", self.model_name,
            "--http-port", str(self.port), "--host", "127.0.0.1", "--enable_grpc", "false",
            *self.extra_args,
        ]  # fmt: skip
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def wait_ready(self, timeout_s: float = 120.0) -> Predictor:
        """Waits until the model answers its v1 metadata route.

        Raises:
            LocalProcessError: the process exited or the model was not ready within ``timeout_s``.
        """
        url = f"http://{self.address}/v1/models/{self.model_name}"
        wait_until(lambda: _get(url) is not None, timeout_s, f"kfpkit serve {self.model_dir}", self.process)
        return self

    def stop(self) -> None:
        """Terminates the ``kfpkit serve`` process (a no-op when it is not running)."""
        terminate(self.process)
        self.process = None
