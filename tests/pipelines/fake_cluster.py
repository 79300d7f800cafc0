"""A fake KServe cluster for kfp.local runs of the continuous-training pipeline: API, predictors, metrics, traffic.

It is a fake, named so in every test that uses it. What it puts together:

* the Kubernetes API: :class:`ServingFakeKube`, the deploy tests' ``FakeKubeApiServer`` (every created
  object, patch result and status validated against the KServe CRD schema of ``../shared/schemas/``), reached
  by the pipeline's deploy and rollout tasks through a kubeconfig (``KUBECONFIG``), as a task outside the
  cluster would;
* the data plane KServe would run: for every predictor of an InferenceService, a real ``kfpkit serve``
  process started with the *container arguments deploy wrote* (the model directory is the ``STORAGE_URI``
  that KServe's storage initializer would have copied; ``--expected-digest`` is checked as in the pod). The
  ISVC becomes Ready only once its predictor answers; a predictor that exits (a wrong digest) never does;
* Prometheus (Debian's, the rollout tests' ``onebox`` server) scraping each predictor with the labels the
  PodMonitor of ``manifests/base`` gives the pods (``namespace``, ``isvc``, ``model_version``), its targets
  added as predictors start (file-based service discovery);
* Knative's routing: :class:`Traffic` sends feature rows to the predictors in the shares that the ISVC's
  ``status.components.predictor.traffic`` reports (Serverless mode).
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import urllib.parse
from typing import Any, Dict, List, Tuple

import yaml

from kfpkit.onebox import stack
from tests.deploy.fake_kube import VERSION_LABEL, FakeKubeApiServer

Key = Tuple[str, str]  # (namespace, name)


class DiscoveringPrometheus(stack.PrometheusServer):
    """Prometheus whose targets come from a file it watches, so predictors can join while it runs."""

    def __init__(self, directory: str, scrape_interval_s: float = 0.5):
        super().__init__(directory, [], scrape_interval_s)
        self.targets_file = os.path.join(self.directory, "targets.json")
        self._lock = threading.Lock()
        self._write()

    def config(self) -> Dict[str, Any]:
        document = super().config()
        job = document["scrape_configs"][0]
        job.pop("static_configs")
        job["file_sd_configs"] = [{"files": [self.targets_file], "refresh_interval": "1s"}]
        return document

    def _write(self) -> None:
        entries = [{"targets": [t["address"]], "labels": dict(t["labels"])} for t in self.targets]
        with open(self.targets_file + ".new", "w", encoding="utf-8") as fh:
            json.dump(entries, fh)
        os.replace(self.targets_file + ".new", self.targets_file)

    def add_target(self, address: str, labels: Dict[str, str], timeout_s: float = 60.0) -> None:
        """Adds a target and waits until Prometheus scraped it twice (``increase`` needs two samples)."""
        with self._lock:
            self.targets.append({"address": address, "labels": labels})
            self._write()
        selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        query = urllib.parse.urlencode({"query": f"count_over_time(up{{{selector}}}[1m]) >= 2"})

        def scraped() -> bool:
            return bool(json.loads(stack._get(f"{self.url}/api/v1/query?{query}"))["data"]["result"])

        stack.wait_until(scraped, timeout_s, f"prometheus scraping {address}", self.process)


class ServingFakeKube(FakeKubeApiServer):
    """``FakeKubeApiServer`` whose controller also runs each predictor (see the module docstring).

    Args:
        directory: Folder for the predictors' logs.
        prometheus: Scrapes every predictor that starts.
        **kwargs: ``FakeKubeApiServer``'s.
    """

    def __init__(self, directory: str, prometheus: DiscoveringPrometheus, **kwargs: Any):
        super().__init__(**kwargs)
        self.directory = directory
        self.prometheus = prometheus
        self.predictors: Dict[Tuple[Key, str], Tuple[subprocess.Popen, str]] = {}  # (isvc, version) -> (it, addr)
        self.revision_versions: Dict[Tuple[Key, str], str] = {}
        self._serving = threading.Lock()

    # ------------------------------------------------------------------------------------ data plane
    def _serve(self, key: Key, predictor: Dict[str, Any]) -> None:
        """Starts the predictor's ``kfpkit serve`` (once per version) and waits until it answers."""
        version = (predictor.get("labels") or {}).get(VERSION_LABEL, "")
        with self._serving:
            if (key, version) in self.predictors or version in self.failing_versions:
                return
            container = predictor["containers"][0]
            env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
            args = list(container["args"])
            port = stack.free_port()
            args[args.index("--model-dir") + 1] = env["STORAGE_URI"]  # what the storage initializer copies
            args[args.index("--http-port") + 1] = str(port)
            args += ["--host", "127.0.0.1", "--enable_grpc", "false"]
            log_path = os.path.join(self.directory, f"{key[1]}-v{version}.log")
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "kfpkit.cli.main", *args], stdout=log, stderr=subprocess.STDOUT
                )
            address = f"127.0.0.1:{port}"
            model = args[args.index("--model-name") + 1]
            try:
                stack.wait_until(
                    lambda: stack._get(f"http://{address}/v1/models/{model}") is not None,
                    180,
                    f"predictor v{version}",
                    process,
                )
            except stack.LocalProcessError as exc:
                stack.terminate(process)
                with open(log_path, encoding="utf-8", errors="replace") as fh:
                    tail = fh.read()[-300:]
                self.failing_versions[version] = f"predictor v{version} did not start: {exc}: {tail}"
                return
            self.predictors[(key, version)] = (process, address)
            labels = {"namespace": key[0], "isvc": key[1], "model_version": version}
            self.prometheus.add_target(address, labels)

    def _reconcile(self, key: Key, generation: int) -> None:
        with self.changed:
            obj = copy.deepcopy(self.objects.get(key))
        if obj is None or obj["metadata"]["generation"] != generation:
            return
        spec = obj["spec"]
        for predictor in [spec["predictor"]] + [c["predictor"] for c in spec.get("canary") or []]:
            self._serve(key, predictor)
        super()._reconcile(key, generation)
        with self.changed:
            current = self.objects.get(key)
            revisions = self.revisions.get(key)
            if current and revisions and current["metadata"]["generation"] == generation:
                version = (spec["predictor"].get("labels") or {}).get(VERSION_LABEL, "")
                self.revision_versions[(key, revisions["latest"])] = version

    def split(self, key: Key) -> List[Tuple[str, str, int]]:
        """``[(version, address, percent)]`` that the ISVC's status routes to now (Serverless)."""
        with self.changed:
            obj = copy.deepcopy(self.objects.get(key))
        traffic = (((obj or {}).get("status") or {}).get("components") or {}).get("predictor", {}).get("traffic", [])
        out = []
        for entry in traffic:
            version = self.revision_versions.get((key, entry["revisionName"]))
            served = self.predictors.get((key, version)) if version else None
            if served and entry.get("percent"):
                out.append((version, served[1], int(entry["percent"])))
        return out

    def stop(self) -> None:
        super().stop()
        for process, _address in self.predictors.values():
            stack.terminate(process)


