"""SQLite migrations; applied in version order by :mod:`mds.storage.migrate`."""
