"""The PostgreSQL backend: the production store, one module per concern.

``connection`` (the pool and its outage rules), ``sql`` (statements and row
conversions), ``bars``, ``universe``, ``ledger`` and ``continuity`` (one part of the
Store protocol each), ``store`` (:class:`PostgresStore`, composed of those parts) and
``analysis`` (the analysis store on the same database).
"""

from mds.storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
