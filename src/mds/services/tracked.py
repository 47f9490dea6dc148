"""The tracked set: what MDS keeps complete, and the daily backfill that keeps it so.

tracked = active index members, plus leavers for ``INDEX_INACTIVE_TRACKED_DAYS`` after
they left, plus held symbols, plus SPY. "new" = tracked symbols holding fewer stored
daily bars than the sessions they traded in the last ``BACKFILL_TRACKED_SESSIONS``.

The set is computed from the store in every mode; with Redis it is also published as the
seeds' sets ``tracked:all`` and ``tracked:new`` for other processes and tools.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.constants import TRACKED_ALL_KEY, TRACKED_NEW_KEY
from mds.domain.clock import Clock
from mds.domain.models import Interval, Tier
from mds.domain.reference import INDEXES, TICKER_PATTERN, TrackedSet, mds_symbol
from mds.errors import InvalidRequest
from mds.ingest.backfill import Backfiller, EnqueueResult
from mds.ingest.scan import scan_gaps
from mds.storage.base import ContinuityStore, CoverageStore, ListingStore, ReferenceStore, UniverseStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

#: Always tracked: the market's benchmark (seed 004).
ALWAYS_TRACKED = frozenset({"SPY"})
_TICKER = re.compile(TICKER_PATTERN)


class TrackedStore(ReferenceStore, UniverseStore, CoverageStore, ListingStore, ContinuityStore, Protocol):
    """What the tracked set needs: membership, holdings, the universe, stored sessions and
    listings, and the gap scan behind its backfills."""


def clean_symbols(raw: Iterable[str], *, field: str = "symbols") -> list[str]:
    """Symbols in MDS's convention, or InvalidRequest naming the first bad one."""
    out = []
    for text in raw:
        if not _TICKER.match(text.strip()):
            raise InvalidRequest(field, f"{text!r} is not a ticker")
        out.append(mds_symbol(text))
    if not out:
        raise InvalidRequest(field, "no symbols given")
    return sorted(set(out))


class TrackedService:
    def __init__(
        self,
        *,
        store: TrackedStore,
        calendar: MarketCalendar,
        clock: Clock,
        settings: Settings,
        redis: Redis | None = None,
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self.settings = settings
        self.redis = redis

    async def tracked_set(self, *, with_new: bool = True) -> TrackedSet:
        """The set; ``with_new=False`` skips counting stored sessions (``new`` is then
        empty), for callers that need only the members (the coverage view)."""
        now = self.clock.now()
        members = await self.store.index_members(active_only=False)
        kept_since = now - timedelta(days=self.settings.INDEX_INACTIVE_TRACKED_DAYS)
        from_indexes = {
            m.symbol
            for m in members
            if m.is_active or (m.became_inactive_at is not None and m.became_inactive_at >= kept_since)
        }
        counts: dict[str, int] = {i: sum(1 for m in members if m.index == i and m.is_active) for i in INDEXES}
        held = {h.symbol for h in await self.store.holdings()}
        everything = sorted(from_indexes | held | ALWAYS_TRACKED)
        new = await self._new(everything) if with_new else []
        return TrackedSet(frozenset(everything), frozenset(new), counts)

    async def _new(self, symbols: Sequence[str]) -> list[str]:
        sessions = self.calendar.closed_sessions(self.clock.now(), self.settings.BACKFILL_TRACKED_SESSIONS)
        if not sessions:
            return []
        stored = await self.store.bar_counts_since(Interval.D1, symbols, sessions[0].open)
        listed = await self.store.first_trade_sessions(symbols)
        out = []
        for s in symbols:
            first = listed.get(s)
            expected = len(sessions) if first is None else sum(1 for x in sessions if x.open >= first)
            if stored.get(s, 0) < expected:
                out.append(s)
        return out

    async def refresh(self) -> TrackedSet:
        """Compute the set, make sure every tracked symbol is in the universe (new ones at
        T2), and publish the set to Redis (when there is one)."""
        tracked = await self.tracked_set()
        await self.store.ensure_symbols(sorted(tracked.all), tier=Tier.T2, now=self.clock.now())
        if self.redis is not None:
            await publish_sets(self.redis, tracked)
        return tracked

    async def hold(self, symbols: Sequence[str], *, note: str = "") -> list[str]:
        """Add holdings (and their symbols to the universe); returns the newly held ones."""
        wanted = clean_symbols(symbols)
        added = await self.store.add_holdings(wanted, note=note, now=self.clock.now())
        await self.store.ensure_symbols(wanted, tier=Tier.T2, now=self.clock.now())
        return added

    async def release(self, symbols: Sequence[str]) -> list[str]:
        return await self.store.remove_holdings(clean_symbols(symbols))


async def publish_sets(redis: Redis, tracked: TrackedSet) -> None:
    """Replace ``tracked:all`` and ``tracked:new`` atomically (build aside, then RENAME)."""
    async with redis.pipeline(transaction=True) as pipe:
        for key, members in ((TRACKED_ALL_KEY, tracked.all), (TRACKED_NEW_KEY, tracked.new)):
            if members:
                pipe.delete(f"{key}:building")
                pipe.sadd(f"{key}:building", *sorted(members))
                pipe.rename(f"{key}:building", key)
            else:
                pipe.delete(key)
        await pipe.execute()


async def queue_daily_backfill(
    symbols: Sequence[str],
    *,
    store: TrackedStore,
    calendar: MarketCalendar,
    clock: Clock,
    backfiller: Backfiller,
    sessions: int,
) -> EnqueueResult:
    """Queue what is missing of the last ``sessions`` daily bars of ``symbols``, per tier."""
    now = clock.now()
    closed = calendar.closed_sessions(now, sessions)
    if not closed or not symbols:
        return EnqueueResult([], [], [])
    gaps = await scan_gaps(
        store, calendar, symbols=list(symbols), interval=Interval.D1, start=closed[0].open, end=now, now=now
    )
    tiers = {e.symbol: e.tier for e in await store.universe(active_only=False)}
    return await backfiller.enqueue_gaps_by_tier(gaps, tiers)
