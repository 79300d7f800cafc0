"""CUDA path: bf16 autocast, device-resident data. Skipped without CUDA (pytest -m gpu on a GPU machine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kfpkit.components.train.logic import train_model
from kfpkit.components.train.torch_trainer import TabularNet, predict_logits
from kfpkit.core import model_dir as md

LABEL = "is_fraud"

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_bf16_autocast_forward_matches_the_fp32_cpu_forward():
    torch.manual_seed(0)
    net = TabularNet(
        n_numeric=4, cardinalities=[5, 9, 3], embedding_dim=8, hidden_units=128, hidden_layers=2, dropout=0.1
    ).eval()
    numeric = torch.randn(10_000, 4)
    categorical = torch.stack([torch.randint(0, c, (10_000,)) for c in (5, 9, 3)], dim=1)
    cpu = torch.sigmoid(predict_logits(net, numeric, categorical, autocast=False))
    gpu_net = TabularNet(
        n_numeric=4, cardinalities=[5, 9, 3], embedding_dim=8, hidden_units=128, hidden_layers=2, dropout=0.1
    )
    gpu_net.load_state_dict(net.state_dict())
    gpu_net = gpu_net.cuda().eval()
    gpu = torch.sigmoid(predict_logits(gpu_net, numeric.cuda(), categorical.cuda(), autocast=True)).cpu()
    assert gpu.dtype == torch.float32
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), atol=2e-2)


def test_cuda_training_uses_bf16_autocast_and_matches_cpu_quality(splits, tmp_path, tools):
    cpu = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "cpu"), tools.fast_params(device="cpu"))
    gpu = train_model(splits.train, splits.eval, LABEL, str(tmp_path / "gpu"), tools.fast_params(device="cuda"))
    card = md.read_model_card(gpu.output_dir)
    assert card.parameters["device"].startswith("cuda")
    assert card.parameters["autocast"] == "bfloat16"
    assert card.versions["cuda"]
    base_rate = float(splits.eval_frame[LABEL].mean())
    assert gpu.metrics["pr_auc"] > 3 * base_rate
    assert abs(gpu.metrics["pr_auc"] - cpu.metrics["pr_auc"]) < 0.08
    assert abs(gpu.metrics["roc_auc"] - cpu.metrics["roc_auc"]) < 0.05
    # the exported model is float32 on CPU and reproduces the card's metrics there
    loaded = md.load_model(gpu.output_dir)
    probabilities = loaded.predict_proba(splits.eval_frame)
    from sklearn.metrics import average_precision_score

    assert average_precision_score(splits.eval_frame[LABEL], probabilities) == pytest.approx(
        gpu.metrics["pr_auc"], abs=2e-3
    )


def test_cuda_checkpoint_resume_continues_from_epoch_3(splits, tmp_path, tools):
    checkpoints = str(tmp_path / "ckpt")
    train_model(
        splits.train, splits.eval, LABEL, str(tmp_path / "a"), tools.fast_params(device="cuda", epochs=2), checkpoints
    )
    resumed = train_model(
        splits.train, splits.eval, LABEL, str(tmp_path / "b"), tools.fast_params(device="cuda", epochs=4), checkpoints
    )
    assert resumed.resumed_from_epoch == 2
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
