"""Fixtures of the payload tests: a small model folder (only preprocessing.json matters here) and event helpers."""

import os
import types
import uuid

import numpy as np
import pandas as pd
import pytest

from kfpkit.core.preprocessing import PreprocessingSpec

FEATURES = ["amount", "hour", "channel", "country"]


def make_spec() -> PreprocessingSpec:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 30.0, 200),
            "hour": rng.integers(0, 24, 200),
            "channel": rng.choice(["web", "pos", "app"], 200),
            "country": rng.choice(["US", "DE", "FR"], 200),
            "is_fraud": rng.integers(0, 2, 200),
        }
    )
    return PreprocessingSpec.fit(frame, "is_fraud")


def v1_request(rows: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "instances": [
            {
                "amount": round(float(rng.gamma(2.0, 30.0)), 2),
                "hour": int(rng.integers(0, 24)),
                "channel": str(rng.choice(["web", "pos", "app"])),
                "country": None if i == 0 else str(rng.choice(["US", "DE", "FR"])),
            }
            for i in range(rows)
        ]
    }


def v1_response(rows: int, seed: int) -> dict:
    rng = np.random.default_rng(seed + 1)
    scores = rng.random(rows)
    return {"predictions": [{"probability": float(p), "label": int(p >= 0.5)} for p in scores]}


def ce_headers(event_id: str, kind: str, service: str = "fraud") -> dict:
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": f"org.kubeflow.serving.inference.{kind}",
        "ce-source": f"http://localhost:9081/{service}",
        "ce-time": "2026-12-01T09:15:00Z",
        "ce-inferenceservicename": service,
        "ce-namespace": "default",
        "ce-component": "predictor",
        "ce-endpoint": "default",
        "content-type": "application/json",
    }


@pytest.fixture()
def model_dir(tmp_path):
    path = tmp_path / "registry" / "fraud" / "3"
    os.makedirs(path)
    make_spec().save(os.path.join(path, "preprocessing.json"))
    return str(path)


@pytest.fixture(scope="session")
def ph():
    """The helpers of this folder (test modules cannot import conftest under --import-mode=importlib)."""
    return types.SimpleNamespace(
        make_spec=make_spec,
        v1_request=v1_request,
        v1_response=v1_response,
        ce_headers=ce_headers,
        new_id=lambda: uuid.uuid4().hex,
    )
