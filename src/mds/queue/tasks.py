"""Task queues: one per ``TASK_QUEUES`` name, each ordered by the run's priority band.

In process, one :class:`~mds.queue.memory.InMemoryJobQueue` per name already delivers T0
before T1 before T2. A Redis list is FIFO, so on Redis each name has one list per band and
:class:`BandedQueue` takes from the most urgent band that has a job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from mds.aio import honour_cancel
from mds.domain.jobs import TaskJob
from mds.domain.models import Tier
from mds.queue.base import Delivery, JobQueue

#: Wall seconds a banded consumer waits between polls of its bands when all are empty:
#: the extra fire latency a task run can see on Redis.
POLL_SECONDS = 0.1


class BandedQueue:
    """One queue made of a JobQueue per band; put by the job's band, get most urgent first."""

    def __init__(self, bands: Mapping[Tier, JobQueue]) -> None:
        self.bands = dict(bands)

    async def put(self, job: TaskJob) -> None:
        await self.bands[job.priority].put(job)

    async def get(self, timeout: float | None = None) -> Delivery | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            for tier in Tier:
                delivery = await self.bands[tier].get(timeout=0)
                if delivery is not None:
                    return delivery
            if deadline is not None and loop.time() >= deadline:
                return None
            honour_cancel()
            await asyncio.sleep(POLL_SECONDS)

    async def ack(self, delivery: Delivery) -> None:
        await self.bands[delivery.job.priority].ack(delivery)

    async def nack(self, delivery: Delivery, *, delay: float = 0.0) -> None:
        await self.bands[delivery.job.priority].nack(delivery, delay=delay)

    async def depth(self) -> int:
        return sum([await q.depth() for q in self.bands.values()])

    async def close(self) -> None:
        for q in self.bands.values():
            await q.close()


class TaskQueues:
    """The task queues of a deployment, by name."""

    def __init__(self, queues: Mapping[str, JobQueue | BandedQueue]) -> None:
        self.queues = dict(queues)

    @classmethod
    def build(cls, names: list[str], make: Callable[[str], JobQueue | BandedQueue]) -> TaskQueues:
        return cls({name: make(name) for name in names})

    def __getitem__(self, name: str) -> JobQueue | BandedQueue:
        return self.queues[name]

    def names(self) -> list[str]:
        return list(self.queues)

    async def put(self, job: TaskJob) -> None:
        await self.queues[job.queue].put(job)

    async def depths(self) -> dict[str, int]:
        return {name: await q.depth() for name, q in self.queues.items()}

    async def close(self) -> None:
        for q in self.queues.values():
            await q.close()
