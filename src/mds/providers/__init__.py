"""Provider adapters: one module per vendor, each a thin translation to domain types."""
