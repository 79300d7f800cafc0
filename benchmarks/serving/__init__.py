"""Load test and serving benchmark for the kfpkit predictor.

* :mod:`benchmarks.serving.loadtest` (``make loadtest``): a bounded headless locust run against a
  loopback ``kfpkit serve`` (:mod:`benchmarks.serving.locustfile`).
* :mod:`benchmarks.serving.bench_serving` (``make bench-serving``): the same LogisticRegression served by
  kfpkit, by MLServer and by a KServe sklearnserver-equivalent model server, measured with the same
  one-row v2 requests at 1 and 16 connections.

Everything binds 127.0.0.1, every run is bounded in time, and every server is stopped at the end.
"""
