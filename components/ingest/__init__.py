"""Ingest component: reads a synthetic, local or remote table and writes the train, eval and test Parquet datasets."""
