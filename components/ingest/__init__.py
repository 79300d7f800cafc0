"""Ingest component: reads a synthetic, local or remote table and writes train/eval Parquet datasets."""
