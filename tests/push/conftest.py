"""Fixtures of the push tests: tiny but valid-looking model directories and TFDV-like baselines."""

import json
import os
import uuid

import fsspec
import pytest

from kfpkit.core import model_dir as md
from kfpkit.core.model_card import ModelCard

MODEL_NAME = "fraud-detector"


def _make_model_dir(path, weights: bytes = b"weights-v1") -> str:
    """A model directory with a model card, preprocessing spec and model file (no training needed)."""
    os.makedirs(path, exist_ok=True)
    md.write_model_card(
        str(path),
        ModelCard(
            framework="sklearn",
            model_file=md.SKOPS_FILE,
            label_column="is_fraud",
            feature_order=["amount"],
            decision_threshold=0.4,
        ),
    )
    with open(os.path.join(path, md.PREPROCESSING_FILE), "w", encoding="utf-8") as fh:
        json.dump({"label_column": "is_fraud", "features": []}, fh)
    with open(os.path.join(path, md.SKOPS_FILE), "wb") as fh:
        fh.write(weights)
    return str(path)


def _make_baseline(path) -> str:
    """A baseline directory shaped like validate's output: statistics, schema, a nested file."""
    os.makedirs(os.path.join(path, "nested"), exist_ok=True)
    with open(os.path.join(path, "stats.tfrecord"), "wb") as fh:
        fh.write(b"\x00statistics")
    with open(os.path.join(path, "schema.pbtxt"), "w", encoding="utf-8") as fh:
        fh.write('feature { name: "amount" }\n')
    with open(os.path.join(path, "nested", "extra.txt"), "w", encoding="utf-8") as fh:
        fh.write("x")
    return str(path)


@pytest.fixture
def make_model_dir():
    return _make_model_dir


@pytest.fixture
def make_baseline():
    return _make_baseline


@pytest.fixture
def model_name():
    return MODEL_NAME


@pytest.fixture
def model(tmp_path):
    return _make_model_dir(tmp_path / "model")


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "registry")


@pytest.fixture
def memory_root():
    """A fresh root on fsspec's in-memory filesystem (an object store without rename), removed afterwards."""
    name = f"memory://kfpkit-test-{uuid.uuid4().hex}"
    yield name
    fs, path = fsspec.core.url_to_fs(name)
    if fs.exists(path):
        fs.rm(path, recursive=True)
