"""The symbol universe and ingestion cursors on PostgreSQL: :class:`~mds.storage.base.UniverseStore`."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from mds.domain.models import Interval, Tier, ensure_utc
from mds.domain.records import Cursor, TierChange, UniverseChange, UniverseEntry, UniverseVersion
from mds.storage.postgres import sql as q
from mds.storage.postgres.connection import PostgresPool


class PostgresUniverse:
    """The :class:`~mds.storage.base.UniverseStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def upsert_universe(
        self,
        entries: Sequence[UniverseEntry],
        *,
        version_tag: str,
        source_meta: dict[str, Any],
        now: datetime | None = None,
        source: str = "",
        file_time: datetime | None = None,
        measures: Mapping[str, float] | None = None,
        keep_active: Collection[str] = (),
    ) -> UniverseChange:
        at = ensure_utc(now) if now is not None else datetime.now(UTC)
        symbols = [e.symbol for e in entries]
        columns = (
            symbols,
            [Tier(e.tier).value for e in entries],
            [bool(e.active) for e in entries],
            [e.name for e in entries],
            [e.exchange for e in entries],
            [bool(e.etf) for e in entries],
        )
        listed = set(symbols)
        meta = json.dumps(source_meta, sort_keys=True, default=str)
        measures = measures or {}

        async def run(conn: asyncpg.Connection) -> UniverseChange:
            async with conn.transaction():
                rows = await conn.fetch("SELECT symbol, tier, active FROM symbol_universe FOR UPDATE")
                before = {r[0]: (r[1], r[2]) for r in rows}
                was_active = {s for s, (_, a) in before.items() if a}
                moves = [
                    (e.symbol, before[e.symbol][0] if e.symbol in before else None, Tier(e.tier).value)
                    for e in entries
                    if e.symbol not in before or before[e.symbol][0] != Tier(e.tier).value
                ]
                await conn.execute(q.UPSERT_UNIVERSE, *columns, at)
                gone = sorted(was_active - listed - set(keep_active))
                await conn.execute(
                    "UPDATE symbol_universe SET active = false, updated_at = $2 WHERE symbol = ANY($1::text[])",
                    gone,
                    at,
                )
                await _record_moves(conn, moves, measures, version_tag, at)
                change = UniverseChange(
                    added=len(listed - was_active),
                    removed=len(gone),
                    unchanged=len(listed & was_active),
                    tier_changes=sum(1 for _, old, _new in moves if old is not None),
                    version_tag=version_tag,
                )
                await conn.execute(
                    q.RECORD_VERSION,
                    version_tag,
                    meta,
                    at,
                    source,
                    None if file_time is None else ensure_utc(file_time),
                    change.added,
                    change.removed,
                    change.unchanged,
                )
                return change

        return await self.db.write(run)

    async def set_tiers(
        self, tiers: Mapping[str, Tier], *, measures: Mapping[str, float], reason: str, now: datetime
    ) -> int:
        at = ensure_utc(now)

        async def run(conn: asyncpg.Connection) -> int:
            async with conn.transaction():
                rows = await conn.fetch("SELECT symbol, tier FROM symbol_universe FOR UPDATE")
                before = {r[0]: r[1] for r in rows}
                moves = [
                    (s, before[s], Tier(t).value)
                    for s, t in tiers.items()
                    if s in before and before[s] != Tier(t).value
                ]
                await conn.execute(
                    "UPDATE symbol_universe u SET tier = m.t, updated_at = $3"
                    " FROM unnest($1::text[], $2::text[]) AS m(s, t) WHERE u.symbol = m.s",
                    [m[0] for m in moves],
                    [m[2] for m in moves],
                    at,
                )
                await _record_moves(conn, moves, measures, reason, at)
                return len(moves)

        return await self.db.write(run)

    async def ensure_symbols(self, symbols: Sequence[str], *, tier: Tier, now: datetime) -> list[str]:
        at = ensure_utc(now)
        wanted = sorted(set(symbols))

        async def run(conn: asyncpg.Connection) -> list[str]:
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT symbol, active FROM symbol_universe WHERE symbol = ANY($1::text[]) FOR UPDATE",
                    wanted,
                )
                state = {r[0]: r[1] for r in rows}
                missing = [s for s in wanted if not state.get(s)]
                await conn.execute(
                    "INSERT INTO symbol_universe (symbol, tier, active, updated_at)"
                    " SELECT s, $2, true, $3 FROM unnest($1::text[]) AS s"
                    " ON CONFLICT (symbol) DO UPDATE SET active = true, updated_at = excluded.updated_at",
                    missing,
                    Tier(tier).value,
                    at,
                )
                new = [(s, None, Tier(tier).value) for s in wanted if s not in state]
                await _record_moves(conn, new, {}, "tracked", at)
                return missing

        return await self.db.write(run)

    async def universe_versions(self, *, limit: int = 20) -> list[UniverseVersion]:
        rows = await self.db.fetch(
            "SELECT version_tag, source, file_time, added, removed, unchanged, created_at"
            " FROM universe_versions ORDER BY created_at DESC, id DESC LIMIT $1",
            limit,
        )
        return [UniverseVersion(*r) for r in rows]

    async def tier_changes(self, *, symbol: str | None = None, limit: int = 100) -> list[TierChange]:
        sql = "SELECT symbol, old_tier, new_tier, measure, reason, changed_at FROM tier_changes"
        args: list[Any] = []
        if symbol is not None:
            args.append(symbol)
            sql += " WHERE symbol = $1"
        args.append(limit)
        rows = await self.db.fetch(sql + f" ORDER BY changed_at DESC, id DESC LIMIT ${len(args)}", *args)
        return [TierChange(s, None if o is None else Tier(o), Tier(n), m, r, c) for s, o, n, m, r, c in rows]

    async def dollar_volume_medians(self, symbols: Sequence[str], *, sessions: int) -> dict[str, float]:
        rows = await self.db.fetch(
            "SELECT s.symbol, percentile_cont(0.5) WITHIN GROUP (ORDER BY d.dv)"
            " FROM unnest($1::text[]) AS s(symbol) CROSS JOIN LATERAL ("
            "   SELECT c.close * c.volume AS dv FROM candles c"
            "   WHERE c.symbol = s.symbol AND c.interval = '1d' ORDER BY c.ts DESC LIMIT $2) d"
            " GROUP BY s.symbol",
            list(symbols),
            sessions,
        )
        return {r[0]: float(r[1]) for r in rows}

    async def universe(self, *, tier: Tier | None = None, active_only: bool = True) -> list[UniverseEntry]:
        sql = "SELECT symbol, tier, active, name, exchange, etf FROM symbol_universe WHERE true"
        args: list[Any] = []
        if tier is not None:
            args.append(Tier(tier).value)
            sql += " AND tier = $1"
        if active_only:
            sql += " AND active"
        rows = await self.db.fetch(sql + " ORDER BY tier, symbol", *args)
        return [UniverseEntry(s, Tier(t), a, n, x, e) for s, t, a, n, x, e in rows]

    async def get_symbol(self, symbol: str) -> UniverseEntry | None:
        row = await self.db.fetchrow(
            "SELECT symbol, tier, active, name, exchange, etf FROM symbol_universe WHERE symbol = $1", symbol
        )
        if row is None:
            return None
        s, t, a, n, x, e = row
        return UniverseEntry(s, Tier(t), a, n, x, e)

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


async def _record_moves(
    conn: asyncpg.Connection,
    moves: Sequence[tuple[str, str | None, str]],
    measures: Mapping[str, float],
    reason: str,
    at: datetime,
) -> None:
    if not moves:
        return
    await conn.execute(
        "INSERT INTO tier_changes (symbol, old_tier, new_tier, measure, reason, changed_at)"
        " SELECT s, o, n, m, $5, $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]) AS u(s, o, n, m)",
        [m[0] for m in moves],
        [m[1] for m in moves],
        [m[2] for m in moves],
        [measures.get(m[0]) for m in moves],
        reason,
        at,
    )
