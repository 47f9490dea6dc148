"""The JobQueue protocol: at-least-once delivery of validated jobs.

A consumer ``get``s a Delivery and must ``ack`` it when the work is stored, or
``nack`` it to have it delivered again (after ``delay`` seconds). A delivery that is
neither acked nor nacked, because its worker died, is delivered again by the
implementation's recovery (the Redis queue re-claims it; the in-process queue dies
with its process).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mds.domain.jobs import BackfillJob, BarsFetchJob, QuotesFetchJob, TaskJob

AnyJob = BarsFetchJob | QuotesFetchJob | BackfillJob | TaskJob


@dataclass(frozen=True, slots=True)
class Delivery:
    job: AnyJob
    receipt: str  # implementation's handle for ack/nack


class JobQueue(Protocol):
    async def put(self, job: AnyJob) -> None:
        """Enqueue; T0 jobs are delivered before T1 before T2, FIFO within a tier."""
        ...

    async def get(self, timeout: float | None = None) -> Delivery | None:
        """The next job, or None if none arrived within ``timeout`` seconds."""
        ...

    async def ack(self, delivery: Delivery) -> None: ...

    async def nack(self, delivery: Delivery, *, delay: float = 0.0, job: AnyJob | None = None) -> None:
        """Deliver again after ``delay`` seconds; ``job`` replaces the payload (attempts + 1)."""
        ...

    async def depth(self) -> int:
        """Jobs waiting (not counting those delivered and not yet acked)."""
        ...

    async def backlog(self) -> int:
        """Jobs still owed: waiting plus nacked ones sitting out their delay; not in flight.

        What caps and strict tier priority must count. A retry due in a minute is work the
        queue still holds, and with a shared queue it may have been nacked by any process,
        so only the queue can count it.
        """
        ...

    async def put_capped(self, job: AnyJob, cap: int) -> bool:
        """Enqueue only while ``backlog() < cap``; False, and nothing queued, at the cap.

        Atomic for every producer of the queue: producers in several processes checking
        and then putting could each see room for one more and together overshoot.
        """
        ...

    async def put_many(self, jobs: Sequence[AnyJob]) -> None:
        """Enqueue ``jobs`` in order, as ``put`` would one by one, in one call.

        One round trip for a batch: a start-up gap scan queues thousands of backfills.
        """
        ...

    async def put_capped_many(self, jobs: Sequence[AnyJob], cap: int) -> int:
        """Enqueue the longest prefix of ``jobs`` that keeps ``backlog() <= cap``; its length.

        Atomic like ``put_capped``: producers racing against one cap, in any process,
        together admit exactly up to it. Jobs after the prefix are not queued.
        """
        ...

    async def close(self) -> None: ...
