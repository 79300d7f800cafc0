"""Model quality across table sizes: default PyTorch vs the sklearn baseline, ECE vs its noise (not installed)."""
