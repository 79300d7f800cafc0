"""The training pipeline under kfp.local: DockerRunner (each task in its image) vs SubprocessRunner (not installed)."""
