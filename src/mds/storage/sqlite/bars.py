"""Bars and quotes on SQLite: :class:`~mds.storage.base.BarStore`.

A write stages the batch in the writer connection's temporary ``stage_bars`` and then
classifies, files history and upserts with one statement each, all in one transaction on
the writer thread. Reads without ``as_of`` touch only ``candles``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mds.domain.models import Bar, BarStatus, Interval, Quote
from mds.domain.records import WriteResult
from mds.storage.sqlite import continuity as cont
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections


class SqliteBars:
    """The :class:`~mds.storage.base.BarStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def write_bars(
        self, bars: Sequence[Bar], *, as_of: datetime, changed_since: datetime | None = None
    ) -> WriteResult:
        stamp = q.micros(as_of)
        # Keyed by the primary key so a repeated key keeps its last bar.
        staged: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        for b in bars:
            key = (b.symbol, Interval(b.interval).value, q.secs(b.ts))
            staged[key] = (
                *key,
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume,
                b.provider,
                BarStatus(b.status).value,
                int(b.adjusted),
            )
        if not staged:
            return WriteResult()

        def run(conn: sqlite3.Connection) -> WriteResult:
            conn.execute("DELETE FROM temp.stage_bars")
            conn.executemany(
                "INSERT INTO temp.stage_bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                staged.values(),
            )
            inserted, revised = conn.execute(q.CLASSIFY).fetchone()
            changed: tuple[tuple[str, str, datetime], ...] = ()
            if changed_since is not None and (inserted or revised):
                rows = conn.execute(q.CHANGED_SINCE, (q.secs(changed_since),)).fetchall()
                changed = tuple((s, i, q.from_secs(t)) for s, i, t in rows)
            if revised:
                conn.execute(q.TO_HISTORY, (stamp,))
            if inserted or revised:
                conn.execute(q.UPSERT, (stamp,))
            # A bar that exists is not empty: new bars drop their "no trades" evidence.
            if inserted and conn.execute(cont.ANY_EMPTY_ROWS).fetchone()[0]:
                for sql in cont.CLEAR_STAGED:
                    conn.execute(sql)
            conn.execute("DELETE FROM temp.stage_bars")
            return WriteResult(inserted, revised, len(staged) - inserted - revised, changed)

        return await self.db.transaction(run)

    async def read_bars(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        *,
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        if limit is not None and limit <= 0:
            return []
        rng = (symbol, interval.value, q.secs(start), q.secs(end))
        if as_of is None:
            sql = f"SELECT {q.BAR_COLS} FROM candles WHERE {q.RANGE}"
            params: tuple[Any, ...] = rng
        else:
            t = q.micros(as_of)
            sql = (
                f"SELECT {q.BAR_COLS} FROM candles WHERE {q.RANGE} AND as_of <= ?"
                f" UNION ALL SELECT {q.BAR_COLS} FROM candle_history"
                f" WHERE {q.RANGE} AND as_of <= ? AND superseded_at > ?"
            )
            params = (*rng, t, *rng, t, t)
        if limit is None:
            sql += " ORDER BY ts"
        else:
            sql += " ORDER BY ts DESC LIMIT ?"
            params = (*params, limit)
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        if limit is not None:
            rows.reverse()
        return [q.bar(r) for r in rows]

    async def bar_timestamps(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        params = (symbol, interval.value, q.secs(start), q.secs(end))
        sql = f"SELECT ts FROM candles WHERE {q.RANGE} ORDER BY ts"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [r[0] for r in rows]

    async def latest_bar(self, symbol: str, interval: Interval) -> Bar | None:
        sql = f"SELECT {q.BAR_COLS} FROM candles WHERE symbol = ? AND interval = ? ORDER BY ts DESC LIMIT 1"
        params = (symbol, interval.value)
        row = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else q.bar(row)

    async def bar_revisions(self, symbol: str, interval: Interval, ts: datetime) -> list[Bar]:
        key = (symbol, interval.value, q.secs(ts))
        where = "symbol = ? AND interval = ? AND ts = ?"
        sql = (
            f"SELECT {q.BAR_COLS} FROM candle_history WHERE {where}"
            f" UNION ALL SELECT {q.BAR_COLS} FROM candles WHERE {where} ORDER BY revision"
        )
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, (*key, *key)).fetchall())
        return [q.bar(r) for r in rows]

    async def write_quotes(self, quotes: Sequence[Quote]) -> int:
        rows = [
            (
                x.symbol,
                q.micros(x.ts),
                x.bid,
                x.ask,
                x.bid_size,
                x.ask_size,
                x.last,
                x.provider,
                None if x.as_of is None else q.micros(x.as_of),
            )
            for x in quotes
        ]
        if not rows:
            return 0

        def run(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO quotes_l1 (symbol, ts, bid, ask, bid_size, ask_size, last,"
                " provider, as_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            return conn.total_changes - before

        return await self.db.transaction(run)

    async def latest_quote(self, symbol: str) -> Quote | None:
        sql = (
            "SELECT symbol, ts, bid, ask, last, bid_size, ask_size, provider, as_of"
            " FROM quotes_l1 WHERE symbol = ? ORDER BY ts DESC, as_of DESC LIMIT 1"
        )
        row = await self.db.on_reader(lambda conn: conn.execute(sql, (symbol,)).fetchone())
        if row is None:
            return None
        sym, ts, bid, ask, last, bid_size, ask_size, provider, as_of = row
        return Quote(
            symbol=sym,
            ts=q.from_micros(ts),
            bid=bid,
            ask=ask,
            last=last,
            bid_size=bid_size,
            ask_size=ask_size,
            provider=provider,
            as_of=None if as_of is None else q.from_micros(as_of),
        )
