"""The symbol universe and ingestion cursors on SQLite: :class:`~mds.storage.base.UniverseStore`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mds.domain.models import Interval, Tier
from mds.domain.records import Cursor, UniverseEntry
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections


class SqliteUniverse:
    """The :class:`~mds.storage.base.UniverseStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def upsert_universe(
        self, entries: Sequence[UniverseEntry], *, version_tag: str, source_meta: dict[str, Any]
    ) -> None:
        now = q.now_micros()
        rows = [(e.symbol, Tier(e.tier).value, int(e.active), e.name, e.exchange, now) for e in entries]
        symbols = json.dumps([e.symbol for e in entries])
        meta = json.dumps(source_meta, sort_keys=True, default=str)

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO symbol_universe (symbol, tier, active, name, exchange, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (symbol) DO UPDATE SET"
                " tier = excluded.tier, active = excluded.active, name = excluded.name,"
                " exchange = excluded.exchange, updated_at = excluded.updated_at",
                rows,
            )
            conn.execute(
                "UPDATE symbol_universe SET active = 0, updated_at = ?"
                " WHERE active = 1 AND symbol NOT IN (SELECT value FROM json_each(?))",
                (now, symbols),
            )
            conn.execute(
                "INSERT INTO universe_versions (version_tag, source_meta, created_at)"
                " VALUES (?, ?, ?) ON CONFLICT (version_tag) DO UPDATE SET"
                " source_meta = excluded.source_meta, created_at = excluded.created_at",
                (version_tag, meta, now),
            )

        await self.db.transaction(run)

    async def universe(self, *, tier: Tier | None = None, active_only: bool = True) -> list[UniverseEntry]:
        sql = "SELECT symbol, tier, active, name, exchange FROM symbol_universe WHERE 1 = 1"
        params: list[Any] = []
        if tier is not None:
            sql += " AND tier = ?"
            params.append(Tier(tier).value)
        if active_only:
            sql += " AND active = 1"
        sql += " ORDER BY tier, symbol"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [UniverseEntry(s, Tier(t), bool(a), n, x) for s, t, a, n, x in rows]

    async def get_symbol(self, symbol: str) -> UniverseEntry | None:
        sql = "SELECT symbol, tier, active, name, exchange FROM symbol_universe WHERE symbol = ?"
        row = await self.db.on_reader(lambda conn: conn.execute(sql, (symbol,)).fetchone())
        if row is None:
            return None
        s, t, a, n, x = row
        return UniverseEntry(s, Tier(t), bool(a), n, x)

    async def get_cursor(self, symbol: str, interval: Interval, source: str) -> Cursor | None:
        sql = (
            "SELECT last_ts, updated_at FROM ingestion_cursor"
            " WHERE symbol = ? AND interval = ? AND source = ?"
        )
        params = (symbol, interval.value, source)
        row = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchone())
        if row is None:
            return None
        return Cursor(symbol, interval, source, q.from_secs(row[0]), q.from_micros(row[1]))

    async def advance_cursor(
        self, symbol: str, interval: Interval, source: str, ts: datetime, *, now: datetime
    ) -> None:
        params = (symbol, interval.value, source, q.secs(ts), q.micros(now))

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO ingestion_cursor (symbol, interval, source, last_ts, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (symbol, interval, source) DO UPDATE SET"
                " last_ts = excluded.last_ts, updated_at = excluded.updated_at"
                " WHERE excluded.last_ts > ingestion_cursor.last_ts",
                params,
            )

        await self.db.transaction(run)
