"""Model servers as child processes on 127.0.0.1: started in their own process group, always stopped.

:class:`ServerProcess` runs a command (optionally pinned to one CPU with ``taskset``) with its output in a
log file, waits until a readiness URL answers 200, and :meth:`ServerProcess.stop` ends the whole process
group (SIGTERM, then SIGKILL) -- MLServer's inference workers included. Use it as a context manager, or
:class:`ServerGroup` for several.

Command builders: :func:`kfpkit_command`, :func:`kserve_sklearn_command`, :func:`mlserver_command` (which
also writes MLServer's ``settings.json`` / ``model-settings.json`` from the templates in
``mlserver_settings/``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import httpx

from benchmarks import subprocess_env
from benchmarks.serving.loadgen import pin_prefix

SETTINGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mlserver_settings")
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A server that exited or did not become ready in time (the message holds its log tail)."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One server process.

    Args:
        label: Name used in messages and tables.
        command: argv of the server.
        port: Its HTTP port on 127.0.0.1.
        ready_path: Path that answers 200 once the model is loaded (e.g. ``/v2/models/m/ready``).
        log_path: File that receives the server's stdout and stderr.
        cpu: Pin the server (and its children) to this CPU with ``taskset``; ``None``: no pinning.
        env: Extra environment variables.
    """

    def __init__(
        self,
        label: str,
        command: Sequence[str],
        port: int,
        ready_path: str,
        log_path: str,
        cpu: Optional[int] = None,
        env: Optional[Dict[str, str]] = None,
    ):
        self.label = label
        self.command = [*pin_prefix(cpu), *command]
        self.port = port
        self.ready_path = ready_path
        self.log_path = log_path
        self.env = env or {}
        self.process: Optional[subprocess.Popen] = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> ServerProcess:
        env = subprocess_env(self.env)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )  # fmt: skip
        return self

    def log_tail(self, chars: int = 3000) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Polls the readiness URL until 200.

        Raises:
            ServerError: the process exited, or it was not ready within ``timeout_s``.
        """
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        url = self.base_url + self.ready_path
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerError(f"{self.label} exited with status {code}:\n{self.log_tail()}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"{self.label} not ready within {timeout_s:.0f} s at {url}:\n{self.log_tail()}")
            time.sleep(0.25)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by the server and its child processes (0 once gone)."""
        import psutil

        if self.process is None:
            return 0.0
        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def stop(self, grace_s: float = 10.0) -> None:
        """Ends the server's process group: SIGTERM, then SIGKILL after ``grace_s``. Idempotent."""
        process = self.process
        if process is None:
            return
        try:
            pgid = os.getpgid(process.pid)
        except ProcessLookupError:
            pgid = None
        if pgid is not None and process.poll() is None:
            _signal_group(pgid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        if pgid is not None:
            _signal_group(pgid, signal.SIGKILL)  # stragglers of the group (worker processes), if any
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace_s)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class ServerGroup:
    """Several :class:`ServerProcess` started together and all stopped on exit, whatever happened."""

    def __init__(self, servers: Sequence[ServerProcess]):
        self.servers = list(servers)

    def __enter__(self) -> ServerGroup:
        try:
            for server in self.servers:
                server.start()
            for server in self.servers:
                server.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------- commands
def kfpkit_command(model_dir: str, model_name: str, port: int, python: str = sys.executable) -> List[str]:
    """``kfpkit serve`` with its defaults (fast path on, one inference thread), gRPC off, on 127.0.0.1."""
    return [
        python, "-m", "kfpkit.cli.serve", "--model-dir", model_dir, "--model-name", model_name,
        "--http-port", str(port), "--host", HOST, "--enable_grpc", "false",
    ]  # fmt: skip


def kserve_sklearn_command(
    joblib_dir: str, model_name: str, port: int, python: str = sys.executable, quiet: bool = False
) -> List[str]:
    """The KServe sklearnserver-equivalent (run it with ``PREDICT_PROBA=true``); ``quiet`` turns off
    KServe's logging setup and latency logging (not sklearnserver's defaults)."""
    command = [
        python, "-m", "benchmarks.serving.kserve_sklearn_server", "--model_dir", joblib_dir,
        "--model_name", model_name, "--http_port", str(port), "--host", HOST, "--enable_grpc", "false",
    ]  # fmt: skip
    if quiet:
        command += ["--configure_logging", "false", "--enable_latency_logging", "false"]
    return command


def write_mlserver_settings(
    directory: str,
    joblib_path: str,
    model_name: str,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    parallel_workers: Optional[int] = None,
    debug: Optional[bool] = None,
) -> str:
    """Writes an MLServer model repository (settings, model settings, the joblib file) into ``directory``.

    ``parallel_workers``/``debug`` override the templates' values (MLServer's defaults: 1 and true).
    """
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(SETTINGS_DIR, "settings.json"), encoding="utf-8") as fh:
        settings = json.load(fh)
    settings.update({"host": HOST, "http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port})
    if parallel_workers is not None:
        settings["parallel_workers"] = parallel_workers
    if debug is not None:
        settings["debug"] = debug
    settings["metrics_dir"] = os.path.join(directory, ".metrics")
    with open(os.path.join(SETTINGS_DIR, "model-settings.json"), encoding="utf-8") as fh:
        model_settings = json.load(fh)
    model_settings["name"] = model_name
    shutil.copyfile(joblib_path, os.path.join(directory, "model.joblib"))
    with open(os.path.join(directory, "settings.json"), "w", encoding="utf-8") as fh:
        json.dump(settings, fh, indent=2)
    with open(os.path.join(directory, "model-settings.json"), "w", encoding="utf-8") as fh:
        json.dump(model_settings, fh, indent=2)
    return directory


def mlserver_command(mlserver_bin: str, repository_dir: str) -> List[str]:
    """``mlserver start <repository>`` (the settings files in the repository set host and ports)."""
    return [mlserver_bin, "start", repository_dir]
