"""retrain_decision: combines the drift and performance checks into one retrain decision (``retrain_on``)."""
