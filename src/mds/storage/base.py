"""The Store protocol: everything MDS persists, behind one small async interface.

Point-in-time rules every implementation keeps (DESIGN.md):
- a stored bar is never overwritten in place;
- writing a bar identical to the stored one (same OHLCV, same or weaker status) is a no-op;
- writing a bar whose values differ, or a ``final`` over a ``provisional`` one, keeps the
  old one as history and makes the new one the current revision, stamped ``as_of``;
- ``read_bars(..., as_of=T)`` returns exactly the revisions that were current at T, and
  reads without ``as_of`` touch only current revisions (history costs them nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from mds.domain.models import Bar, Interval, Quote, Tier
from mds.domain.records import (
    BackfillRecord,
    BackfillStatus,
    Cursor,
    UniverseEntry,
    WriteResult,
)


class Store(Protocol):
    # lifecycle
    async def open(self) -> None:
        """Connect and apply pending migrations."""
        ...

    async def close(self) -> None: ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the versions applied (empty when up to date)."""
        ...

    async def ping(self) -> None:
        """Raise StorageError when the store cannot answer."""
        ...

    # bars
    async def write_bars(self, bars: Sequence[Bar], *, as_of: datetime) -> WriteResult: ...

    async def read_bars(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        *,
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        """Bars with ``start <= ts < end`` in time order; ``limit`` keeps the newest N."""
        ...

    async def bar_timestamps(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        """Epoch seconds of the current bars in range, ascending (cheap; for gap checks)."""
        ...

    async def latest_bar(self, symbol: str, interval: Interval) -> Bar | None: ...

    async def bar_revisions(self, symbol: str, interval: Interval, ts: datetime) -> list[Bar]:
        """Every revision of one bar, oldest first, each with the ``as_of`` it was learned."""
        ...

    # quotes
    async def write_quotes(self, quotes: Sequence[Quote]) -> int: ...

    async def latest_quote(self, symbol: str) -> Quote | None: ...

    # universe
    async def upsert_universe(
        self, entries: Sequence[UniverseEntry], *, version_tag: str, source_meta: dict[str, Any]
    ) -> None:
        """Replace the universe with ``entries`` (others become inactive) and record a version."""
        ...

    async def universe(
        self, *, tier: Tier | None = None, active_only: bool = True
    ) -> list[UniverseEntry]: ...

    async def get_symbol(self, symbol: str) -> UniverseEntry | None: ...

    # cursors
    async def get_cursor(self, symbol: str, interval: Interval, source: str) -> Cursor | None: ...

    async def advance_cursor(
        self, symbol: str, interval: Interval, source: str, ts: datetime, *, now: datetime
    ) -> None:
        """Move the cursor to ``ts`` if that is later than where it stands; never backwards."""
        ...

    # backfill jobs (seed table backfill_jobs)
    async def create_backfill(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        priority: Tier,
        *,
        now: datetime,
    ) -> BackfillRecord: ...

    async def update_backfill(
        self,
        job_id: int,
        *,
        status: BackfillStatus,
        now: datetime,
        attempts: int | None = None,
        last_error: str | None = None,
    ) -> None: ...

    async def get_backfill(self, job_id: int) -> BackfillRecord | None: ...

    async def list_backfills(
        self, *, status: BackfillStatus | None = None, tier: Tier | None = None, limit: int = 100
    ) -> list[BackfillRecord]: ...
