"""PostgreSQL migrations; applied in version order by :mod:`mds.storage.migrate`.

``timescaledb/`` holds the extra steps applied only where the ``timescaledb`` extension
is available; they have their own ledger, so the core versions match SQLite's.
"""
