"""PostgresStore: the production Store, on asyncpg (PostgreSQL 14+, TimescaleDB when present).

Same contract and point-in-time layout as :class:`mds.storage.sqlite.SqliteStore`:
``candles`` holds the current revision of each bar, ``candle_history`` the superseded ones
with ``superseded_at``. Composed of one part per protocol of :mod:`mds.storage.base`
(``bars``, ``universe``, ``ledger``, ``continuity``), all running their SQL through one
:class:`~mds.storage.postgres.connection.PostgresPool` (``store.db``), which holds the
pool and the outage rules; this module adds the lifecycle.

Modes: with the ``timescaledb`` extension available, migration makes the time-series
tables hypertables with compression, retention and 5m/1h continuous aggregates. Without it
the plain schema's primary keys serve the same queries. In both, the service's 5m/15m/1h
reads are rolled up on read in the database (``read_rollup``). :meth:`backend_info` says
which mode is on.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from mds.errors import StorageError
from mds.storage.migrate import (
    POSTGRES_MIGRATIONS,
    TIMESCALEDB_MIGRATIONS,
    apply_postgres,
    discover,
)
from mds.storage.postgres import sql as q
from mds.storage.postgres.actions import PostgresActions
from mds.storage.postgres.bars import PostgresBars
from mds.storage.postgres.connection import PostgresPool
from mds.storage.postgres.continuity import PostgresContinuity
from mds.storage.postgres.coverage import PostgresCoverage
from mds.storage.postgres.factors import PostgresFactors
from mds.storage.postgres.keys import PostgresKeys
from mds.storage.postgres.ledger import PostgresLedger
from mds.storage.postgres.listing import PostgresListing
from mds.storage.postgres.profiles import PostgresProfiles
from mds.storage.postgres.quality import PostgresQuality
from mds.storage.postgres.reference import PostgresReference
from mds.storage.postgres.retention import PostgresRetention
from mds.storage.postgres.schedules import PostgresSchedules
from mds.storage.postgres.universe import PostgresUniverse

log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Every pooled connection gets the staging table write_bars COPYs into.
    await conn.execute(q.STAGE_DDL)


class PostgresStore(
    PostgresBars,
    PostgresUniverse,
    PostgresLedger,
    PostgresContinuity,
    PostgresKeys,
    PostgresReference,
    PostgresCoverage,
    PostgresRetention,
    PostgresListing,
    PostgresSchedules,
    PostgresFactors,
    PostgresActions,
    PostgresQuality,
    PostgresProfiles,
):
    """The Store protocol on PostgreSQL through an asyncpg pool.

    Args:
        dsn: ``postgresql://user@host:port/db`` (``postgres://`` works too).
        pool_min: Connections the pool keeps open.
        pool_max: Most connections the pool opens.
        statement_timeout_ms: ``statement_timeout`` of every connection (0 turns it off).
        retry_max_seconds: How long a write keeps retrying through an outage.
        connect_timeout: Seconds one connection attempt may take.
        live_reserved_connections: Pool connections that backfill work
            (``mds.domain.work``) may not hold, so live writes never wait for a backlog
            (LIVE_RESERVED_DB_CONNECTIONS).

    Attributes:
        db: The pool; runs a coroutine function on a pooled connection under the read or
            write retry rules (the analysis store of the same database uses it too).
    """

    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int = 1,
        pool_max: int = 10,
        statement_timeout_ms: int = 30_000,
        retry_max_seconds: float = 60.0,
        connect_timeout: float = 5.0,
        live_reserved_connections: int = 0,
    ) -> None:
        self.db = PostgresPool(
            dsn,
            pool_min=pool_min,
            pool_max=pool_max,
            statement_timeout_ms=statement_timeout_ms,
            retry_max_seconds=retry_max_seconds,
            connect_timeout=connect_timeout,
            live_reserved_connections=live_reserved_connections,
            init=_init_connection,
        )
        # The pool's settings as it normalised them, for /health and callers that report them.
        self.dsn, self.pool_min, self.pool_max = self.db.dsn, self.db.pool_min, self.db.pool_max
        self.statement_timeout_ms = self.db.statement_timeout_ms
        self.retry_max_seconds = self.db.retry_max_seconds
        self.connect_timeout = self.db.connect_timeout
        self._timescaledb = False

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        # The pool retries while the server is unreachable (up to retry_max_seconds).
        if self.db.is_open:
            return
        await self.db.open()
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        await self.db.close()

    async def migrate(self) -> list[str]:
        # TimescaleDB steps run when the extension is available to this server; if they
        # fail (say, the library is not in ``shared_preload_libraries``) the store logs why
        # and stays in plain mode.
        async def run(conn: asyncpg.Connection) -> list[str]:
            applied = await apply_postgres(conn, discover(POSTGRES_MIGRATIONS))
            available = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
            )
            if available:
                try:
                    extra = await apply_postgres(
                        conn, discover(TIMESCALEDB_MIGRATIONS), ledger="schema_migrations_timescaledb"
                    )
                    applied += [f"timescaledb/{v}" for v in extra]
                except StorageError as exc:
                    log.warning("timescaledb is available but could not be set up; plain mode: %s", exc)
            self._timescaledb = bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
                )
            )
            return applied

        return await self.db.write(run)

    async def ping(self) -> None:
        await self.db.read(lambda conn: conn.fetchval("SELECT 1"))

    async def backend_info(self) -> dict[str, Any]:
        # Beyond the protocol's keys: "timescaledb_version", "rollups": "in_database",
        # "continuous_aggregates", "server_version" ("15.4"), "pool" and the timeout.
        async def run(conn: asyncpg.Connection) -> dict[str, Any]:
            version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            hypertables = bool(version) and bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables"
                    " WHERE hypertable_name = 'candles')"
                )
            )
            server = conn.get_server_version()
            return {
                "backend": "postgresql",
                "timescaledb": hypertables,
                "timescaledb_version": version,
                "mode": "timescaledb" if hypertables else "plain",
                # The API's 5m/15m/1h come from read_rollup in both modes; the continuous
                # aggregates serve SQL and dashboard users.
                "rollups": "in_database",
                "continuous_aggregates": ["candles_5m", "candles_1h"] if hypertables else [],
                "server_version": f"{server.major}.{server.minor}",
                "pool": {"min": self.pool_min, "max": self.pool_max, "size": pool.get_size()},
                "statement_timeout_ms": self.statement_timeout_ms,
            }

        pool = self.db.require_pool()
        return await self.db.read(run)
