"""validate: TFDV statistics, schema and anomalies of the three ingest splits, train/eval and train/test skew."""
