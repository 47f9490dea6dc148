"""The :class:`~mds.storage.base.RetentionStore` part of the Postgres store (issue 14).

Plain PostgreSQL: old bars go a few hundred symbols per transaction, so a first pass
over a large database (months of 1m bars) stays well inside ``statement_timeout`` and
never holds locks long. Which symbols hold anything to delete is found by skipping from
one symbol to the next on the primary key (a loose index scan; PostgreSQL has no skip
scan) with one probe each.

TimescaleDB: one plain DELETE per table. Chunk exclusion on ``ts`` confines it to the old
chunks (compressed ones included), where a walk over symbols would probe every chunk at
each step. Its own job expires 1m bars there, so the service asks for 5m only.

Evidence of "no trades" older than the cutoff goes too.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from mds.domain.models import Interval, ensure_utc
from mds.storage.base import RetentionCount
from mds.storage.postgres import sql as q
from mds.storage.postgres.connection import PostgresPool

#: Symbols per delete transaction.
_BATCH = 200

# The table names below are constants of this module, never input.
_BAR_TABLES = ("candles", "candle_history")
_EVIDENCE_TABLES = ("empty_evidence", "confirmed_empty")


def _symbols_sql(table: str) -> str:
    return f"""
WITH RECURSIVE syms(s) AS (
    (SELECT symbol FROM {table} ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT symbol FROM {table} WHERE symbol > syms.s ORDER BY symbol LIMIT 1)
    FROM syms WHERE syms.s IS NOT NULL
)
SELECT s FROM syms
WHERE s IS NOT NULL AND EXISTS (SELECT 1 FROM {table} WHERE symbol = syms.s AND interval = $1 AND ts < $2)
"""


_DELETE = {
    table: f"DELETE FROM {table} WHERE symbol = ANY($3::text[]) AND interval = $1 AND ts < $2"
    for table in _BAR_TABLES
}
_DELETE_ALL = {table: f"DELETE FROM {table} WHERE interval = $1 AND ts < $2" for table in _BAR_TABLES}
_DELETE_EVIDENCE = {
    table: f"DELETE FROM {table} WHERE interval = $1 AND ts < $2" for table in _EVIDENCE_TABLES
}


class PostgresRetention:
    """The :class:`~mds.storage.base.RetentionStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool
    _timescaledb: bool  # set by PostgresStore.migrate

    async def delete_bars_before(self, interval: Interval, cutoff: datetime) -> RetentionCount:
        iv, cut = Interval(interval).value, ensure_utc(cutoff)

        async def affected(conn: asyncpg.Connection) -> list[str]:
            found: set[str] = set()
            for table in _BAR_TABLES:
                found.update(r[0] for r in await conn.fetch(_symbols_sql(table), iv, cut))
            return sorted(found)

        async def delete(conn: asyncpg.Connection, symbols: Sequence[str]) -> tuple[int, int]:
            async with conn.transaction():
                bars = q.rowcount(await conn.execute(_DELETE["candles"], iv, cut, list(symbols)))
                history = q.rowcount(await conn.execute(_DELETE["candle_history"], iv, cut, list(symbols)))
            return bars, history

        async def delete_evidence(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                for sql in _DELETE_EVIDENCE.values():
                    await conn.execute(sql, iv, cut)

        async def delete_all(conn: asyncpg.Connection) -> tuple[int, int]:
            async with conn.transaction():
                bars = q.rowcount(await conn.execute(_DELETE_ALL["candles"], iv, cut))
                history = q.rowcount(await conn.execute(_DELETE_ALL["candle_history"], iv, cut))
            return bars, history

        if self._timescaledb:
            bars, history = await self.db.write(delete_all)
            await self.db.write(delete_evidence)
            return RetentionCount(bars, history)
        symbols = await self.db.read(affected)
        bars = history = 0
        for i in range(0, len(symbols), _BATCH):
            # A retried batch deletes what is left of it; the counts are of the last attempt.
            b, h = await self.db.write(functools.partial(delete, symbols=symbols[i : i + _BATCH]))
            bars += b
            history += h
        await self.db.write(delete_evidence)
        return RetentionCount(bars, history)
