"""The :class:`~mds.storage.base.ListingStore` part of the Sqlite store (issue 14).

``first_trade_session`` is a column of ``symbol_universe`` (epoch seconds, a daily bar's
ts), so only symbols in the universe can have one recorded; setting it for another symbol
changes nothing (the ingestor then infers the listing again from the stored bars).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mds.domain.models import Interval
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

# Two subqueries, not MIN and MAX in one: SQLite turns a lone MIN or MAX into one probe of
# the primary key (symbol, interval, ts), but both together into a scan of the series.
_EXTENT = (
    "SELECT (SELECT MIN(ts) FROM candles WHERE symbol = :sym AND interval = :iv),"
    " (SELECT MAX(ts) FROM candles WHERE symbol = :sym AND interval = :iv)"
)


class SqliteListing:
    """The :class:`~mds.storage.base.ListingStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def series_extent(self, symbol: str, interval: Interval) -> tuple[datetime, datetime] | None:
        params = {"sym": symbol, "iv": Interval(interval).value}
        row = await self.db.on_reader(lambda conn: conn.execute(_EXTENT, params).fetchone())
        if row is None or row[0] is None:
            return None
        return q.from_secs(row[0]), q.from_secs(row[1])

    async def first_trade_sessions(self, symbols: Sequence[str] | None = None) -> dict[str, datetime]:
        sql = "SELECT symbol, first_trade_session FROM symbol_universe WHERE first_trade_session IS NOT NULL"
        params: list[Any] = []
        if symbols is not None:
            sql += " AND symbol IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(symbols)))
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return {s: q.from_secs(t) for s, t in rows}

    async def set_first_trade_session(self, symbol: str, session: datetime | None) -> None:
        params = (None if session is None else q.secs(session), symbol)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE symbol_universe SET first_trade_session = ? WHERE symbol = ?", params)

        await self.db.transaction(run)
