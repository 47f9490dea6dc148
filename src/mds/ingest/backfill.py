"""Backfill jobs: persisted in backfill_jobs, chunked, de-duplicated, put on a tier queue.

This is the first cut the foundation needs (gap fill on start and on cursor jumps);
per-tier caps, merging of overlapping ranges and the DLQ endpoints build on it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.jobs import BackfillJob, TimeWindow
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillRecord
from mds.ingest.gaps import Gap
from mds.observability.metrics import Metrics
from mds.queue.base import JobQueue
from mds.storage.base import Store

log = logging.getLogger(__name__)

_DAILY_CHUNK = timedelta(days=366)


class Backfiller:
    def __init__(
        self, *, store: Store, queue: JobQueue, settings: Settings, clock: Clock, metrics: Metrics
    ) -> None:
        self.store = store
        self.queue = queue
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        # (symbol, interval, start, end) of jobs queued or running, so a gap seen again
        # by a live job while its backfill waits is not queued twice.
        self._active: set[tuple[str, Interval, datetime, datetime]] = set()

    def chunks(self, interval: Interval, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        step = (
            _DAILY_CHUNK
            if interval is Interval.D1
            else timedelta(minutes=self.settings.BACKFILL_CHUNK_MINUTES)
        )
        out = []
        t = start
        while t < end:
            out.append((t, min(t + step, end)))
            t += step
        return out

    async def enqueue(
        self, symbol: str, interval: Interval, start: datetime, end: datetime, tier: Tier
    ) -> list[BackfillRecord]:
        """Persist and queue the range in chunks; ranges already queued are skipped."""
        created = []
        for a, b in self.chunks(interval, start, end):
            if self._covered(symbol, interval, a, b):
                continue
            rec = await self.store.create_backfill(symbol, interval, a, b, tier, now=self.clock.now())
            self._active.add((symbol, interval, a, b))
            await self.queue.put(
                BackfillJob(
                    symbol=symbol,
                    interval=interval,
                    time_window=TimeWindow(start=a, end=b),
                    priority=tier,
                    backfill_id=rec.id,
                )
            )
            self.metrics.backfill_jobs_enqueued_total.labels(tier=tier.value).inc()
            created.append(rec)
        self.metrics.backfill_queue_depth.set(await self.queue.depth())
        return created

    async def enqueue_gaps(self, gaps: list[Gap], tier: Tier) -> list[BackfillRecord]:
        out: list[BackfillRecord] = []
        for gap in gaps:
            out += await self.enqueue(gap.symbol, gap.interval, gap.start, gap.end, tier)
        return out

    def finished(self, job: BackfillJob) -> None:
        self._active.discard((job.symbol, job.interval, job.time_window.start, job.time_window.end))

    def _covered(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> bool:
        return any(s == symbol and i is interval and a <= start and end <= b for s, i, a, b in self._active)

    def retry_delay(self, attempts: int, jitter: float) -> float:
        """Clock seconds before attempt ``attempts + 1``: exponential, capped, jittered."""
        s = self.settings
        base = min(s.BACKFILL_RETRY_BASE_SECONDS * 2.0 ** max(attempts - 1, 0), s.BACKFILL_RETRY_MAX_SECONDS)
        return base * (0.5 + jitter)