class Traffic:
    """Knative's routing, faked: POSTs batches of rows to the ISVC's predictors in the shares its status names.

    Args:
        kube: The fake API whose ISVC status decides the shares.
        key: ``(namespace, name)`` of the ISVC.
        rows: Feature rows (no label) sent in batches of ``batch`` rows, round robin.
        rps: Requests per second.
    """

    def __init__(self, kube: ServingFakeKube, key: Key, rows: List[Dict[str, Any]], rps: float = 40.0, batch: int = 4):
        self.kube, self.key, self.rps = kube, key, rps
        self.bodies = [json.dumps({"instances": rows[i : i + batch]}).encode() for i in range(0, len(rows), batch)]
        self.sent: Dict[Tuple[str, int], int] = {}  # (version, status) -> requests
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._random = random.Random(0)

    def _send(self, address: str, body: bytes) -> int:
        host, port = address.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("POST", f"/v1/models/{self.key[1]}:predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            return 0
        finally:
            connection.close()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(1.0 / self.rps):
            split = self.kube.split(self.key)
            if not split:
                continue
            version, address, _ = self._random.choices(split, weights=[p for *_, p in split])[0]
            status = self._send(address, self.bodies[n % len(self.bodies)])
            self.sent[(version, status)] = self.sent.get((version, status), 0) + 1
            n += 1

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)


def write_kubeconfig(path: str, server_url: str, namespace: str) -> str:
    """A kubeconfig whose current context is the fake API server (what ``KUBECONFIG`` names for the tasks)."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server_url}}],
        "users": [{"name": "fake", "user": {"token": "fake-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
        "current-context": "fake",
    }
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(document, fh)
    return path


def task_env(kubeconfig: str) -> Dict[str, str]:
    """The environment of a kfp.local run whose tasks reach the fake API (never an in-cluster config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
    env["KUBECONFIG"] = kubeconfig
    return env
