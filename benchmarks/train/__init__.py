"""Training throughput: kfpkit's PyTorch trainer vs its sklearn HistGradientBoosting baseline (not installed)."""
