"""A private Docker engine for this machine when none answers: ``make docker-engine`` runs this.

    python -m images.engine start         # prints, as its last line, the `export DOCKER_HOST=...` to use
    python -m images.engine stop          # stops the engine that `start` started (only that one)
    python -m images.engine status
    python -m images.engine run -- CMD... # start if needed, run CMD with DOCKER_HOST, stop what it started

``start`` first looks for an engine that answers (``$DOCKER_HOST``, then ``/var/run/docker.sock``, then the
private one of an earlier ``start``) and uses it. Otherwise, as root, it starts Debian's ``dockerd`` with
``--iptables=false --bridge=none`` (no NAT, no bridge: containers use ``--network host`` or none) and keeps
its socket, data root, exec root, pid file and log under one folder outside the checkout,
``$KFPKIT_DOCKER_DIR`` or ``/var/tmp/kfpkit-docker``, so that the image and layer cache survive between
runs and checkouts. ``stop`` signals the process of that folder's pid file, and only after checking that it
is the ``dockerd`` started with that folder's data root: an engine this tool did not start is never stopped.

Not shipped: a developer tool for machines (CI included) that have no Docker engine running.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

DEFAULT_DIR = "/var/tmp/kfpkit-docker"
SYSTEM_SOCKET = "/var/run/docker.sock"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


class EngineError(RuntimeError):
    """No engine answers and none can be started here; the message says why and what to do."""


@dataclass(frozen=True)
class EngineDir:
    """The one folder of the private engine: socket, data root, exec root, pid file and log."""

    root: str

    @property
    def socket(self) -> str:
        return os.path.join(self.root, "docker.sock")

    @property
    def host(self) -> str:
        return "unix://" + self.socket

    @property
    def data_root(self) -> str:
        return os.path.join(self.root, "data")

    @property
    def exec_root(self) -> str:
        # short: containerd's sockets live under it, and unix socket paths are limited to 108 bytes
        return os.path.join(self.root, "x")

    @property
    def pidfile(self) -> str:
        return os.path.join(self.root, "dockerd.pid")

    @property
    def log(self) -> str:
        return os.path.join(self.root, "dockerd.log")


def engine_dir() -> EngineDir:
    """The private engine's folder: ``$KFPKIT_DOCKER_DIR`` or ``/var/tmp/kfpkit-docker``."""
    return EngineDir(os.path.abspath(os.environ.get("KFPKIT_DOCKER_DIR") or DEFAULT_DIR))


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def answers(host: str, timeout: float = 5.0) -> bool:
    """Whether the engine at ``host`` (``unix:///path`` or ``tcp://h:p``) answers ``GET /_ping`` with OK."""
    conn: http.client.HTTPConnection
    if host.startswith("unix://"):
        path = host[len("unix://") :]
        if not os.path.exists(path):
            return False
        conn = _UnixHTTPConnection(path, timeout)
    elif host.startswith("tcp://"):
        conn = http.client.HTTPConnection(host[len("tcp://") :], timeout=timeout)
    else:
        return False
    try:
        conn.request("GET", "/_ping")
        response = conn.getresponse()
        return response.status == 200 and response.read().strip() == b"OK"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def running_host(folder: Optional[EngineDir] = None) -> Optional[str]:
    """The ``DOCKER_HOST`` of an engine that answers now ($DOCKER_HOST, the system's, the private one), or None."""
    folder = folder or engine_dir()
    candidates = [os.environ.get("DOCKER_HOST", ""), "unix://" + SYSTEM_SOCKET, folder.host]
    return next((host for host in candidates if host and answers(host)), None)


