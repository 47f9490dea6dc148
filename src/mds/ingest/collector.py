"""The collector: startup gap check, the sweeper, live workers and backfill workers.

Live and backfill jobs travel on separate queues served by separate workers, so a
backfill storm never delays a live sweep.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from mds.cache import Cache
from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillRecord
from mds.ingest.backfill import Backfiller
from mds.ingest.ingestor import BarIngestor
from mds.ingest.sweeper import Sweeper
from mds.ingest.worker import Worker
from mds.observability.metrics import Metrics
from mds.queue.base import JobQueue
from mds.routing.router import Router
from mds.storage.base import Store
from mds.stream.bus import Bus

log = logging.getLogger(__name__)

LIVE_WORKERS = 4


class Collector:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        router: Router,
        calendar: MarketCalendar,
        clock: Clock,
        metrics: Metrics,
        live_queue: JobQueue,
        backfill_queue: JobQueue,
        cache: Cache | None = None,
        bus: Bus | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.calendar = calendar
        self.live_queue = live_queue
        self.backfill_queue = backfill_queue
        self.tiers: dict[str, Tier] = {}
        self.ingestor = BarIngestor(
            store=store, router=router, calendar=calendar, clock=clock, metrics=metrics, bus=bus
        )
        self.backfiller = Backfiller(
            store=store, queue=backfill_queue, settings=settings, clock=clock, metrics=metrics
        )
        self._worker_args = dict(
            ingestor=self.ingestor,
            backfiller=self.backfiller,
            store=store,
            router=router,
            settings=settings,
            clock=clock,
            metrics=metrics,
            tiers=self.tiers,
            cache=cache,
            bus=bus,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._workers: list[Worker] = []
        self._sweeper: Sweeper | None = None
        self.startup_done = asyncio.Event()

    def update_settings(self, settings: Settings) -> None:
        """Adopt reloaded settings: cadences, batch sizes, retry policy take effect at once."""
        self.settings = settings
        self.backfiller.settings = settings
        self._worker_args["settings"] = settings
        for w in self._workers:
            w.settings = settings
        if self._sweeper is not None:
            self._sweeper.settings = settings

    async def start(self) -> None:
        universe = await self.store.universe()
        self.tiers.update({e.symbol: e.tier for e in universe})
        by_tier: dict[Tier, list[str]] = {t: [] for t in Tier}
        for e in universe:
            by_tier[e.tier].append(e.symbol)

        backfill_workers = sum(self.settings.backfill_concurrency(t) for t in Tier)
        self._workers = [
            Worker(name=f"live-{i}", queue=self.live_queue, **self._worker_args) for i in range(LIVE_WORKERS)
        ] + [
            Worker(name=f"backfill-{i}", queue=self.backfill_queue, **self._worker_args)
            for i in range(backfill_workers)
        ]
        for w in self._workers:
            self._spawn(w.run())
        self._spawn(self._startup(by_tier))
        log.info(
            "collector started: %d symbols, %d live and %d backfill workers",
            len(universe),
            LIVE_WORKERS,
            backfill_workers,
        )

    async def _startup(self, by_tier: dict[Tier, list[str]]) -> None:
        try:
            created = await self.startup_gap_check(by_tier)
            log.info("startup gap check queued %d backfill jobs", len(created))
        finally:
            self.startup_done.set()
        if self.settings.LOCAL_SWEEP_ENABLED and not self.settings.USE_RLC:
            self._sweeper = Sweeper(
                queue=self.live_queue,
                settings=self.settings,
                clock=self.clock,
                calendar=self.calendar,
                symbols_by_tier=by_tier,
            )
            await self._sweeper.run()

    async def startup_gap_check(self, by_tier: dict[Tier, list[str]]) -> list[BackfillRecord]:
        """Queue backfills for every closed bar missing from the lookback windows, T0 first."""
        now = self.clock.now()
        created: list[BackfillRecord] = []
        for tier in Tier:
            cadence = self.settings.cadence(tier)
            plans = []
            if cadence.bars_1m:
                plans.append((Interval.M1, self.settings.BACKFILL_LOOKBACK_DAYS_1M))
            if cadence.eod:
                plans.append((Interval.D1, self.settings.BACKFILL_LOOKBACK_DAYS_1D))
            for interval, days in plans:
                if days <= 0:
                    continue
                start = now - timedelta(days=days)
                for symbol in by_tier[tier]:
                    gaps = await self.ingestor.find_gaps(symbol, interval, start, now)
                    created += await self.backfiller.enqueue_gaps(gaps, tier)
        return created

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        task.add_done_callback(_log_crash)
        self._tasks.append(task)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("collector task crashed", exc_info=task.exception())
