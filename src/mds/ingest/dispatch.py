"""Backfill dispatch: strict tier priority, per-tier concurrency, a global dispatch rate.

The ``Dispatcher`` hands jobs from the Backfiller's tier queues to workers so that no T1
job starts while a T0 job waits, each tier runs at most BACKFILL_MAX_CONCURRENCY_T* jobs at
once and all tiers together start at most BACKFILL_DISPATCH_RATE_PER_SEC per second (clock
time). A backlog therefore drains T0 first and never crowds out live ingestion, which has
its own queue and workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from mds.aio import honour_cancel
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Tier
from mds.ingest.backfill import Backfiller
from mds.queue.base import Delivery

log = logging.getLogger(__name__)

Handler = Callable[[Delivery], Awaitable[None]]


class Dispatcher:
    """Runs ``handler`` on the Backfiller's queued jobs, T0 first, within the tier limits."""

    def __init__(self, backfiller: Backfiller, handler: Handler, settings: Settings, clock: Clock) -> None:
        self.backfiller = backfiller
        self.handler = handler
        self.settings = settings
        self.clock = clock
        self.running: dict[Tier, int] = {t: 0 for t in Tier}
        self._next_at: datetime | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        try:
            while True:
                delivery = await self._next()
                if delivery is None:
                    self.backfiller.wakeup.clear()
                    # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that
                    # lands as the wait completes, and this loop then never stops.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await self.backfiller.wakeup.wait()
                    honour_cancel()
                    continue
                await self._pace()
                tier = delivery.job.priority
                self.running[tier] += 1
                task = asyncio.get_running_loop().create_task(self._run_one(delivery, tier))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _next(self) -> Delivery | None:
        for tier in Tier:
            queue = self.backfiller.queues[tier]
            # Jobs of this tier still to run: queued or waiting out a retry delay, in this
            # process (its index) or any other (the queue's backlog).
            waiting = max(self.backfiller.queued(tier), await queue.backlog())
            if self.running[tier] >= self.settings.backfill_concurrency(tier):
                if waiting > 0:
                    return None  # strict priority: lower tiers wait while this one is full
                continue
            # get() rather than depth(): a queue may hold retries that only become due now.
            delivery = await queue.get(timeout=0)
            if delivery is not None:
                return delivery
            if self.backfiller.queued(tier) > 0 or await queue.backlog() > 0:
                return None  # this tier's retries come back soon; lower tiers wait for them
        return None

    async def _pace(self) -> None:
        rate = self.settings.BACKFILL_DISPATCH_RATE_PER_SEC
        now = self.clock.now()
        if self._next_at is not None and now < self._next_at:
            await self.clock.sleep((self._next_at - now).total_seconds())
            now = self.clock.now()
        base = now if self._next_at is None or self._next_at < now else self._next_at
        self._next_at = base + timedelta(seconds=1.0 / rate)

    async def _run_one(self, delivery: Delivery, tier: Tier) -> None:
        try:
            await self.handler(delivery)
        except Exception:  # a bug in one job must not stop the dispatcher
            log.exception("backfill job %s crashed", delivery.job.job_id)
        finally:
            self.running[tier] -= 1
            self.backfiller.wakeup.set()
