"""The :class:`~mds.storage.base.CoverageStore` part of the Postgres store (issue 14).

Every query walks the primary key (symbol, interval, ts): ``ORDER BY ts DESC LIMIT 1`` per
series is one probe (on a TimescaleDB hypertable, of the newest chunk holding the series),
a count since a time is one range of the key, and the distinct symbols are found by
skipping from one symbol to the next (a loose index scan; PostgreSQL has no skip scan).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mds.domain.models import Interval, ensure_utc
from mds.storage.postgres.connection import PostgresPool

_LAST = """
SELECT s, (SELECT ts FROM candles WHERE symbol = s AND interval = $1 ORDER BY ts DESC LIMIT 1)
FROM unnest($2::text[]) AS s
"""
# Correlated per symbol, as _LAST: a range of the key each, whatever the planner thinks of
# an ANY() over thousands of symbols against a table of 1m bars.
_COUNT = """
SELECT s, (SELECT count(*) FROM candles WHERE symbol = s AND interval = $1 AND ts >= $3)
FROM unnest($2::text[]) AS s
"""
_SYMBOLS = """
WITH RECURSIVE syms(s) AS (
    (SELECT symbol FROM candles ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT symbol FROM candles WHERE symbol > syms.s ORDER BY symbol LIMIT 1)
    FROM syms WHERE syms.s IS NOT NULL
)
SELECT count(*) FROM syms
WHERE s IS NOT NULL AND EXISTS (SELECT 1 FROM candles WHERE symbol = syms.s AND interval = $1)
"""


class PostgresCoverage:
    """The :class:`~mds.storage.base.CoverageStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def last_bar_times(self, interval: Interval, symbols: Sequence[str]) -> dict[str, datetime]:
        if not symbols:
            return {}
        rows = await self.db.fetch(_LAST, Interval(interval).value, list(symbols))
        return {s: ts for s, ts in rows if ts is not None}

    async def bar_counts_since(
        self, interval: Interval, symbols: Sequence[str], start: datetime
    ) -> dict[str, int]:
        if not symbols:
            return {}
        rows = await self.db.fetch(_COUNT, Interval(interval).value, list(symbols), ensure_utc(start))
        return {s: int(n) for s, n in rows if n}

    async def symbols_with_bars(self, interval: Interval) -> int:
        row = await self.db.fetchrow(_SYMBOLS, Interval(interval).value)
        return int(row[0]) if row else 0
