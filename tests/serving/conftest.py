"""Tiny real model directories (sklearn baseline and TorchScript) for the serving tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from typing import Any, Iterator, List, Optional, Tuple

import httpx
import numpy as np
import pandas as pd
import pytest

from kfpkit.core import model_dir as md
from kfpkit.core.preprocessing import PreprocessingSpec

LABEL = "is_fraud"
NUMERIC = ["amount", "hour", "distance_km"]
CATEGORICAL = ["channel", "country"]


def make_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.0, 1.0, rows)
    amount[rng.random(rows) < 0.05] = np.nan
    hour = rng.integers(0, 24, rows)
    distance = rng.exponential(20.0, rows)
    channel = rng.choice(["web", "pos", "atm"], rows)
    country = rng.choice(["DE", "FR", "US", None], rows, p=[0.4, 0.3, 0.25, 0.05])
    logit = 0.02 * np.nan_to_num(amount, nan=20.0) - 2.5 + (channel == "web") * 1.0 + (hour < 5) * 0.8
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(
        {
            "amount": amount,
            "hour": hour,
            "channel": channel,
            "distance_km": distance,
            "country": pd.Series(country, dtype=object),
            LABEL: label,
        }
    )


def _card(framework: str, spec: PreprocessingSpec) -> Any:
    document = {
        "framework": framework,
        "model_file": md.MODEL_FILES[framework],
        "label_column": LABEL,
        "feature_order": list(spec.feature_order),
        "decision_threshold": 0.35,
        "created_at": "2024-01-01T00:00:00Z",
    }
    model_card = getattr(md, "ModelCard", None)
    if model_card is None:  # before the typed model card
        return {**document, "parameters": {}, "data": {}, "metrics": {}, "versions": {}}
    return model_card.from_dict({**document, "card_version": 1})


def build_sklearn_dir(directory: str, frame: pd.DataFrame, manifest: bool = True) -> str:
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier

    os.makedirs(directory, exist_ok=True)
    spec = PreprocessingSpec.fit(frame, LABEL)
    numeric, categorical = spec.transform(frame)
    clf = HistGradientBoostingClassifier(max_iter=15, random_state=0)
    clf.fit(md.sklearn_feature_matrix(numeric, categorical), frame[LABEL].to_numpy())
    sio.dump(clf, os.path.join(directory, md.SKOPS_FILE))
    spec.save(os.path.join(directory, md.PREPROCESSING_FILE))
    md.write_model_card(directory, _card("sklearn", spec))
    if manifest:
        md.write_manifest(directory)
    return directory


def build_torch_dir(directory: str, frame: pd.DataFrame, manifest: bool = True) -> str:
    import torch
    from torch import nn

    class TinyNet(nn.Module):
        def __init__(self, n_numeric: int, cardinalities: list):
            super().__init__()
            offsets = [0]
            for c in cardinalities[:-1]:
                offsets.append(offsets[-1] + c)
            self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.int64))
            self.embedding = nn.Embedding(sum(cardinalities), 3)
            self.linear = nn.Linear(n_numeric + 3, 1)

        def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
            emb = self.embedding(categorical + self.offsets).sum(dim=1)
            return torch.sigmoid(self.linear(torch.cat([numeric, emb], dim=1))).squeeze(-1)

    os.makedirs(directory, exist_ok=True)
    spec = PreprocessingSpec.fit(frame, LABEL)
    torch.manual_seed(0)
    net = TinyNet(len(spec.numeric), spec.cardinalities).eval()
    torch.jit.script(net).save(os.path.join(directory, md.TORCHSCRIPT_FILE))
    spec.save(os.path.join(directory, md.PREPROCESSING_FILE))
    md.write_model_card(directory, _card("pytorch", spec))
    if manifest:
        md.write_manifest(directory)
    return directory


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="session")
def sklearn_dir(tmp_path_factory, frame) -> str:
    return build_sklearn_dir(str(tmp_path_factory.mktemp("sk") / "model"), frame)


@pytest.fixture(scope="session")
def torch_dir(tmp_path_factory, frame) -> str:
    return build_torch_dir(str(tmp_path_factory.mktemp("pt") / "model"), frame)


@pytest.fixture()
def copy_dir(tmp_path):
    def _copy(src: str) -> str:
        dst = str(tmp_path / "copy")
        shutil.copytree(src, dst)
        return dst

    return _copy


def serve_app(model_dir: str, name: str, fast_path: bool = True, require_ready: bool = True) -> Tuple[Any, Any]:
    """A loaded model in a fresh KfpkitModelServer app (not started: driven in-process)."""
    from kfpkit.serving.predictor import KfpkitModel
    from kfpkit.serving.server import KfpkitModelServer

    model = KfpkitModel(name, model_dir)
    model.load()
    server = KfpkitModelServer(host="127.0.0.1", http_port=0, enable_grpc=False, fast_path=fast_path)
    return server.create_app([model], require_ready=require_ready), model


def send_all(app: Any, calls: List[Tuple[str, str, dict]], timeout: Optional[float] = 30.0) -> List[httpx.Response]:
    """Sends ``(method, path, httpx kwargs)`` calls to ``app`` in-process through httpx.ASGITransport."""

    async def run() -> List[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=timeout) as client:
            return [await client.request(method, path, **kwargs) for method, path, kwargs in calls]

    return asyncio.run(run())


def send(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return send_all(app, [(method, path, kwargs)])[0]


SERVER_STARTUP_TIMEOUT_S = 60.0


@contextlib.contextmanager
def serve_process(cli_args: List[str], ready_url: str, log_path: Any) -> Iterator[Any]:
    """``python -m kfpkit.cli.serve <cli_args>`` until ``ready_url`` answers 200; always stopped.

    Yields the ``Popen``; stops it with SIGTERM (then SIGKILL) whatever happens.
    """
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "kfpkit.cli.serve", *cli_args], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + SERVER_STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}: {open(log_path).read()[-3000:]}")
            try:
                if httpx.get(ready_url, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready in {SERVER_STARTUP_TIMEOUT_S} s: {open(log_path).read()[-3000:]}")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        log.close()


@pytest.fixture(scope="session")
def kit():
    """The helpers above, for test modules (importlib import mode: conftest is not importable by name)."""
    return types.SimpleNamespace(
        make_frame=make_frame,
        build_sklearn_dir=build_sklearn_dir,
        build_torch_dir=build_torch_dir,
        serve_app=serve_app,
        send=send,
        send_all=send_all,
        serve_process=serve_process,
        LABEL=LABEL,
    )
