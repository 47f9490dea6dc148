"""The :class:`~mds.storage.base.CoverageStore` part of the Sqlite store (issue 14).

Every query walks the primary key (symbol, interval, ts) of the ``WITHOUT ROWID`` candles
table: a lone MAX(ts) per series is one probe, a count since a time one range of it, and
the distinct symbols are found by skipping from one symbol to the next (a loose index
scan), so none of them reads a symbol's bars one by one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from mds.domain.models import Interval
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

# A correlated MAX per symbol: SQLite answers a lone MAX over a key prefix with one probe.
_LAST = (
    "SELECT value, (SELECT MAX(ts) FROM candles WHERE symbol = value AND interval = :iv)"
    " FROM json_each(:syms)"
)
_COUNT = (
    "SELECT value, (SELECT COUNT(*) FROM candles WHERE symbol = value AND interval = :iv AND ts >= :start)"
    " FROM json_each(:syms)"
)
# Loose index scan: each step seeks the next symbol after the last one, then one probe asks
# whether that symbol holds a bar of the interval.
_SYMBOLS = """
WITH RECURSIVE syms(s) AS (
    SELECT MIN(symbol) FROM candles
    UNION ALL
    SELECT (SELECT MIN(symbol) FROM candles WHERE symbol > syms.s) FROM syms WHERE syms.s IS NOT NULL
)
SELECT COUNT(*) FROM syms
WHERE s IS NOT NULL AND EXISTS (SELECT 1 FROM candles WHERE symbol = syms.s AND interval = :iv)
"""


class SqliteCoverage:
    """The :class:`~mds.storage.base.CoverageStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def last_bar_times(self, interval: Interval, symbols: Sequence[str]) -> dict[str, datetime]:
        if not symbols:
            return {}
        params = {"iv": Interval(interval).value, "syms": json.dumps(list(symbols))}
        rows = await self.db.on_reader(lambda conn: conn.execute(_LAST, params).fetchall())
        return {s: q.from_secs(t) for s, t in rows if t is not None}

    async def bar_counts_since(
        self, interval: Interval, symbols: Sequence[str], start: datetime
    ) -> dict[str, int]:
        if not symbols:
            return {}
        # ts >= start for whole-second ts is ts >= ceil(start).
        first = -(-q.micros(start) // 1_000_000)
        params = {"iv": Interval(interval).value, "syms": json.dumps(list(symbols)), "start": first}
        rows = await self.db.on_reader(lambda conn: conn.execute(_COUNT, params).fetchall())
        return {s: int(n) for s, n in rows if n}

    async def symbols_with_bars(self, interval: Interval) -> int:
        params = {"iv": Interval(interval).value}
        row = await self.db.on_reader(lambda conn: conn.execute(_SYMBOLS, params).fetchone())
        return int(row[0]) if row else 0
