"""Canary analysis: promote or roll back a canary from Prometheus metrics, over any traffic backend."""
