"""train: PyTorch tabular classifier (GPU-aware, checkpointed) and sklearn baseline, exported as a model directory."""
