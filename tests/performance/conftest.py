"""Fixtures of the performance tests: a model version for the synthetic labelled traffic, and a runner."""

import functools
import os
import types

import pytest

from benchmarks.performance import traffic
from kfpkit.components.performance import logic


def run(model_dir, tmp_path, generated, name, as_of, maturity="20d", labels=None, **settings):
    """Writes the traffic and its labels as Parquet and runs the performance logic on them."""
    live = os.path.join(tmp_path, f"{name}-live.parquet")
    generated.frame.to_parquet(live, index=False)
    label_path = os.path.join(tmp_path, f"{name}-labels.parquet")
    (traffic.labels_frame(generated) if labels is None else labels).to_parquet(label_path, index=False)
    settings.setdefault("resamples", 200)
    return logic.run_performance(
        logic.PerformanceInputs(model_dir, live, [label_path], "is_fraud", as_of=as_of),
        logic.PerformanceSettings(maturity=maturity, **settings),
        logic.OutputPaths.in_folder(os.path.join(tmp_path, f"{name}-out")),
    )


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return traffic.make_model_dir(str(tmp_path_factory.mktemp("registry") / "fraud-detector" / "1"))


@pytest.fixture(scope="session")
def ph(model_dir):
    """The helpers of this folder (test modules cannot import conftest under --import-mode=importlib)."""
    return types.SimpleNamespace(run=functools.partial(run, model_dir), traffic=traffic, model_dir=model_dir)
