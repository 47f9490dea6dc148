"""The collector: the sweeper, live workers, backfill workers and the gap scans.

Live first: the sweeper starts with the service, and the start-up gap check runs beside
it, never before it. Live and backfill jobs travel on separate queues served by separate
workers (LIVE_WORKERS of them for live jobs), live workers hand the holes they find to
``GapHandoff`` instead of enqueueing them inline, and backfill work runs marked as such so
the capacity reserved for live work stays free (``mds.domain.work``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from typing import Any

from opentelemetry.trace import Tracer

from mds.cache import Cache
from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Interval, Tier
from mds.ingest.backfill import Backfiller, EnqueueResult
from mds.ingest.dispatch import Dispatcher
from mds.ingest.handoff import GapHandoff
from mds.ingest.ingestor import BarIngestor
from mds.ingest.live_lag import LiveLagTracker
from mds.ingest.scan import scan_gaps
from mds.ingest.streaming import BarStreamer
from mds.ingest.sweeper import Sweeper
from mds.ingest.worker import Worker
from mds.observability.metrics import Metrics
from mds.ops.leader import LeaderLock
from mds.ops.slo import SloMonitor
from mds.queue.base import JobQueue
from mds.routing.router import Router
from mds.services.bar_cache import SeriesGenerations
from mds.storage.base import Store
from mds.stream.publisher import StreamPublisher

log = logging.getLogger(__name__)


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
        backfill_queues: Mapping[Tier, JobQueue],
        cache: Cache | None = None,
        publisher: StreamPublisher | None = None,
        shared_queues: bool = False,
        live_lag: LiveLagTracker | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.settings = settings
        self.tracer = tracer
        self.store = store
        self.clock = clock
        self.calendar = calendar
        self.metrics = metrics
        self.live_queue = live_queue
        self.backfill_queues = backfill_queues
        self.tiers: dict[str, Tier] = {}
        self.ingestor = BarIngestor(
            store=store,
            router=router,
            calendar=calendar,
            clock=clock,
            metrics=metrics,
            streamer=BarStreamer(
                publisher=publisher, store=store, calendar=calendar, max_bars=settings.WS_REPLAY_MAX_BARS
            )
            if publisher is not None
            else None,
            generations=SeriesGenerations(cache) if cache is not None else None,
            confirm_empty_answers=settings.GAP_CONFIRM_EMPTY_ANSWERS,
            live_lag=live_lag,
        )
        self.backfiller = Backfiller(
            store=store,
            queues=backfill_queues,
            settings=settings,
            clock=clock,
            metrics=metrics,
            shared=shared_queues,
        )
        self.handoff = GapHandoff(self.backfiller)
        self._router = router
        self._cache = cache
        self._publisher = publisher
        self._tasks: list[asyncio.Task[None]] = []
        #: More loops the leading scheduler runs beside the scans (coverage, retention,
        #: tracking); each is a coroutine function that loops until cancelled.
        self.housekeeping: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._workers: list[Worker] = []
        self._sweeper: Sweeper | None = None
        self.dispatcher: Dispatcher | None = None
        self.startup_done = asyncio.Event()

    def _new_worker(self, name: str) -> Worker:
        """A worker on the live queue sharing this collector's parts (settings as of now)."""
        return Worker(
            name=name,
            queue=self.live_queue,
            ingestor=self.ingestor,
            backfiller=self.backfiller,
            store=self.store,
            router=self._router,
            settings=self.settings,
            clock=self.clock,
            metrics=self.metrics,
            tiers=self.tiers,
            cache=self._cache,
            publisher=self._publisher,
            handoff=self.handoff,
            tracer=self.tracer,
        )

    def update_settings(self, settings: Settings) -> None:
        """Adopt reloaded settings: cadences, batch sizes, retry policy take effect at once."""
        self.settings = settings
        self.backfiller.settings = settings
        for w in self._workers:
            w.settings = settings
        if self._sweeper is not None:
            self._sweeper.settings = settings
        if self.dispatcher is not None:
            self.dispatcher.settings = settings

    async def start(
        self,
        roles: frozenset[str] = frozenset({"api", "worker", "scheduler"}),
        *,
        leader: LeaderLock | None = None,
        restore: bool = True,
    ) -> None:
        """Start what ``roles`` ask for in this process.

        ``worker``: live workers and the backfill dispatcher. ``scheduler``: the start-up
        scan, sweeper, periodic scan and SLO monitor, only while holding ``leader`` (if
        given). ``restore`` re-queues active backfills from the store (in-process queues
        only: Redis queues keep their jobs).
        """
        universe = await self.store.universe()
        self.tiers.update({e.symbol: e.tier for e in universe})
        by_tier: dict[Tier, list[str]] = {t: [] for t in Tier}
        for e in universe:
            by_tier[e.tier].append(e.symbol)
        restored = 0
        if "worker" in roles:
            self._workers = [self._new_worker(f"live-{i}") for i in range(self.settings.LIVE_WORKERS)]
            backfill_worker = self._new_worker("backfill")
            self.dispatcher = Dispatcher(self.backfiller, backfill_worker.process, self.settings, self.clock)
            for w in self._workers:
                self._spawn(w.run())
            self._spawn(self.handoff.run())
            self._workers.append(backfill_worker)
            if restore:
                restored = await self.backfiller.restore()
            self._spawn(self.dispatcher.run())
        if "scheduler" in roles:
            self._spawn(self._lead(by_tier, leader))
        else:
            self.startup_done.set()  # nothing to wait for here: another process schedules
        log.info(
            "collector started (%s): %d symbols, %d backfill jobs restored",
            ",".join(sorted(roles)),
            len(universe),
            restored,
        )

    async def _lead(self, by_tier: dict[Tier, list[str]], leader: LeaderLock | None) -> None:
        """Schedule while leading; on losing the lock, stop and wait as a standby again."""
        while True:
            if leader is not None:
                await leader.acquire()
            work = asyncio.get_running_loop().create_task(self._schedule(by_tier))
            if leader is None:
                await work
                return
            keep = asyncio.get_running_loop().create_task(leader.keep())
            try:
                await asyncio.wait({work, keep}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (work, keep):
                    t.cancel()
                await asyncio.gather(work, keep, return_exceptions=True)
                await leader.release()

    async def _schedule(self, by_tier: dict[Tier, list[str]]) -> None:
        """Sweeper first, then the start-up gap check beside it, the SLO monitor and scans."""
        loops = []
        if self.settings.LOCAL_SWEEP_ENABLED and not self.settings.USE_RLC:
            self._sweeper = Sweeper(
                queue=self.live_queue,
                settings=self.settings,
                clock=self.clock,
                calendar=self.calendar,
                symbols_by_tier=by_tier,
            )
            loops.append(self._sweeper.run())
        self.slo = SloMonitor(
            store=self.store,
            calendar=self.calendar,
            clock=self.clock,
            settings=self.settings,
            metrics=self.metrics,
            symbols_by_tier=by_tier,
        )
        loops += [self._startup_scan(by_tier), self.slo.run(), self._periodic_scan(by_tier)]
        loops += [loop() for loop in self.housekeeping]
        await asyncio.gather(*loops)

    async def _startup_scan(self, by_tier: dict[Tier, list[str]]) -> None:
        try:
            result = await self.startup_gap_check(by_tier)
            log.info(
                "startup gap check queued %d backfill jobs (%d merged, %d refused)",
                len(result.created),
                len(result.merged_into),
                len(result.refused),
            )
        except Exception:  # the periodic scan finds the same holes again
            log.exception("startup gap check failed")
        finally:
            self.startup_done.set()

    async def startup_gap_check(self, by_tier: Mapping[Tier, list[str]]) -> EnqueueResult:
        """On start: queue backfills for every closed bar missing from the lookback windows."""
        return await self.scan_once(by_tier)

    async def scan_once(self, by_tier: Mapping[Tier, list[str]]) -> EnqueueResult:
        """Full scan of the lookback windows, every tier, queueing what is missing (T0 first)."""
        now = self.clock.now()
        total = EnqueueResult([], [], [])
        for tier, interval, days in self._plans():
            symbols = by_tier.get(tier, [])
            if not symbols or days <= 0:
                continue
            gaps = await scan_gaps(
                self.store,
                self.calendar,
                symbols=symbols,
                interval=interval,
                start=now - timedelta(days=days),
                end=now,
                now=now,
            )
            if gaps:
                self.metrics.gaps_found_total.labels(interval=interval.value).inc(len(gaps))
            r = await self.backfiller.enqueue_gaps(gaps, tier)
            total.created += r.created
            total.merged_into += r.merged_into
            total.refused += r.refused
        return total

    def _plans(self) -> list[tuple[Tier, Interval, int]]:
        out = []
        for tier in Tier:
            cadence = self.settings.cadence(tier)
            if cadence.bars_1m:
                out.append((tier, Interval.M1, self.settings.BACKFILL_LOOKBACK_DAYS_1M))
            if cadence.eod:
                out.append((tier, Interval.D1, self.settings.BACKFILL_LOOKBACK_DAYS_1D))
        return out

    async def _periodic_scan(self, by_tier: Mapping[Tier, list[str]]) -> None:
        await self.startup_done.wait()
        while True:
            await self.clock.sleep(self.settings.GAP_SCAN_INTERVAL_SEC)
            try:
                r = await self.scan_once(by_tier)
                if r.created or r.refused:
                    log.info("periodic gap scan: %d queued, %d refused", len(r.created), len(r.refused))
            except Exception:  # keep scanning after a bad pass
                log.exception("periodic gap scan failed")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
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
