"""Deploy a pushed model version as a KServe InferenceService (created, or added as a canary)."""
