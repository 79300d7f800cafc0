"""Real parts for the scenario suite: five ``kfpkit serve`` processes, Prometheus scraping them, nginx.

One session-wide set of predictors (stable plus four canaries: good, errors, slow, shifted) and one
Prometheus; each scenario gets its own nginx (the local backend) and its own bounded load generator.
"""

from __future__ import annotations

import types

import pytest

from kfpkit.components.rollout import analysis
from kfpkit.components.rollout.prometheus import PrometheusClient
from kfpkit.onebox import replay
from kfpkit.onebox import stack as local
from tests import system_packages
from tests.rollout import harness

VERSIONS = {"stable": "1", "good": "2", "errors": "3", "slow": "4", "shifted": "5"}
ISVC = "fraud"
SCRAPE_S = 0.5
# short intervals; 25 → 50 → 100 keeps the canary's share large enough for min_requests at a low rate
# p99 of ~50 requests on this shared box jumps by tens of ms: the latency floor keeps that noise out
CONFIG = analysis.RolloutConfig(
    steps=(25, 50, 100),
    interval_s=3.0,
    min_requests=10,
    max_inconclusive=2,
    # Prometheus's increase() extrapolates counts to the window, which inflates the chi-square statistic
    thresholds=analysis.Thresholds(min_latency_increase_seconds=0.03, score_alpha=0.001),
)
RPS = 60.0


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return harness.build_models(str(tmp_path_factory.mktemp("rollout-models")))


@pytest.fixture(scope="session")
def predictors(models, tmp_path_factory):
    logs = tmp_path_factory.mktemp("predictor-logs")
    running = {
        name: local.Predictor(models[name], ISVC, log_path=str(logs / f"{name}.log")).start() for name in VERSIONS
    }
    try:
        for predictor in running.values():
            predictor.wait_ready(timeout_s=180)
        warm_up(running.values())
        yield running
    finally:
        for predictor in running.values():
            predictor.stop()


def warm_up(predictors, requests: int = 30) -> None:
    """Scores a few batches on each predictor first: TorchScript's profiling executor makes the first
    calls of a fresh process slow, and a canary's first interval would otherwise measure that."""
    batches = harness.replay_batches(batches=requests, marked_fraction=0.0)
    for predictor in predictors:
        replay.Replay(
            f"http://{predictor.address}", ISVC, batches, rps=1000, duration_s=30, max_requests=requests, threads=1
        ).start().join()


def targets(predictors):
    return [
        {
            "address": p.address,
            "labels": {"namespace": local.LOCAL_NAMESPACE, "isvc": ISVC, "model_version": VERSIONS[n]},
        }
        for n, p in predictors.items()
    ]


@pytest.fixture(scope="session")
def prometheus(predictors, tmp_path_factory):
    system_packages.require("prometheus")
    server = local.PrometheusServer(str(tmp_path_factory.mktemp("prometheus")), targets(predictors), SCRAPE_S).start()
    server.wait_scraped(len(predictors))
    yield server
    server.stop()


@pytest.fixture()
def nginx_for(tmp_path, predictors):
    system_packages.require("nginx")
    started = []

    def make(canary: str, directory: str = "") -> local.Nginx:
        nginx = local.Nginx(
            directory or str(tmp_path / f"nginx-{canary}"), predictors["stable"].address, predictors[canary].address
        )
        started.append(nginx)
        return nginx

    yield make
    for nginx in started:
        nginx.stop()


@pytest.fixture(scope="session")
def batches():
    return harness.replay_batches()


@pytest.fixture(scope="session")
def rollout_kit(batches):
    def source(url: str) -> analysis.PrometheusSource:
        return analysis.PrometheusSource(PrometheusClient(url, timeout_s=2.0), CONFIG.templates())

    return types.SimpleNamespace(config=CONFIG, versions=VERSIONS, isvc=ISVC, rps=RPS, batches=batches, source=source)
