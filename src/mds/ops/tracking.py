"""The scheduler's tracking loops: weekly index refresh, nightly tracked-set build and backfill.

Seed 004's ``refresh_index_constituents`` (weekly), ``update_tracked_symbol_cache`` and
``backfill_new_tracked`` (nightly), run on the service clock by the leading scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Capability
from mds.domain.reference import TrackedSet
from mds.ingest.backfill import Backfiller
from mds.routing.router import Router
from mds.services.history5m import backfill_5m
from mds.services.indexes import IndexRefresher
from mds.services.tracked import TrackedService, TrackedStore, queue_daily_backfill

log = logging.getLogger(__name__)

#: Clock seconds between tracked-set builds (and backfills of tracked:new and of 5m history).
TRACKED_REFRESH_SEC = 86_400.0
#: Refresh records a pass reads to find the newest applied one (a few passes of every index).
REFRESHES_LOOKED_AT = 20
#: Wall seconds a pass waits for its backfills before the coverage snapshot.
SETTLE_MAX_SEC = 600.0
#: Symbols per batch of the nightly 5m backfill (the seed's route default).
BACKFILL_5M_BATCH = 50


class TrackingTasks:
    def __init__(
        self,
        *,
        indexes: IndexRefresher,
        tracked: TrackedService,
        store: TrackedStore,
        calendar: MarketCalendar,
        clock: Clock,
        backfiller: Backfiller,
        router: Router,
        settings: Settings,
        after_pass: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.indexes = indexes
        self.tracked = tracked
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self.backfiller = backfiller
        self.router = router
        self.settings = settings
        #: Run after each pass (the coverage snapshot), so views see the new tracked set at once.
        self.after_pass = after_pass

    async def refresh_indexes_if_due(self) -> bool:
        """Refresh every index when none was applied within INDEX_REFRESH_SEC. A failed or
        refused refresh does not count: the next pass (a day later) tries again."""
        recent = await self.store.index_refreshes(limit=REFRESHES_LOOKED_AT)
        last = max((r.started_at for r in recent if r.applied), default=None)
        if last is not None and (self.clock.now() - last).total_seconds() < self.settings.INDEX_REFRESH_SEC:
            return False
        for r in await self.indexes.refresh_all():
            log.info(
                "index %s refresh: applied=%s fetched=%d inserted=%d reactivated=%d inactivated=%d via %s",
                r.index,
                r.applied,
                r.fetched,
                r.inserted,
                r.reactivated,
                r.inactivated,
                r.provider_used or "-",
            )
        return True

    async def backfill_new_tracked(self) -> TrackedSet:
        """Build the tracked set, publish it, and queue the daily history ``tracked:new`` lacks."""
        tracked = await self.tracked.refresh()
        if tracked.new:
            result = await queue_daily_backfill(
                sorted(tracked.new),
                store=self.store,
                calendar=self.calendar,
                clock=self.clock,
                backfiller=self.backfiller,
                sessions=self.settings.BACKFILL_TRACKED_SESSIONS,
            )
            log.info(
                "tracked: %d symbols, %d new; queued %d daily backfill jobs",
                len(tracked.all),
                len(tracked.new),
                len(result.created),
            )
        return tracked

    async def backfill_5m_tracked(self) -> None:
        """Seed 004's nightly ``backfill_5m_last_n_days``: native 5m history for the tracked
        symbols that have no 1m series (those roll 5m up from 1m). Nothing is queued while
        no provider serves 5m bars: such jobs could only wait."""
        if not self.router.order(Capability.BARS_5M):
            log.info("5m history: no provider routable for bars_5m (POLICY_BARS_5M); nothing queued")
            return
        tracked = await self.tracked.tracked_set(with_new=False)
        report = await backfill_5m(
            symbols=sorted(tracked.all),
            n_days=self.settings.BACKFILL_LOOKBACK_DAYS_5M,
            batch_size=BACKFILL_5M_BATCH,
            backfiller=self.backfiller,
            store=self.store,
            clock=self.clock,
            calendar=self.calendar,
        )
        log.info(
            "5m history: %d tracked, %d with a 1m series skipped, %d jobs queued",
            report["symbols"],
            report["skipped_with_1m"],
            report["jobs_created"],
        )

    async def _settle(self) -> None:
        """Let the backfills a pass queued land (up to SETTLE_MAX_SEC of wall time) before
        ``after_pass`` looks: the snapshot then shows what the pass achieved. Bounded, since
        in a scaled-out deployment other processes run the jobs and this one never idles."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.backfiller.wait_idle(), timeout=SETTLE_MAX_SEC)

    async def run(self) -> None:
        while True:
            steps: list[Callable[[], Awaitable[object]]] = [
                self.refresh_indexes_if_due,
                self.backfill_new_tracked,
                self.backfill_5m_tracked,
            ]
            if self.after_pass is not None:
                steps += [self._settle, self.after_pass]
            for step in steps:
                try:
                    await step()
                except Exception:  # the loop must outlive one bad pass; the next one retries
                    log.exception("tracking step %s failed", getattr(step, "__name__", step))
            await self.clock.sleep(min(TRACKED_REFRESH_SEC, self.settings.INDEX_REFRESH_SEC))
