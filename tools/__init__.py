"""Developer tools of the kfpkit repository (not installed; run ``python -m tools.<name>`` from the root)."""
