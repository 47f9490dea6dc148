"""The :class:`~mds.storage.base.ListingStore` part of the Postgres store (issue 14)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mds.domain.models import Interval
from mds.storage.postgres.connection import PostgresPool


class PostgresListing:
    """The :class:`~mds.storage.base.ListingStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def series_extent(self, symbol: str, interval: Interval) -> tuple[datetime, datetime] | None:
        raise NotImplementedError

    async def first_trade_sessions(self, symbols: Sequence[str] | None = None) -> dict[str, datetime]:
        raise NotImplementedError

    async def set_first_trade_session(self, symbol: str, session: datetime | None) -> None:
        raise NotImplementedError
