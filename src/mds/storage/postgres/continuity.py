"""Continuity on PostgreSQL: the full gap scan and "no trades" evidence.

:class:`PostgresContinuity` is the :class:`~mds.storage.base.ContinuityStore` part of
the store; the work is done by plain coroutines on an asyncpg connection that it runs
under the pool's read or write rules. Lists of symbols and bar times go in as array
parameters (``= ANY($n)``; PostgreSQL hashes large arrays), so there is no limit on how
many. Epoch seconds are the protocol's unit; the tables hold ``timestamptz``.

Hand-written: no library knows MDS's notion of an expected bar or of a confirmed-empty one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from mds.domain.models import Interval, ensure_utc
from mds.storage.postgres.connection import PostgresPool
from mds.storage.postgres.sql import RANGE, from_secs, secs

_IN_SCAN = (
    "symbol = ANY($1::text[]) AND interval = $2 AND ts >= $3 AND ts <= $4 AND ts = ANY($5::timestamptz[])"
)
_NOT_STORED = "NOT EXISTS (SELECT 1 FROM candles c WHERE c.symbol = e.symbol AND c.interval = e.interval AND c.ts = e.ts)"
# Per symbol: how many expected bar times are accounted for (stored, or confirmed empty
# and not also stored). Symbols with none do not appear.
_COUNT = f"""
SELECT symbol, count(*) FROM (
    SELECT symbol FROM candles WHERE {_IN_SCAN}
    UNION ALL
    SELECT symbol FROM confirmed_empty e WHERE {_IN_SCAN} AND {_NOT_STORED}
) x GROUP BY symbol
"""
# Per short symbol: the accounted-for bar times as one epoch array.
_DETAIL = f"""
SELECT symbol, array_agg(extract(epoch FROM ts)::bigint) FROM (
    SELECT symbol, ts FROM candles WHERE {_IN_SCAN}
    UNION ALL
    SELECT symbol, ts FROM confirmed_empty e WHERE {_IN_SCAN} AND {_NOT_STORED}
) x GROUP BY symbol
"""

_ADD_EVIDENCE = """
INSERT INTO empty_evidence (symbol, interval, ts, provider, seen, last_seen)
SELECT $1, $2, x, $4, 1, $5::timestamptz FROM unnest($3::timestamptz[]) x
WHERE NOT EXISTS (SELECT 1 FROM candles c WHERE c.symbol = $1 AND c.interval = $2 AND c.ts = x)
ON CONFLICT (symbol, interval, ts, provider) DO UPDATE SET
    seen = empty_evidence.seen + 1, last_seen = excluded.last_seen
"""
_EVIDENCE_FOR = (
    "SELECT ts, provider, seen FROM empty_evidence"
    " WHERE symbol = $1 AND interval = $2 AND ts = ANY($3::timestamptz[])"
)
_CONFIRMED_FOR = (
    "SELECT ts FROM confirmed_empty WHERE symbol = $1 AND interval = $2 AND ts = ANY($3::timestamptz[])"
)
_CONFIRM = """
INSERT INTO confirmed_empty (symbol, interval, ts, providers, answers, confirmed_at)
SELECT $1, $2, t, p, a, $6::timestamptz
FROM unnest($3::timestamptz[], $4::text[], $5::integer[]) AS u(t, p, a)
ON CONFLICT (symbol, interval, ts) DO UPDATE SET
    providers = excluded.providers, answers = excluded.answers
