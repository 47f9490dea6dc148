"""Bulk export of bars: file formats (CSV, Parquet) and the partitioned Parquet dataset."""
