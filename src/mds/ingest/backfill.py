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

Enqueueing is batched: a gap scan's gaps cost one lookup of the active jobs per batch of
symbols, one store transaction per ENQUEUE_BATCH new rows and one queue call per such
batch, so a start-up scan of thousands of symbols is not thousands of round trips. A
queued job is held compactly (a slotted index entry here, the job's JSON in the
in-process queue): ``backfill_queue_bytes`` estimates what the backlog holds.

``mds.ingest.dispatch`` hands the queued jobs to workers.

One module although long: the merge, the cap and the active-job index must agree on what is
queued, in one process and across processes; the index is the backfiller's memory of it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.jobs import BackfillJob, TimeWindow
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillRecord, BackfillStatus
from mds.ingest.gaps import Gap
from mds.observability.metrics import Metrics
from mds.queue.base import JobQueue
from mds.storage.base import BackfillLedger, NewBackfill

log = logging.getLogger(__name__)

_DAILY_CHUNK = timedelta(days=366)
#: New rows per store transaction and jobs per queue call while enqueueing.
ENQUEUE_BATCH = 500
#: Symbols per lookup of active jobs; bounds one query's parameter and result.
_LOOKUP_BATCH = 5000
#: Bytes one queued backfill job holds in this process (its index entry here and its
#: JSON in the in-process queue), as ``mds bench enqueue`` measures it with tracemalloc.
QUEUED_JOB_BYTES = 650


@dataclass(frozen=True, slots=True)
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


@functools.lru_cache(maxsize=4096)
def _shared_time(t: datetime) -> datetime:
    """The first datetime equal to ``t`` seen lately: one object for many equal ones.

    The jobs of one gap scan share their bounds (every symbol misses the same minutes)
    and their creation stamp, and a queued job keeps them for as long as it waits; one
    object per distinct value, not three per job, saves ~150 bytes a job.
    """
    return t


@dataclass(slots=True)
class _Slot:
    """An active job as one enqueue batch plans against it: stored, or planned (no id yet).

    Planned jobs take later gaps' merges before their rows exist; a planned job the capped
    put refused never gets an id, and the merges into it are refused with it.
    """

    symbol: str
    start: datetime
    end: datetime
    running: bool = False
    id: int | None = None
    stored: bool = False


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


class ActiveIndex(dict[int, ActiveJob]):
    """Active jobs by id, with their counts per (tier, running) kept up to date.

    The dispatcher asks how many jobs of a tier wait before every dispatch, and a backlog
    holds tens of thousands: counting by scanning cost milliseconds of loop time each.
    """

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[tuple[Tier, bool], int] = {(t, r): 0 for t in Tier for r in (False, True)}

    def __setitem__(self, key: int, job: ActiveJob) -> None:
        old = self.get(key)
        if old is not None:
            self._counts[(old.tier, old.running)] -= 1
        super().__setitem__(key, job)
        self._counts[(job.tier, job.running)] += 1

    def pop(self, key: int, default: ActiveJob | None = None) -> ActiveJob | None:  # type: ignore[override]
        job = super().pop(key, None)
        if job is None:
            return default
        self._counts[(job.tier, job.running)] -= 1
        return job

    def count(self, tier: Tier | None, *, running: bool) -> int:
        if tier is None:
            return sum(n for (_, r), n in self._counts.items() if r is running)
        return self._counts[(tier, running)]


