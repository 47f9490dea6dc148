"""Backfill orchestration: persist, merge, cap and queue ranges; dispatch them by tier.

Hand-written: the policy is MDS's own. Ranges are persisted in ``backfill_jobs`` and
queued per tier. A new range is cut down to what no active job already covers
(duplicates are refused), merged into an adjacent or overlapping queued job when the
union still fits one chunk, and otherwise queued in chunks of BACKFILL_CHUNK_MINUTES.
At a tier's cap (BACKFILL_MAX_QUEUE_T*) new work is refused and counted; the oldest
jobs keep their place, and the gap stays detectable for the next scan. The cap counts
the tier queue's backlog (waiting jobs and retries sitting out their delay, in any
process) and the queue applies it atomically, so processes sharing Redis queues cannot
together overshoot it; retries of admitted jobs are never refused.

The ``Dispatcher`` hands jobs to workers with strict priority (no T1 job starts while a
T0 job waits), per-tier concurrency and a global dispatch rate, so a backlog drains T0
first and never crowds out live ingestion, which has its own queue and workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.jobs import BackfillJob, TimeWindow
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillRecord, BackfillStatus
from mds.ingest.gaps import Gap
from mds.observability.metrics import Metrics
from mds.queue.base import Delivery, JobQueue
from mds.storage.base import Store

log = logging.getLogger(__name__)

_DAILY_CHUNK = timedelta(days=366)


@dataclass(frozen=True)
class ActiveJob:
    id: int
    symbol: str
    interval: Interval
    start: datetime
    end: datetime
    tier: Tier
    running: bool
    created_at: datetime


@dataclass
class EnqueueResult:
    created: list[BackfillRecord]
    merged_into: list[int]
    refused: list[str]  # reasons, one per refused piece: "duplicate" or "cap"


def subtract(
    a: datetime, b: datetime, covered: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """The parts of [a, b) that no range in ``covered`` contains."""
    pieces = [(a, b)]
    for c0, c1 in sorted(covered):
        out = []
        for p0, p1 in pieces:
            if c1 <= p0 or p1 <= c0:
                out.append((p0, p1))
                continue
            if p0 < c0:
                out.append((p0, c0))
            if c1 < p1:
                out.append((c1, p1))
        pieces = out
    return pieces


def _active_job(rec: BackfillRecord) -> ActiveJob:
    return ActiveJob(
        rec.id,
        rec.symbol,
        rec.interval,
        rec.start,
        rec.end,
        rec.priority,
        rec.status is BackfillStatus.RUNNING,
        rec.created_at,
    )


class Backfiller:
    def __init__(
        self,
        *,
        store: Store,
        queues: Mapping[Tier, JobQueue],
        settings: Settings,
        clock: Clock,
        metrics: Metrics,
        shared: bool = False,
    ) -> None:
        self.store = store
        self.queues = queues
        # Shared queues (Redis): other processes run and finish what this one queues, so it
        # tracks only the jobs it is running itself; the queue and the store know the rest.
        self.shared = shared
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self._active: dict[int, ActiveJob] = {}
        self.wakeup = asyncio.Event()  # the dispatcher's: something may be ready
        self._changed = asyncio.Event()  # wait_idle's: a job finished

    # -- enqueueing ----------------------------------------------------------------
    def chunk_size(self, interval: Interval) -> timedelta:
        if interval is Interval.D1:
            return _DAILY_CHUNK
        return timedelta(minutes=self.settings.BACKFILL_CHUNK_MINUTES)

    def chunks(self, interval: Interval, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        step = self.chunk_size(interval)
        out = []
        t = start
        while t < end:
            out.append((t, min(t + step, end)))
            t += step
        return out

    async def enqueue(
        self, symbol: str, interval: Interval, start: datetime, end: datetime, tier: Tier
    ) -> EnqueueResult:
        result = EnqueueResult([], [], [])
        # The store, not this process's memory, says what is active: an API process, the
        # scheduler and the workers may all enqueue against the same backlog.
        same = [_active_job(r) for r in await self.store.active_backfills(symbol, interval)]
        pieces = subtract(start, end, [(j.start, j.end) for j in same])
        if not pieces:
            result.refused.append("duplicate")
            return result
        step = self.chunk_size(interval)
        cap = self.settings.backfill_max_queue(tier)
        for a, b in pieces:
            merged = await self._try_merge(same, a, b, step)
            if merged is not None:
                result.merged_into.append(merged)
                continue
            for c0, c1 in self.chunks(interval, a, b):
                # Early refusal, so a full tier costs no row; the capped put below is what
                # makes the cap exact.
                if max(self.queued(tier), await self.queues[tier].backlog()) >= cap:
                    self._refuse(result, tier)
                    continue
                rec = await self.store.create_backfill(symbol, interval, c0, c1, tier, now=self.clock.now())
                if not await self._queue(rec, cap=cap):
                    # Another producer took the last place after the check. The row had to
                    # exist first (the job carries its id); closed, it never counts as
                    # active, so it neither blocks this range nor is queued on restore.
                    await self.store.update_backfill(
                        rec.id,
                        status=BackfillStatus.DONE,
                        now=self.clock.now(),
                        last_error=f"refused: {tier.value} backfill queue at its cap ({cap})",
                    )
                    self._refuse(result, tier)
                    continue
                result.created.append(rec)
                self.metrics.backfill_jobs_enqueued_total.labels(tier=tier.value).inc()
        if result.refused.count("cap"):
            log.warning(
                "backfill cap for %s reached: %d range(s) of %s refused",
                tier.value,
                result.refused.count("cap"),
                symbol,
            )
        self._publish_depth()
        return result

    def _refuse(self, result: EnqueueResult, tier: Tier) -> None:
        result.refused.append("cap")
        self.metrics.backfill_jobs_dropped_total.labels(tier=tier.value).inc()

    async def enqueue_gaps(self, gaps: list[Gap], tier: Tier) -> EnqueueResult:
        total = EnqueueResult([], [], [])
        for gap in gaps:
            r = await self.enqueue(gap.symbol, gap.interval, gap.start, gap.end, tier)
            total.created += r.created
            total.merged_into += r.merged_into
            total.refused += r.refused
        return total

    async def _try_merge(
        self, same: list[ActiveJob], a: datetime, b: datetime, step: timedelta
    ) -> int | None:
        for j in same:
            if j.running or j.end < a or b < j.start:  # running, or neither overlapping nor adjacent
                continue
            lo, hi = min(j.start, a), max(j.end, b)
            if hi - lo > step:
                continue
            if not await self.store.update_backfill_range(j.id, lo, hi, now=self.clock.now()):
                continue  # started meanwhile (another process dispatched it)
            if j.id in self._active:
                self._active[j.id] = replace(self._active[j.id], start=lo, end=hi)
            return j.id
        return None

    async def _queue(self, rec: BackfillRecord, attempts: int = 0, cap: int | None = None) -> bool:
        """Queue the record's job; with ``cap``, only below it (False: refused, nothing kept)."""
        job = BackfillJob(
            symbol=rec.symbol,
            interval=rec.interval,
            time_window=TimeWindow(start=rec.start, end=rec.end),
            priority=rec.priority,
            backfill_id=rec.id,
            attempts=attempts,
        )
        queue = self.queues[rec.priority]
        if not self.shared:
            # Checked and recorded with no await in between, so concurrent enqueues in
            # this process see each other (this index also counts delivered, not started).
            if cap is not None and self.queued(rec.priority) >= cap:
                return False
            self._active[rec.id] = ActiveJob(
                rec.id, rec.symbol, rec.interval, rec.start, rec.end, rec.priority, False, rec.created_at
            )
        if cap is None:
            await queue.put(job)
        elif not await queue.put_capped(job, cap):
            self._active.pop(rec.id, None)
            return False
        self.wakeup.set()
        return True

    async def restore(self) -> int:
        """Queue again what the store says is active (after a restart nothing is lost)."""
        n = 0
        for rec in await self.store.active_backfills():
            if rec.id in self._active:
                continue
            if rec.status is BackfillStatus.RUNNING:
                await self.store.update_backfill(rec.id, status=BackfillStatus.QUEUED, now=self.clock.now())
            await self._queue(rec, attempts=rec.attempts)
            n += 1
        self._publish_depth()
        return n

    async def requeue(self, rec: BackfillRecord) -> None:
        """Queue a record the DLQ put back to ``queued``."""
        await self._queue(rec)
        self._publish_depth()

    # -- the job's life --------------------------------------------------------------
    def current(self, job: BackfillJob) -> BackfillJob:
        """The job with its range as this process knows it (a queued job may have grown by merging)."""
        active = self._active.get(job.backfill_id or -1)
        if active is None:
            return job
        return job.model_copy(update={"time_window": TimeWindow(start=active.start, end=active.end)})

    async def refresh(self, job: BackfillJob) -> BackfillJob | None:
        """The job as the store has it now, or None if it no longer needs doing.

        A job enqueued by another process is not in this process's index; its row is the
        truth for its range (merges widen it) and whether it is still wanted.
        """
        if job.backfill_id is None or job.backfill_id in self._active:
            return self.current(job)
        rec = await self.store.get_backfill(job.backfill_id)
        if rec is None or rec.status in (BackfillStatus.DONE, BackfillStatus.FAILED):
            return None
        self._active[rec.id] = _active_job(rec)
        return job.model_copy(update={"time_window": TimeWindow(start=rec.start, end=rec.end)})

    def started(self, job: BackfillJob) -> None:
        if job.backfill_id in self._active:
            self._active[job.backfill_id] = replace(self._active[job.backfill_id], running=True)

    def retrying(self, job: BackfillJob) -> None:
        if self.shared:
            # The retry may be picked up by another worker; this process forgets it.
            self._active.pop(job.backfill_id or -1, None)
        elif job.backfill_id in self._active:
            self._active[job.backfill_id] = replace(self._active[job.backfill_id], running=False)
        self.wakeup.set()

    def finished(self, job: BackfillJob) -> None:
        self._active.pop(job.backfill_id or -1, None)
        self._publish_depth()
        self.wakeup.set()
        self._changed.set()

    async def wait_idle(self) -> None:
        """Return once no backfill job is queued, waiting for retry or running."""
        while self._active:
            self._changed.clear()
            await self._changed.wait()

    def retry_delay(self, attempts: int, jitter: float) -> float:
        """Clock seconds before attempt ``attempts + 1``: exponential, capped, jittered."""
        s = self.settings
        base = min(s.BACKFILL_RETRY_BASE_SECONDS * 2.0 ** max(attempts - 1, 0), s.BACKFILL_RETRY_MAX_SECONDS)
        return base * (0.5 + jitter)

    # -- observability -------------------------------------------------------------
    def queued(self, tier: Tier | None = None) -> int:
        return sum(1 for j in self._active.values() if not j.running and (tier is None or j.tier is tier))

    def active(self, tier: Tier | None = None) -> int:
        return sum(1 for j in self._active.values() if tier is None or j.tier is tier)

    def oldest_age_seconds(self) -> float:
        waiting = [j.created_at for j in self._active.values()]
        if not waiting:
            return 0.0
        return max(0.0, (self.clock.now() - min(waiting)).total_seconds())

    def _publish_depth(self) -> None:
        self.metrics.backfill_queue_depth.set(self.queued())
        self.metrics.backfill_oldest_age_seconds.set(self.oldest_age_seconds())


Handler = Callable[[Delivery], Awaitable[None]]


class Dispatcher:
    """Strict tier priority, per-tier concurrency, a global dispatch rate (clock time)."""

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