"""
CLEAR = tuple(
    # The table name is one of two constants, never input.
    f"DELETE FROM {table} WHERE symbol = $1 AND interval = $2 AND ts = ANY($3::timestamptz[])"
    for table in ("empty_evidence", "confirmed_empty")
)


def _times(epochs: Sequence[int]) -> list[datetime]:
    return [from_secs(e) for e in sorted({int(e) for e in epochs})]


async def _scan_missing(
    conn: asyncpg.Connection, interval: str, expected: np.ndarray, symbols: Sequence[str]
) -> dict[str, np.ndarray]:
    """Expected epochs neither stored in ``candles`` nor confirmed empty, per short symbol.

    Counting runs in the database; only symbols that come up short have their bar times
    fetched, and a symbol with nothing at all gets ``expected`` without that. Both queries
    run in one repeatable-read transaction, so they see the same snapshot.
    """
    exp = np.unique(np.asarray(expected, dtype=np.int64))
    syms = list(dict.fromkeys(symbols))
    if exp.size == 0 or not syms:
        return {}
    times = [from_secs(e) for e in exp.tolist()]
    args = (interval, times[0], times[-1], times)
    out: dict[str, np.ndarray] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        counts = {sym: n for sym, n in await conn.fetch(_COUNT, syms, *args)}
        partial = []
        for sym in syms:
            n = counts.get(sym, 0)
            if n == 0:
                out[sym] = exp.copy()
            elif n < exp.size:
                partial.append(sym)
        if partial:
            for sym, have in await conn.fetch(_DETAIL, partial, *args):
                out[sym] = exp[~np.isin(exp, np.asarray(have, dtype=np.int64))]
    return {sym: out[sym] for sym in syms if sym in out}


async def _record_empty_evidence(
    conn: asyncpg.Connection,
    symbol: str,
    interval: str,
    epochs: Sequence[int],
    provider: str,
    *,
    now: datetime,
    needed_answers: int,
    needed_providers: int,
) -> list[int]:
    """Add one answer's evidence; confirm what now meets both thresholds (in a transaction).

    Bar times that are stored get no evidence: a bar that exists is not empty.

    Returns:
        The epochs that became confirmed empty by this call, ascending.
    """
    times = _times(epochs)
    if not times:
        return []
    async with conn.transaction():
        await conn.execute(_ADD_EVIDENCE, symbol, interval, times, provider, now)
        totals: dict[int, tuple[int, list[str]]] = {}
        for ts, prov, seen in await conn.fetch(_EVIDENCE_FOR, symbol, interval, times):
            answers, provs = totals.get(secs(ts), (0, []))
            totals[secs(ts)] = (answers + seen, [*provs, prov])
        ready = {
            ts: (answers, provs)
            for ts, (answers, provs) in totals.items()
            if answers >= needed_answers and len(provs) >= needed_providers
        }
        if not ready:
            return []
        already = {secs(r[0]) for r in await conn.fetch(_CONFIRMED_FOR, symbol, interval, times)}
        order = sorted(ready)
        await conn.execute(
            _CONFIRM,
            symbol,
            interval,
            [from_secs(ts) for ts in order],
            [",".join(sorted(ready[ts][1])) for ts in order],
            [ready[ts][0] for ts in order],
            now,
        )
    return sorted(set(ready) - already)


async def _clear_empty_evidence(
    conn: asyncpg.Connection, symbol: str, interval: str, epochs: Sequence[int]
) -> None:
    """Forget evidence and confirmation for these bar times (one transaction)."""
    times = _times(epochs)
    async with conn.transaction():
        for sql in CLEAR:
            await conn.execute(sql, symbol, interval, times)


class PostgresContinuity:
    """The :class:`~mds.storage.base.ContinuityStore` part of :class:`~mds.storage.postgres.PostgresStore`.

    The gap scan runs in one repeatable-read, read-only transaction (one snapshot).
    """

    db: PostgresPool

    async def scan_missing(
        self, interval: Interval, expected: np.ndarray, symbols: Sequence[str]
    ) -> dict[str, np.ndarray]:
        iv = Interval(interval).value
        return await self.db.read(lambda conn: _scan_missing(conn, iv, expected, list(symbols)))

    async def record_empty_evidence(
        self,
        symbol: str,
        interval: Interval,
        epochs: Sequence[int],
        provider: str,
        *,
        now: datetime,
        needed_answers: int,
        needed_providers: int,
    ) -> list[int]:
        if needed_answers < 1 or needed_providers < 1:
            raise ValueError("needed_answers and needed_providers must be at least 1")
        iv, stamp, eps = Interval(interval).value, ensure_utc(now), list(epochs)
        return await self.db.write(
            lambda conn: _record_empty_evidence(
                conn,
                symbol,
                iv,
                eps,
                provider,
                now=stamp,
                needed_answers=needed_answers,
                needed_providers=needed_providers,
            )
        )

    async def clear_empty_evidence(self, symbol: str, interval: Interval, epochs: Sequence[int]) -> None:
        iv, eps = Interval(interval).value, list(epochs)
        await self.db.write(lambda conn: _clear_empty_evidence(conn, symbol, iv, eps))

    async def confirmed_empty(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        sql = f"SELECT extract(epoch FROM ts)::bigint FROM confirmed_empty WHERE {RANGE} ORDER BY ts"
        rows = await self.db.fetch(sql, symbol, Interval(interval).value, ensure_utc(start), ensure_utc(end))
        return [r[0] for r in rows]

    async def count_confirmed_empty(
        self,
        interval: Interval,
        start: datetime,
        end: datetime,
        symbols: Sequence[str] | None = None,
    ) -> int:
        sql = "SELECT count(*) FROM confirmed_empty WHERE interval = $1 AND ts >= $2 AND ts < $3"
        args: list[Any] = [Interval(interval).value, ensure_utc(start), ensure_utc(end)]
        if symbols is not None:
            sql += " AND symbol = ANY($4::text[])"
            args.append(list(dict.fromkeys(symbols)))
        row = await self.db.fetchrow(sql, *args)
        assert row is not None
        return int(row[0])
