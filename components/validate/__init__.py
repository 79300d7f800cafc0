"""validate: TFDV statistics, schema, anomalies and train/eval skew of the ingest splits (runs the TFDV interpreter)."""
