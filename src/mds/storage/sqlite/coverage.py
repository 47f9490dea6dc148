"""The :class:`~mds.storage.base.CoverageStore` part of the Sqlite store (issue 14)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mds.domain.models import Interval
from mds.storage.sqlite.connection import SqliteConnections


class SqliteCoverage:
    """The :class:`~mds.storage.base.CoverageStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def last_bar_times(self, interval: Interval, symbols: Sequence[str]) -> dict[str, datetime]:
        raise NotImplementedError

    async def bar_counts_since(
        self, interval: Interval, symbols: Sequence[str], start: datetime
    ) -> dict[str, int]:
        raise NotImplementedError

    async def symbols_with_bars(self, interval: Interval) -> int:
        raise NotImplementedError
