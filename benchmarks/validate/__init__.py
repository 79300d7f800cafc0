"""The validate component's ``run_validation`` vs bare TFDV statistics (not installed)."""
