"""Index membership, refresh records and holdings on PostgreSQL: :class:`~mds.storage.base.ReferenceStore`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from mds.domain.models import ensure_utc
from mds.domain.reference import (
    Constituent,
    ConstituentChange,
    Holding,
    IndexMember,
    IndexName,
    IndexRefresh,
)
from mds.storage.postgres.connection import PostgresPool

_MEMBER_COLS = (
    "index_name, symbol, name, sector, sub_industry, is_active, first_seen_at, became_inactive_at, source"
)
_REFRESH_COLS = (
    "index_name, started_at, fetched, inserted, reactivated, inactivated, provider_used,"
    " fallback_used, applied, reason"
)


class PostgresReference:
    """The :class:`~mds.storage.base.ReferenceStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def apply_constituents(
        self, index: IndexName, members: Sequence[Constituent], *, source: str, now: datetime
    ) -> ConstituentChange:
        at = ensure_utc(now)
        fresh = {m.symbol: m for m in members}

        async def run(conn: asyncpg.Connection) -> ConstituentChange:
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT symbol, is_active FROM index_constituents WHERE index_name = $1 FOR UPDATE", index
                )
                before = {r[0]: r[1] for r in rows}
                inserted = [s for s in fresh if s not in before]
                reactivated = [s for s in fresh if s in before and not before[s]]
                leavers = [s for s, active in before.items() if active and s not in fresh]
                await conn.execute(
                    "INSERT INTO index_constituents (index_name, symbol, name, sector, sub_industry, is_active,"
                    " first_seen_at, became_inactive_at, source, updated_at)"
                    " SELECT $1, s, n, sec, sub, true, $6, NULL, $7, $6"
                    " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(s, n, sec, sub)"
                    " ON CONFLICT (index_name, symbol) DO UPDATE SET name = excluded.name,"
                    " sector = excluded.sector, sub_industry = excluded.sub_industry, is_active = true,"
                    " became_inactive_at = NULL, source = excluded.source, updated_at = excluded.updated_at",
                    index,
                    [m.symbol for m in fresh.values()],
                    [m.name for m in fresh.values()],
                    [m.sector for m in fresh.values()],
                    [m.sub_industry for m in fresh.values()],
                    at,
                    source,
                )
                await conn.execute(
                    "UPDATE index_constituents SET is_active = false, became_inactive_at = $3, updated_at = $3"
                    " WHERE index_name = $1 AND symbol = ANY($2::text[])",
                    index,
                    leavers,
                    at,
                )
                return ConstituentChange(
                    fetched=len(members),
                    inserted=len(inserted),
                    reactivated=len(reactivated),
                    inactivated=len(leavers),
                )

        return await self.db.write(run)

    async def index_members(
        self, index: IndexName | None = None, *, active_only: bool = True
    ) -> list[IndexMember]:
        sql = f"SELECT {_MEMBER_COLS} FROM index_constituents WHERE true"
        args: list[Any] = []
        if index is not None:
            args.append(index)
            sql += " AND index_name = $1"
        if active_only:
            sql += " AND is_active"
        rows = await self.db.fetch(sql + " ORDER BY index_name, symbol", *args)
        return [
            IndexMember(
                index=r[0],
                symbol=r[1],
                name=r[2],
                sector=r[3],
                sub_industry=r[4],
                is_active=r[5],
                first_seen_at=r[6],
                became_inactive_at=r[7],
                source=r[8],
            )
            for r in rows
        ]

    async def record_index_refresh(self, refresh: IndexRefresh) -> None:
        r = refresh
        await self.db.execute(
            f"INSERT INTO index_refreshes ({_REFRESH_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            r.index,
            ensure_utc(r.started_at),
            r.fetched,
            r.inserted,
            r.reactivated,
            r.inactivated,
            r.provider_used,
            r.fallback_used,
            r.applied,
            r.reason,
        )

    async def index_refreshes(self, *, index: IndexName | None = None, limit: int = 20) -> list[IndexRefresh]:
        sql = f"SELECT {_REFRESH_COLS} FROM index_refreshes"
        args: list[Any] = []
        if index is not None:
            args.append(index)
            sql += " WHERE index_name = $1"
        args.append(limit)
        rows = await self.db.fetch(sql + f" ORDER BY started_at DESC, id DESC LIMIT ${len(args)}", *args)
        return [IndexRefresh(*r) for r in rows]

    async def add_holdings(self, symbols: Sequence[str], *, note: str, now: datetime) -> list[str]:
        rows = await self.db.write(
            lambda conn: conn.fetch(
                "INSERT INTO holdings (symbol, added_at, note) SELECT s, $2, $3 FROM unnest($1::text[]) AS s"
                " ON CONFLICT (symbol) DO NOTHING RETURNING symbol",
                sorted(set(symbols)),
                ensure_utc(now),
                note,
            )
        )
        return sorted(r[0] for r in rows)

    async def remove_holdings(self, symbols: Sequence[str]) -> list[str]:
        rows = await self.db.write(
            lambda conn: conn.fetch(
                "DELETE FROM holdings WHERE symbol = ANY($1::text[]) RETURNING symbol", sorted(set(symbols))
            )
        )
        return sorted(r[0] for r in rows)

    async def holdings(self) -> list[Holding]:
        rows = await self.db.fetch("SELECT symbol, added_at, note FROM holdings ORDER BY symbol")
        return [Holding(*r) for r in rows]
