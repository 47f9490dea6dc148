"""The symbol universe and ingestion cursors on PostgreSQL: :class:`~mds.storage.base.UniverseStore`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from mds.domain.models import Interval, Tier, ensure_utc
from mds.domain.records import Cursor, UniverseEntry
from mds.storage.postgres import sql as q
from mds.storage.postgres.connection import PostgresPool


class PostgresUniverse:
    """The :class:`~mds.storage.base.UniverseStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def upsert_universe(
        self, entries: Sequence[UniverseEntry], *, version_tag: str, source_meta: dict[str, Any]
    ) -> None:
        symbols = [e.symbol for e in entries]
        columns = (
            symbols,
            [Tier(e.tier).value for e in entries],
            [bool(e.active) for e in entries],
            [e.name for e in entries],
            [e.exchange for e in entries],
        )
        meta = json.dumps(source_meta, sort_keys=True, default=str)

        async def run(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(q.UPSERT_UNIVERSE, *columns)
                await conn.execute(q.DEACTIVATE_OTHERS, symbols)
                await conn.execute(q.RECORD_VERSION, version_tag, meta)

        await self.db.write(run)

    async def universe(self, *, tier: Tier | None = None, active_only: bool = True) -> list[UniverseEntry]:
        sql = "SELECT symbol, tier, active, name, exchange FROM symbol_universe WHERE true"
        args: list[Any] = []
        if tier is not None:
            args.append(Tier(tier).value)
            sql += " AND tier = $1"
        if active_only:
            sql += " AND active"
        rows = await self.db.fetch(sql + " ORDER BY tier, symbol", *args)
        return [UniverseEntry(s, Tier(t), a, n, x) for s, t, a, n, x in rows]

    async def get_symbol(self, symbol: str) -> UniverseEntry | None:
        row = await self.db.fetchrow(
            "SELECT symbol, tier, active, name, exchange FROM symbol_universe WHERE symbol = $1", symbol
        )
        if row is None:
            return None
        s, t, a, n, x = row
        return UniverseEntry(s, Tier(t), a, n, x)

    async def get_cursor(self, symbol: str, interval: Interval, source: str) -> Cursor | None:
        row = await self.db.fetchrow(
            "SELECT last_ts, updated_at FROM ingestion_cursor"
            " WHERE symbol = $1 AND interval = $2 AND source = $3",
            symbol,
            Interval(interval).value,
            source,
        )
        return None if row is None else Cursor(symbol, Interval(interval), source, row[0], row[1])

    async def advance_cursor(
        self, symbol: str, interval: Interval, source: str, ts: datetime, *, now: datetime
    ) -> None:
        args = (symbol, Interval(interval).value, source, ensure_utc(ts), ensure_utc(now))
        await self.db.execute(q.ADVANCE_CURSOR, *args)
