"""The SQLite backend: the embedded default store, one module per concern.

``connection`` (the writer/reader threads), ``sql`` (statements and row conversions),
``bars``, ``universe``, ``ledger`` and ``continuity`` (one part of the Store protocol
each), ``store`` (:class:`SqliteStore`, composed of those parts) and ``analysis`` (the
analysis store on the same database).
"""

from mds.storage.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
