"""Storage behind the Store protocol: SQLite (embedded default) and PostgreSQL."""

from mds.storage.base import Store

__all__ = ["Store"]
