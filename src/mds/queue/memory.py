"""In-process JobQueue for the embedded default: tier-priority, FIFO within a tier."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Sequence

from mds.domain.jobs import BackfillJob, parse_job
from mds.observability.propagation import stamp
from mds.queue.base import AnyJob, Delivery

# A waiting backfill job is held as its JSON, as Redis holds it, and validated again when
# delivered: a backlog of tens of thousands then costs a few hundred bytes a job rather
# than a pydantic object graph (about 1.4 KB). Live jobs are few and stay objects.
_Item = AnyJob | bytes


def _pack(job: AnyJob) -> _Item:
    return job.model_dump_json().encode() if isinstance(job, BackfillJob) else job


def _unpack(item: _Item) -> AnyJob:
    return parse_job(item) if isinstance(item, bytes) else item


class InMemoryJobQueue:
    """Jobs live in this process only; a crash loses what was waiting (use Redis for more).

    A nack'ed job comes back after ``delay`` seconds; until then it is neither waiting
    nor in flight, so depth() does not count it, but backlog() does. Tiers share the
    heap, so backlog() and caps count every tier of this queue (MDS uses one per tier).
    """

    def __init__(self, maxsize: int | None = None) -> None:
        self._heap: list[tuple[int, int, _Item]] = []
        self._seq = itertools.count()
        self._inflight: dict[str, AnyJob] = {}
        self._delayed: set[asyncio.TimerHandle] = set()
        self._cond = asyncio.Condition()
        self._maxsize = maxsize
        self._closed = False

    async def put(self, job: AnyJob) -> None:
        async with self._cond:
            self._push(job)
            self._cond.notify()

    async def put_capped(self, job: AnyJob, cap: int) -> bool:
        async with self._cond:  # no await between the count and the push: atomic
            if self._backlog() >= cap:
                return False
            self._push(job)
            self._cond.notify()
            return True

    async def put_many(self, jobs: Sequence[AnyJob]) -> None:
        async with self._cond:
            for job in jobs:
                self._push(job)
            self._cond.notify(len(jobs))

    async def put_capped_many(self, jobs: Sequence[AnyJob], cap: int) -> int:
        async with self._cond:  # no await between the count and the pushes: atomic
            admitted = max(0, min(len(jobs), cap - self._backlog()))
            for job in jobs[:admitted]:
                self._push(job)
            self._cond.notify(admitted)
            return admitted

    async def get(self, timeout: float | None = None) -> Delivery | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        async with self._cond:
            while not self._heap:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                try:
                    # Not wait_for: on 3.11 it can swallow a cancel that lands as the wait
                    # completes, and a cancelled consumer would go on consuming.
                    async with asyncio.timeout(remaining):
                        await self._cond.wait()
                except TimeoutError:
                    return None
            _, seq, item = heapq.heappop(self._heap)
            job = _unpack(item)
            receipt = f"{job.job_id}:{seq}"
            self._inflight[receipt] = job
            return Delivery(job=job, receipt=receipt)

    async def ack(self, delivery: Delivery) -> None:
        self._inflight.pop(delivery.receipt, None)

    async def nack(self, delivery: Delivery, *, delay: float = 0.0, job: AnyJob | None = None) -> None:
        held = self._inflight.pop(delivery.receipt, None)
        if held is None:
            return
        job = job if job is not None else held
        if delay <= 0:
            await self.put(job)
            return
        loop = asyncio.get_running_loop()

        def _requeue() -> None:
            self._delayed.discard(handle)
            if not self._closed:
                # Pushed here, not in a later task, so backlog() never misses the job
                # between leaving the delayed set and reaching the heap.
                self._push(job)
                loop.create_task(self._wake())

        handle = loop.call_later(delay, _requeue)
        self._delayed.add(handle)

    async def depth(self) -> int:
        return len(self._heap)

    async def backlog(self) -> int:
        return self._backlog()

    async def inflight(self) -> int:
        return len(self._inflight) + len(self._delayed)

    async def close(self) -> None:
        self._closed = True
        for h in self._delayed:
            h.cancel()
        self._delayed.clear()
        async with self._cond:
            self._cond.notify_all()

    def _push(self, job: AnyJob) -> None:
        # Every put passes here: the job carries the trace context it was queued in.
        heapq.heappush(self._heap, (job.priority.rank, next(self._seq), _pack(stamp(job))))

    def _backlog(self) -> int:
        return len(self._heap) + len(self._delayed)

    async def _wake(self) -> None:
        async with self._cond:
            self._cond.notify()
