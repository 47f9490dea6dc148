"""The :class:`~mds.storage.base.ListingStore` part of the Postgres store (issue 14).

``first_trade_session`` is a column of ``symbol_universe``, so only symbols in the
universe can have one recorded; setting it for another symbol changes nothing (the
ingestor then infers the listing again from the stored bars).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mds.domain.models import Interval, ensure_utc
from mds.storage.postgres.connection import PostgresPool

# ORDER BY ts LIMIT 1 each way: one probe of the primary key (symbol, interval, ts), and on
# a TimescaleDB hypertable one chunk's, where MIN/MAX may visit every chunk.
_EXTENT = (
    "SELECT (SELECT ts FROM candles WHERE symbol = $1 AND interval = $2 ORDER BY ts LIMIT 1),"
    " (SELECT ts FROM candles WHERE symbol = $1 AND interval = $2 ORDER BY ts DESC LIMIT 1)"
)


class PostgresListing:
    """The :class:`~mds.storage.base.ListingStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def series_extent(self, symbol: str, interval: Interval) -> tuple[datetime, datetime] | None:
        row = await self.db.fetchrow(_EXTENT, symbol, Interval(interval).value)
        if row is None or row[0] is None:
            return None
        return row[0], row[1]

    async def first_trade_sessions(self, symbols: Sequence[str] | None = None) -> dict[str, datetime]:
        sql = "SELECT symbol, first_trade_session FROM symbol_universe WHERE first_trade_session IS NOT NULL"
        if symbols is None:
            rows = await self.db.fetch(sql)
        else:
            rows = await self.db.fetch(sql + " AND symbol = ANY($1::text[])", list(symbols))
        return {s: t for s, t in rows}

    async def set_first_trade_session(self, symbol: str, session: datetime | None) -> None:
        await self.db.execute(
            "UPDATE symbol_universe SET first_trade_session = $1 WHERE symbol = $2",
            None if session is None else ensure_utc(session),
            symbol,
        )
