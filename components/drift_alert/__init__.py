"""drift_alert: POSTs the monitor's drifted features to a webhook when drift was found."""
