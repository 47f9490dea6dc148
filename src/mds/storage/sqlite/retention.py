"""The :class:`~mds.storage.base.RetentionStore` part of the Sqlite store (issue 14)."""

from __future__ import annotations

from datetime import datetime

from mds.domain.models import Interval
from mds.storage.base import RetentionCount
from mds.storage.sqlite.connection import SqliteConnections


class SqliteRetention:
    """The :class:`~mds.storage.base.RetentionStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def delete_bars_before(self, interval: Interval, cutoff: datetime) -> RetentionCount:
        raise NotImplementedError
