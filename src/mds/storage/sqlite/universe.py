"""The symbol universe and ingestion cursors on SQLite: :class:`~mds.storage.base.UniverseStore`."""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from mds.domain.models import Interval, Tier
from mds.domain.records import Cursor, TierChange, UniverseChange, UniverseEntry, UniverseVersion
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections


class SqliteUniverse:
    """The :class:`~mds.storage.base.UniverseStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

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
        at = q.micros(now) if now is not None else q.now_micros()
        rows = [
            (e.symbol, Tier(e.tier).value, int(e.active), e.name, e.exchange, int(e.etf), at) for e in entries
        ]
        listed = {e.symbol for e in entries}
        meta = json.dumps(source_meta, sort_keys=True, default=str)
        measures = measures or {}

        def run(conn: sqlite3.Connection) -> UniverseChange:
            before = {
                s: (t, bool(a))
                for s, t, a in conn.execute("SELECT symbol, tier, active FROM symbol_universe")
            }
            was_active = {s for s, (_, a) in before.items() if a}
            moves = [
                (e.symbol, before[e.symbol][0] if e.symbol in before else None, Tier(e.tier).value)
                for e in entries
                if e.symbol not in before or before[e.symbol][0] != Tier(e.tier).value
            ]
            conn.executemany(
                "INSERT INTO symbol_universe (symbol, tier, active, name, exchange, etf, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (symbol) DO UPDATE SET"
                " tier = excluded.tier, active = excluded.active, name = excluded.name,"
                " exchange = excluded.exchange, etf = excluded.etf, updated_at = excluded.updated_at",
                rows,
            )
            gone = sorted(was_active - listed - set(keep_active))
            conn.executemany(
                "UPDATE symbol_universe SET active = 0, updated_at = ? WHERE symbol = ?",
                [(at, s) for s in gone],
            )
            _record_moves(conn, moves, measures, version_tag, at)
            change = UniverseChange(
                added=len(listed - was_active),
                removed=len(gone),
                unchanged=len(listed & was_active),
                tier_changes=sum(1 for _, old, _new in moves if old is not None),
                version_tag=version_tag,
            )
            conn.execute(
                "INSERT INTO universe_versions"
                " (version_tag, source_meta, created_at, source, file_time, added, removed, unchanged)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (version_tag) DO UPDATE SET"
                " source_meta = excluded.source_meta, created_at = excluded.created_at,"
                " source = excluded.source, file_time = excluded.file_time, added = excluded.added,"
                " removed = excluded.removed, unchanged = excluded.unchanged",
                (
                    version_tag,
                    meta,
                    at,
                    source,
                    None if file_time is None else q.micros(file_time),
                    change.added,
                    change.removed,
                    change.unchanged,
                ),
            )
            return change

        return await self.db.transaction(run)

    async def set_tiers(
        self, tiers: Mapping[str, Tier], *, measures: Mapping[str, float], reason: str, now: datetime
    ) -> int:
        at = q.micros(now)

        def run(conn: sqlite3.Connection) -> int:
            before = dict(conn.execute("SELECT symbol, tier FROM symbol_universe").fetchall())
            moves = [
                (s, before[s], Tier(t).value)
                for s, t in tiers.items()
                if s in before and before[s] != Tier(t).value
            ]
            conn.executemany(
                "UPDATE symbol_universe SET tier = ?, updated_at = ? WHERE symbol = ?",
                [(new, at, s) for s, _old, new in moves],
            )
            _record_moves(conn, moves, measures, reason, at)
            return len(moves)

        return await self.db.transaction(run)

    async def ensure_symbols(self, symbols: Sequence[str], *, tier: Tier, now: datetime) -> list[str]:
        at = q.micros(now)
        wanted = sorted(set(symbols))

        def run(conn: sqlite3.Connection) -> list[str]:
            state = dict(
                conn.execute(
                    "SELECT symbol, active FROM symbol_universe WHERE symbol IN (SELECT value FROM json_each(?))",
                    (json.dumps(wanted),),
                ).fetchall()
            )
            missing = [s for s in wanted if not state.get(s)]
            conn.executemany(
                "INSERT INTO symbol_universe (symbol, tier, active, updated_at) VALUES (?, ?, 1, ?)"
                " ON CONFLICT (symbol) DO UPDATE SET active = 1, updated_at = excluded.updated_at",
                [(s, Tier(tier).value, at) for s in missing],
            )
            _record_moves(
                conn, [(s, None, Tier(tier).value) for s in wanted if s not in state], {}, "tracked", at
            )
            return missing

        return await self.db.transaction(run)

    async def universe_versions(self, *, limit: int = 20) -> list[UniverseVersion]:
        sql = (
            "SELECT version_tag, source, file_time, added, removed, unchanged, created_at"
            " FROM universe_versions ORDER BY created_at DESC, id DESC LIMIT ?"
        )
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, (limit,)).fetchall())
        return [
            UniverseVersion(v, src, None if ft is None else q.from_micros(ft), a, r, u, q.from_micros(c))
            for v, src, ft, a, r, u, c in rows
        ]

    async def tier_changes(self, *, symbol: str | None = None, limit: int = 100) -> list[TierChange]:
        sql = "SELECT symbol, old_tier, new_tier, measure, reason, changed_at FROM tier_changes"
        params: list[Any] = []
        if symbol is not None:
            sql += " WHERE symbol = ?"
            params.append(symbol)
        sql += " ORDER BY changed_at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [
            TierChange(s, None if o is None else Tier(o), Tier(n), m, r, q.from_micros(c))
            for s, o, n, m, r, c in rows
        ]

    async def dollar_volume_medians(self, symbols: Sequence[str], *, sessions: int) -> dict[str, float]:
        sql = (
            "SELECT close * volume FROM candles WHERE symbol = ? AND interval = '1d' ORDER BY ts DESC LIMIT ?"
        )

        def run(conn: sqlite3.Connection) -> dict[str, float]:
            out: dict[str, float] = {}
            for s in symbols:
                values = [v for (v,) in conn.execute(sql, (s, sessions))]
                if values:
                    out[s] = statistics.median(values)
            return out

        return await self.db.on_reader(run)

    async def universe(self, *, tier: Tier | None = None, active_only: bool = True) -> list[UniverseEntry]:
        sql = "SELECT symbol, tier, active, name, exchange, etf FROM symbol_universe WHERE 1 = 1"
        params: list[Any] = []
        if tier is not None:
            sql += " AND tier = ?"
            params.append(Tier(tier).value)
        if active_only:
            sql += " AND active = 1"
        sql += " ORDER BY tier, symbol"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [UniverseEntry(s, Tier(t), bool(a), n, x, bool(e)) for s, t, a, n, x, e in rows]

    async def get_symbol(self, symbol: str) -> UniverseEntry | None:
        sql = "SELECT symbol, tier, active, name, exchange, etf FROM symbol_universe WHERE symbol = ?"
        row = await self.db.on_reader(lambda conn: conn.execute(sql, (symbol,)).fetchone())
        if row is None:
            return None
        s, t, a, n, x, e = row
        return UniverseEntry(s, Tier(t), bool(a), n, x, bool(e))

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


def _record_moves(
    conn: sqlite3.Connection,
    moves: Sequence[tuple[str, str | None, str]],
    measures: Mapping[str, float],
    reason: str,
    at: int,
) -> None:
    conn.executemany(
        "INSERT INTO tier_changes (symbol, old_tier, new_tier, measure, reason, changed_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(s, old, new, measures.get(s), reason, at) for s, old, new in moves],
    )
