"""Ingestion: sweeper, workers, gap checks and backfill."""