class Backfiller:
    def __init__(
        self,
        *,
        store: BackfillLedger,
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
        self._active = ActiveIndex()
        self.wakeup = asyncio.Event()  # the dispatcher's: something may be ready
        self._changed = asyncio.Event()  # wait_idle's: a job finished

    # -- enqueueing ----------------------------------------------------------------
    def chunk_size(self, interval: Interval) -> timedelta:
        if interval is Interval.D1:
            return _DAILY_CHUNK
        return timedelta(minutes=self.settings.BACKFILL_CHUNK_MINUTES)

    def chunks(self, interval: Interval, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """[start, end) cut into chunk_size pieces, in the order they are to run.

        Daily chunks run newest first: a backfill reaching back past a symbol's listing
        then learns the first trade from the chunk that holds it (issue 14), before the
        older chunks, wholly before it, would be retried for bars that never existed.
        """
        step = self.chunk_size(interval)
        out = []
        t = start
        while t < end:
            out.append((t, min(t + step, end)))
            t += step
        if interval is Interval.D1:
            out.reverse()
        return out

    async def enqueue(
        self, symbol: str, interval: Interval, start: datetime, end: datetime, tier: Tier
    ) -> EnqueueResult:
        """Queue one range: the batched path with a batch of one."""
        return await self._enqueue(interval, [(symbol, start, end)], tier)

    async def enqueue_gaps(self, gaps: list[Gap], tier: Tier) -> EnqueueResult:
        """Queue backfills for ``gaps``, as ``enqueue`` would one by one, in batches.

        Later gaps see the jobs earlier ones planned (a gap next to one just planned
        merges into it), exactly as if each had been enqueued after the other.
        """
        by_interval: dict[Interval, list[tuple[str, datetime, datetime]]] = {}
        for g in gaps:
            by_interval.setdefault(g.interval, []).append((g.symbol, g.start, g.end))
        total = EnqueueResult([], [], [])
        for interval, ranges in by_interval.items():
            r = await self._enqueue(interval, ranges, tier)
            total.created += r.created
            total.merged_into += r.merged_into
            total.refused += r.refused
        return total

    async def enqueue_gaps_by_tier(self, gaps: list[Gap], tiers: Mapping[str, Tier]) -> EnqueueResult:
        """Queue ``gaps`` at each symbol's tier (T2 when it has none), T0 first."""
        by_tier: dict[Tier, list[Gap]] = {}
        for g in gaps:
            by_tier.setdefault(tiers.get(g.symbol, Tier.T2), []).append(g)
        total = EnqueueResult([], [], [])
        for tier in Tier:
            if tier in by_tier:
                r = await self.enqueue_gaps(by_tier[tier], tier)
                total.created += r.created
                total.merged_into += r.merged_into
                total.refused += r.refused
        return total

    async def _enqueue(
        self, interval: Interval, ranges: list[tuple[str, datetime, datetime]], tier: Tier
    ) -> EnqueueResult:
        result = EnqueueResult([], [], [])
        # Jobs are stored to the second: a fraction would leave slivers of a second between a
        # range and the jobs already covering it (an empty job once stored). Bars are stamped
        # on whole seconds, so widening to them loses nothing.
        ranges = [(sym, a.replace(microsecond=0), _ceil_second(b)) for sym, a, b in ranges]
        for i in range(0, len(ranges), _LOOKUP_BATCH):
            await self._enqueue_batch(interval, ranges[i : i + _LOOKUP_BATCH], tier, result)
        refused = result.refused.count("cap")
        if refused:
            symbols = {sym for sym, _, _ in ranges}
            about = next(iter(symbols)) if len(symbols) == 1 else f"{len(symbols)} symbols"
            log.warning("backfill cap for %s reached: %d range(s) of %s refused", tier.value, refused, about)
        self._publish_depth()
        return result

    async def _enqueue_batch(
        self,
        interval: Interval,
        ranges: list[tuple[str, datetime, datetime]],
        tier: Tier,
        result: EnqueueResult,
    ) -> None:
        """Plan the ranges against the active jobs, then create and queue the new ones."""
        # The store, not this process's memory, says what is active: an API process, the
        # scheduler and the workers may all enqueue against the same backlog.
        stored = await self.store.active_backfills_many([sym for sym, _, _ in ranges], interval)
        slots = {
            sym: [
                _Slot(r.symbol, r.start, r.end, r.status is BackfillStatus.RUNNING, r.id, True) for r in recs
            ]
            for sym, recs in stored.items()
        }
        cap = self.settings.backfill_max_queue(tier)
        # Early refusal, so a full tier costs no row; the capped put is what makes the cap exact.
        room = cap - max(self.queued(tier), await self.queues[tier].backlog())
        planned: list[_Slot] = []
        merged: list[_Slot] = []
        step = self.chunk_size(interval)
        for symbol, start, end in ranges:
            same = slots.setdefault(symbol, [])
            pieces = subtract(start, end, [(j.start, j.end) for j in same])
            if not pieces:
                result.refused.append("duplicate")
            for a, b in pieces:
                target = await self._try_merge(same, a, b, step)
                if target is not None:
                    merged.append(target)
                    continue
                for c0, c1 in self.chunks(interval, a, b):
                    if room <= 0:
                        self._refuse(result, tier)
                        continue
                    room -= 1
                    slot = _Slot(symbol, c0, c1)
                    same.append(slot)
                    planned.append(slot)
        await self._create_and_queue(planned, interval, tier, cap, result)
        for slot in merged:
            if slot.id is None:  # merged into a planned job the capped put then refused
                self._refuse(result, tier)
            else:
                result.merged_into.append(slot.id)

    async def _create_and_queue(
        self, planned: list[_Slot], interval: Interval, tier: Tier, cap: int, result: EnqueueResult
    ) -> None:
        """Create the planned rows ENQUEUE_BATCH at a time and queue each batch capped."""
        full = False
        for i in range(0, len(planned), ENQUEUE_BATCH):
            batch = planned[i : i + ENQUEUE_BATCH]
            if full:  # the queue refused a job already: the rest would only be closed again
                for _ in batch:
                    self._refuse(result, tier)
                continue
            specs = [NewBackfill(j.symbol, interval, j.start, j.end, tier) for j in batch]
            recs = await self.store.create_backfills(specs, now=self.clock.now())
            admitted = await self._queue_many(recs, cap=cap)
            for slot, rec in zip(batch[:admitted], recs, strict=False):
                slot.id = rec.id
            result.created += recs[:admitted]
            self.metrics.backfill_jobs_enqueued_total.labels(tier=tier.value).inc(admitted)
            if admitted < len(recs):
                # Another producer took the last places after the early check. The rows
                # had to exist first (a job carries its id); closed, they never count as
                # active, so they neither block these ranges nor are queued on restore.
                await self._close_refused(recs[admitted:], tier, cap)
                for _ in recs[admitted:]:
                    self._refuse(result, tier)
                full = True

    async def _close_refused(self, recs: list[BackfillRecord], tier: Tier, cap: int) -> None:
        for rec in recs:
            await self.store.update_backfill(
                rec.id,
                status=BackfillStatus.DONE,
                now=self.clock.now(),
                last_error=f"refused: {tier.value} backfill queue at its cap ({cap})",
            )

    def _refuse(self, result: EnqueueResult, tier: Tier) -> None:
        result.refused.append("cap")
        self.metrics.backfill_jobs_dropped_total.labels(tier=tier.value).inc()

    async def _try_merge(self, same: list[_Slot], a: datetime, b: datetime, step: timedelta) -> _Slot | None:
        """Grow the first queued job that overlaps or touches [a, b) while the union fits a chunk."""
        for j in same:
            if j.running or j.end < a or b < j.start:  # running, or neither overlapping nor adjacent
                continue
            lo, hi = min(j.start, a), max(j.end, b)
            if hi - lo > step:
                continue
            if j.stored:
                assert j.id is not None
                if not await self.store.update_backfill_range(j.id, lo, hi, now=self.clock.now()):
                    j.running = True  # started meanwhile (another process dispatched it)
                    continue
                if j.id in self._active:
                    self._active[j.id] = replace(self._active[j.id], start=lo, end=hi)
            j.start, j.end = lo, hi
            return j
        return None

    def _job(self, rec: BackfillRecord) -> BackfillJob:
        return BackfillJob(
            symbol=rec.symbol,
            interval=rec.interval,
            time_window=TimeWindow(start=rec.start, end=rec.end),
            priority=rec.priority,
            backfill_id=rec.id,
            attempts=rec.attempts,
        )

    async def _queue_many(self, recs: list[BackfillRecord], cap: int | None = None) -> int:
        """Queue the records' jobs (all of one tier) in one call; how many were queued.

        With ``cap``, only the prefix that fits below it; the rest are not queued.
        """
        if not recs:
            return 0
        tier = recs[0].priority
        admit = len(recs)
        if not self.shared:
            # Checked and recorded with no await in between, so concurrent enqueues in
            # this process see each other (this index also counts delivered, not started).
            if cap is not None:
                admit = max(0, min(admit, cap - self.queued(tier)))
            for rec in recs[:admit]:
                start, end, created = map(_shared_time, (rec.start, rec.end, rec.created_at))
                self._active[rec.id] = ActiveJob(
                    rec.id, rec.symbol, rec.interval, start, end, tier, False, created
                )
        jobs = [self._job(rec) for rec in recs[:admit]]
        if cap is None:
            await self.queues[tier].put_many(jobs)
            queued = admit
        else:
            queued = await self.queues[tier].put_capped_many(jobs, cap)
        for rec in recs[queued:admit]:
            self._active.pop(rec.id, None)
        if queued:
            self.wakeup.set()
        return queued

    async def restore(self) -> int:
        """Queue again what the store says is active (after a restart nothing is lost).

        Each job keeps its attempts; a batch per tier, oldest first.
        """
        by_tier: dict[Tier, list[BackfillRecord]] = {}
        for rec in await self.store.active_backfills():
            if rec.id in self._active:
                continue
            if rec.status is BackfillStatus.RUNNING:
                await self.store.update_backfill(rec.id, status=BackfillStatus.QUEUED, now=self.clock.now())
            by_tier.setdefault(rec.priority, []).append(rec)
        n = 0
        for recs in by_tier.values():
            n += await self._queue_many(recs)
        self._publish_depth()
        return n

    async def requeue(self, rec: BackfillRecord) -> None:
        """Queue a record the DLQ put back to ``queued``; its attempts start afresh."""
        await self._queue_many([replace(rec, attempts=0)])
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
        if job.backfill_id is not None and job.backfill_id in self._active:
            self._active[job.backfill_id] = replace(self._active[job.backfill_id], running=True)

    def retrying(self, job: BackfillJob) -> None:
        if self.shared:
            # The retry may be picked up by another worker; this process forgets it.
            self._active.pop(job.backfill_id or -1, None)
        elif job.backfill_id is not None and job.backfill_id in self._active:
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
        return self._active.count(tier, running=False)

    def active(self, tier: Tier | None = None) -> int:
        return self._active.count(tier, running=False) + self._active.count(tier, running=True)

    def _publish_depth(self) -> None:
        # What this process holds. backfill_queue_depth and backfill_oldest_age_seconds are
        # the shared backlog's, read at each /metrics refresh (mds.ingest.backlog).
        self.metrics.backfill_queue_bytes.set(QUEUED_JOB_BYTES * self.queued())


def _ceil_second(ts: datetime) -> datetime:
    return ts.replace(microsecond=0) + timedelta(seconds=1) if ts.microsecond else ts
