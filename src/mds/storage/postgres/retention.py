"""The :class:`~mds.storage.base.RetentionStore` part of the Postgres store (issue 14)."""

from __future__ import annotations

from datetime import datetime

from mds.domain.models import Interval
from mds.storage.base import RetentionCount
from mds.storage.postgres.connection import PostgresPool


class PostgresRetention:
    """The :class:`~mds.storage.base.RetentionStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def delete_bars_before(self, interval: Interval, cutoff: datetime) -> RetentionCount:
        raise NotImplementedError
