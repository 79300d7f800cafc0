"""performance_skipped: stands in for the performance check where the monitoring pipeline does not run it."""
