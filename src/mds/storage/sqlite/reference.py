"""Index membership, refresh records and holdings on SQLite: :class:`~mds.storage.base.ReferenceStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mds.domain.reference import (
    Constituent,
    ConstituentChange,
    Holding,
    IndexMember,
    IndexName,
    IndexRefresh,
)
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

_MEMBER_COLS = (
    "index_name, symbol, name, sector, sub_industry, is_active, first_seen_at, became_inactive_at, source"
)
_REFRESH_COLS = (
    "index_name, started_at, fetched, inserted, reactivated, inactivated, provider_used,"
    " fallback_used, applied, reason"
)


class SqliteReference:
    """The :class:`~mds.storage.base.ReferenceStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def apply_constituents(
        self, index: IndexName, members: Sequence[Constituent], *, source: str, now: datetime
    ) -> ConstituentChange:
        at = q.micros(now)
        fresh = {m.symbol: m for m in members}

        def run(conn: sqlite3.Connection) -> ConstituentChange:
            before = dict(
                conn.execute(
                    "SELECT symbol, is_active FROM index_constituents WHERE index_name = ?", (index,)
                ).fetchall()
            )
            inserted = [s for s in fresh if s not in before]
            reactivated = [s for s in fresh if s in before and not before[s]]
            leavers = [s for s, active in before.items() if active and s not in fresh]
            conn.executemany(
                "INSERT INTO index_constituents (index_name, symbol, name, sector, sub_industry, is_active,"
                " first_seen_at, became_inactive_at, source, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, NULL, ?, ?)"
                " ON CONFLICT (index_name, symbol) DO UPDATE SET name = excluded.name,"
                " sector = excluded.sector, sub_industry = excluded.sub_industry, is_active = 1,"
                " became_inactive_at = NULL, source = excluded.source, updated_at = excluded.updated_at",
                [(index, m.symbol, m.name, m.sector, m.sub_industry, at, source, at) for m in fresh.values()],
            )
            conn.executemany(
                "UPDATE index_constituents SET is_active = 0, became_inactive_at = ?, updated_at = ?"
                " WHERE index_name = ? AND symbol = ?",
                [(at, at, index, s) for s in leavers],
            )
            return ConstituentChange(
                fetched=len(members),
                inserted=len(inserted),
                reactivated=len(reactivated),
                inactivated=len(leavers),
            )

        return await self.db.transaction(run)

    async def index_members(
        self, index: IndexName | None = None, *, active_only: bool = True
    ) -> list[IndexMember]:
        sql = f"SELECT {_MEMBER_COLS} FROM index_constituents WHERE 1 = 1"
        params: list[Any] = []
        if index is not None:
            sql += " AND index_name = ?"
            params.append(index)
        if active_only:
            sql += " AND is_active = 1"
        sql += " ORDER BY index_name, symbol"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [
            IndexMember(
                index=i,
                symbol=s,
                name=n,
                sector=sec,
                sub_industry=sub,
                is_active=bool(a),
                first_seen_at=q.from_micros(first),
                became_inactive_at=None if gone is None else q.from_micros(gone),
                source=src,
            )
            for i, s, n, sec, sub, a, first, gone, src in rows
        ]

    async def record_index_refresh(self, refresh: IndexRefresh) -> None:
        r = refresh
        params = (
            r.index,
            q.micros(r.started_at),
            r.fetched,
            r.inserted,
            r.reactivated,
            r.inactivated,
            r.provider_used,
            int(r.fallback_used),
            int(r.applied),
            r.reason,
        )
        await self.db.transaction(
            lambda conn: conn.execute(
                f"INSERT INTO index_refreshes ({_REFRESH_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", params
            )
        )

    async def index_refreshes(self, *, index: IndexName | None = None, limit: int = 20) -> list[IndexRefresh]:
        sql = f"SELECT {_REFRESH_COLS} FROM index_refreshes"
        params: list[Any] = []
        if index is not None:
            sql += " WHERE index_name = ?"
            params.append(index)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [
            IndexRefresh(i, q.from_micros(t), f, ins, re, ina, p, bool(fb), bool(ap), why)
            for i, t, f, ins, re, ina, p, fb, ap, why in rows
        ]

    async def add_holdings(self, symbols: Sequence[str], *, note: str, now: datetime) -> list[str]:
        at = q.micros(now)
        wanted = sorted(set(symbols))

        def run(conn: sqlite3.Connection) -> list[str]:
            held = {s for (s,) in conn.execute("SELECT symbol FROM holdings")}
            new = [s for s in wanted if s not in held]
            conn.executemany(
                "INSERT INTO holdings (symbol, added_at, note) VALUES (?, ?, ?)", [(s, at, note) for s in new]
            )
            return new

        return await self.db.transaction(run)

    async def remove_holdings(self, symbols: Sequence[str]) -> list[str]:
        wanted = sorted(set(symbols))

        def run(conn: sqlite3.Connection) -> list[str]:
            held = {s for (s,) in conn.execute("SELECT symbol FROM holdings")}
            gone = [s for s in wanted if s in held]
            conn.executemany("DELETE FROM holdings WHERE symbol = ?", [(s,) for s in gone])
            return gone

        return await self.db.transaction(run)

    async def holdings(self) -> list[Holding]:
        rows = await self.db.on_reader(
            lambda conn: conn.execute(
                "SELECT symbol, added_at, note FROM holdings ORDER BY symbol"
            ).fetchall()
        )
        return [Holding(s, q.from_micros(at), note) for s, at, note in rows]
