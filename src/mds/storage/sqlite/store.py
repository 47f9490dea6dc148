"""SqliteStore: the embedded default Store, on the standard library's ``sqlite3``.

Composed of one part per protocol of :mod:`mds.storage.base` (``bars``, ``universe``,
``ledger``, ``continuity``), all running their SQL through one
:class:`~mds.storage.sqlite.connection.SqliteConnections` (``store.db``), which owns the
writer and reader threads; this module adds the lifecycle.

Point-in-time layout (hand-written; no library does PIT bars): ``candles`` holds the
current revision of each bar, ``candle_history`` the superseded ones with
``superseded_at``. See ``migrations/sqlite/0001_initial.sql`` for units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mds.storage.migrate import SQLITE_MIGRATIONS, apply_sqlite, discover
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.actions import SqliteActions
from mds.storage.sqlite.bars import SqliteBars
from mds.storage.sqlite.connection import SqliteConnections
from mds.storage.sqlite.continuity import SqliteContinuity
from mds.storage.sqlite.coverage import SqliteCoverage
from mds.storage.sqlite.factors import SqliteFactors
from mds.storage.sqlite.keys import SqliteKeys
from mds.storage.sqlite.ledger import SqliteLedger
from mds.storage.sqlite.listing import SqliteListing
from mds.storage.sqlite.profiles import SqliteProfiles
from mds.storage.sqlite.quality import SqliteQuality
from mds.storage.sqlite.reference import SqliteReference
from mds.storage.sqlite.retention import SqliteRetention
from mds.storage.sqlite.schedules import SqliteSchedules
from mds.storage.sqlite.universe import SqliteUniverse


class SqliteStore(
    SqliteBars,
    SqliteUniverse,
    SqliteLedger,
    SqliteContinuity,
    SqliteKeys,
    SqliteReference,
    SqliteCoverage,
    SqliteRetention,
    SqliteListing,
    SqliteSchedules,
    SqliteFactors,
    SqliteActions,
    SqliteQuality,
    SqliteProfiles,
):
    """The Store protocol on a SQLite file (or ``":memory:"``).

    Args:
        path: Database file (its directory must exist) or ``":memory:"``.
        busy_timeout_ms: How long a connection waits for another process's lock.

    Attributes:
        db: The connections; runs a function on the reader or writer thread (the
            analysis store of the same database uses it too).
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self.db = SqliteConnections(self.path, busy_timeout_ms=busy_timeout_ms)

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self.db.started:
            return
        try:
            await self.db.open_writer()
            await self.migrate()
            await self.db.on_writer(lambda conn: conn.execute(q.STAGE_DDL))
            await self.db.open_reader()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        await self.db.close()

    async def migrate(self) -> list[str]:
        migrations = discover(SQLITE_MIGRATIONS)
        return await self.db.on_writer(lambda conn: apply_sqlite(conn, migrations))

    async def ping(self) -> None:
        await self.db.on_reader(lambda conn: conn.execute("SELECT 1").fetchone())

    async def backend_info(self) -> dict[str, Any]:
        # The embedded backend: no TimescaleDB, rollups computed on read by the service.
        version = await self.db.on_reader(lambda conn: conn.execute("SELECT sqlite_version()").fetchone()[0])
        return {
            "backend": "sqlite",
            "timescaledb": False,
            "mode": "embedded",
            "rollups": "on_read",
            "server_version": version,
        }
