"""TimescaleDB-only migrations (hypertables, compression, retention, continuous aggregates)."""