def _pid_of(folder: EngineDir) -> Optional[int]:
    """The pid in the folder's pid file when that process is the dockerd of this folder, else None."""
    try:
        with open(folder.pidfile) as handle:
            pid = int(handle.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except (OSError, ValueError):
        return None
    ours = os.path.basename(argv[0]) == b"dockerd" and f"--data-root={folder.data_root}".encode() in argv
    return pid if ours else None


def dockerd_command(folder: EngineDir, dockerd: str) -> List[str]:
    """The argv of the private engine: no iptables, no bridge, everything under ``folder``."""
    return [
        dockerd,
        f"--host={folder.host}",
        f"--data-root={folder.data_root}",
        f"--exec-root={folder.exec_root}",
        f"--pidfile={folder.pidfile}",
        "--iptables=false",
        "--ip-masq=false",
        "--bridge=none",
    ]


def start(folder: Optional[EngineDir] = None, timeout_s: float = START_TIMEOUT_S) -> Tuple[str, bool]:
    """An answering engine: ``(DOCKER_HOST, started)``; starts the private one (as root) when none answers.

    Raises:
        EngineError: no engine answers and this process cannot start one (not root, no dockerd), or the
            started one did not answer within ``timeout_s`` (the message quotes its log).
    """
    folder = folder or engine_dir()
    host = running_host(folder)
    if host:
        return host, False
    if os.geteuid() != 0:
        raise EngineError("no Docker engine answers and only root can start one (make docker-engine as root)")
    dockerd = shutil.which("dockerd") or next((p for p in ("/usr/sbin/dockerd",) if os.access(p, os.X_OK)), None)
    if not dockerd:
        raise EngineError("no Docker engine answers and dockerd is missing: apt-get install docker.io")
    for path in (folder.root, folder.data_root, folder.exec_root):
        os.makedirs(path, mode=0o711, exist_ok=True)
    stale = _pid_of(folder)
    if stale:  # a dockerd of this folder that no longer answers: end it before starting another
        _terminate(stale)
    if os.path.exists(folder.socket):
        os.unlink(folder.socket)
    with open(folder.log, "ab") as log:
        process = subprocess.Popen(
            dockerd_command(folder, dockerd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the caller reaches the caller, which stops the engine itself
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if answers(folder.host):
            return folder.host, True
        time.sleep(0.5)
    if process.poll() is None:
        _terminate(process.pid)
    raise EngineError(
        f"dockerd did not answer within {timeout_s:.0f} s; last lines of {folder.log}:\n{_tail(folder.log)}"
    )


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return "(no log)"


def _terminate(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns when the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _alive(pid):
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        # reap it when it is our own child (start() in this process); else only probe it
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


def stop(folder: Optional[EngineDir] = None) -> bool:
    """Stops the private engine of ``folder`` if it runs; True when one was stopped.

    Only the dockerd whose pid file and data root are this folder's is signalled; a system engine or one
    another tool started is left alone.
    """
    folder = folder or engine_dir()
    pid = _pid_of(folder)
    if pid is None:
        return False
    _terminate(pid)
    return True


def run_with_engine(command: Sequence[str]) -> int:
    """Runs ``command`` with ``DOCKER_HOST`` of an answering engine; stops the engine if this call started it.

    Without an engine (not root, no dockerd) the command runs without ``DOCKER_HOST`` after a note on stderr,
    so that the container tests skip (or, under ``CI=true``, fail) with their own message.
    """
    env = dict(os.environ)
    started = False
    try:
        host, started = start()
        env["DOCKER_HOST"] = host
        print(f"docker engine: {host}" + (" (started; stopped when the command ends)" if started else ""))
    except EngineError as exc:
        print(f"note: {exc}; running without a Docker engine", file=sys.stderr)
    try:
        return subprocess.call(list(command), env=env)
    finally:
        if started:
            stop()
            print("docker engine: stopped")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``start`` | ``stop`` | ``status`` | ``run -- CMD...``; 1 with an ``error:`` line when start fails."""
    parser = argparse.ArgumentParser(prog="python -m images.engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop", "status", "run"))
    parser.add_argument("command", nargs=argparse.REMAINDER, help="run: the command (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.action == "run":
        if not command:
            parser.error("run needs a command: python -m images.engine run -- CMD ...")
        return run_with_engine(command)
    if args.action == "stop":
        print("stopped the private engine" if stop() else "no private engine of this folder runs")
        return 0
    if args.action == "status":
        host = running_host()
        print(f"answers: {host}" if host else "no Docker engine answers")
        return 0 if host else 1
    try:
        host, started = start()
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{'started' if started else 'using'} the Docker engine at {host} (folder {engine_dir().root})")
    print(f"export DOCKER_HOST={host}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
