"""One JobQueue contract, run against the in-process queue and the Redis queue.

Each backend says what it offers beyond the protocol's core: the in-process queue orders
by tier within one queue and dies with its process; the Redis queue is one FIFO per key
(a queue per tier), gives a dead consumer's deliveries to others, and dead-letters
payloads that fail validation.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis

from mds.domain.jobs import QuotesFetchJob
from mds.domain.models import Tier
from mds.queue.base import JobQueue
from mds.queue.memory import InMemoryJobQueue
from mds.queue.redis import RedisJobQueue, RedisListConsumer
from tests.redis_support import delete_prefix, key_prefix, redis_url


def job(name: str, tier: Tier = Tier.T1, attempts: int = 0) -> QuotesFetchJob:
    return QuotesFetchJob(job_id=name, symbols=["SPY"], priority=tier, attempts=attempts)


@dataclass
class QueueBackend:
    """Makes queues on one shared key, so several consumers can meet on it."""

    name: str
    make: Callable[..., JobQueue]
    priority_within_queue: bool
    recovers_dead_consumers: bool
    dead_letters: bool
    made: list[JobQueue] = field(default_factory=list)
    redis: aioredis.Redis | None = None
    key: str = ""

    def new(self, **kwargs: Any) -> JobQueue:
        q = self.make(**kwargs)
        self.made.append(q)
        return q


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[QueueBackend]:
    if request.param == "memory":
        shared = InMemoryJobQueue()
        b = QueueBackend("memory", lambda **_: shared, True, False, False)
        yield b
        await shared.close()
        return
    client = aioredis.Redis.from_url(redis_url())
    prefix = key_prefix()
    key = f"{prefix}jobs"

    def make(**kwargs: Any) -> RedisJobQueue:
        kwargs.setdefault("visibility_timeout", 5.0)
        kwargs.setdefault("poll_interval", 0.2)
        return RedisJobQueue(client, key, **kwargs)

    b = QueueBackend("redis", make, False, True, True, redis=client, key=key)
    try:
        yield b
    finally:
        for q in b.made:
            await q.close()
        await delete_prefix(client, prefix)
        await client.aclose()


@pytest.fixture
def queue(backend: QueueBackend) -> JobQueue:
    return backend.new()


async def drain(q: JobQueue, n: int, timeout: float = 2.0) -> list[str]:
    got = []
    for _ in range(n):
        d = await q.get(timeout=timeout)
        assert d is not None, f"only {got} arrived"
        got.append(d.job.job_id)
        await q.ack(d)
    return got


async def test_fifo_within_a_tier(queue: JobQueue) -> None:
    for n in ["a", "b", "c", "d"]:
        await queue.put(job(n, Tier.T0))
    assert await queue.depth() == 4
    assert await drain(queue, 4) == ["a", "b", "c", "d"]
    assert await queue.depth() == 0
    assert await queue.get(timeout=0.05) is None


async def test_tier_priority_within_one_queue(backend: QueueBackend, queue: JobQueue) -> None:
    if not backend.priority_within_queue:
        pytest.skip(f"{backend.name}: FIFO per key; tier priority comes from one queue per tier")
    for t, n in [(Tier.T2, "c"), (Tier.T0, "a1"), (Tier.T1, "b"), (Tier.T0, "a2")]:
        await queue.put(job(n, t))
    assert await drain(queue, 4) == ["a1", "a2", "b", "c"]


async def test_get_times_out_with_none(queue: JobQueue) -> None:
    t0 = time.monotonic()
    assert await queue.get(timeout=0.3) is None
    assert 0.25 <= time.monotonic() - t0 < 1.5
    t0 = time.monotonic()
    assert await queue.get(timeout=0) is None
    assert time.monotonic() - t0 < 0.5


async def test_get_wakes_when_a_job_arrives(queue: JobQueue) -> None:
    waiter = asyncio.create_task(queue.get(timeout=3.0))
    await asyncio.sleep(0.05)
    await queue.put(job("late"))
    d = await asyncio.wait_for(waiter, 3.0)
    assert d is not None and d.job.job_id == "late"
    await queue.ack(d)


async def test_acked_job_is_not_delivered_again(queue: JobQueue) -> None:
    await queue.put(job("once"))
    d = await queue.get(timeout=1.0)
    assert d is not None
    await queue.ack(d)
    assert await queue.depth() == 0
    assert await queue.get(timeout=0.3) is None


async def test_nack_redelivers_now_or_after_the_delay_with_the_replacement(queue: JobQueue) -> None:
    await queue.put(job("x"))
    d = await queue.get(timeout=1.0)
    assert d is not None
    await queue.nack(d)
    again = await queue.get(timeout=1.0)
    assert again is not None and again.job.job_id == "x" and again.job.attempts == 0

    await queue.nack(again, delay=0.4, job=again.job.model_copy(update={"attempts": 1}))
    assert await queue.depth() == 0  # delayed is neither waiting nor in flight
    t0 = time.monotonic()
    assert await queue.get(timeout=0.2) is None
    later = await queue.get(timeout=3.0)
    assert later is not None and later.job.job_id == "x" and later.job.attempts == 1
    assert time.monotonic() - t0 >= 0.3
    await queue.ack(later)
    assert await queue.get(timeout=0.2) is None


async def test_delayed_job_goes_behind_waiting_ones(queue: JobQueue) -> None:
    await queue.put(job("first"))
    d = await queue.get(timeout=1.0)
    assert d is not None
    await queue.nack(d, delay=0.1)
    await queue.put(job("second"))
    await asyncio.sleep(0.3)
    assert await drain(queue, 2) == ["second", "first"]


async def test_depth_counts_waiting_jobs_only(queue: JobQueue) -> None:
    for n in "abc":
        await queue.put(job(n))
    d = await queue.get(timeout=1.0)
    assert d is not None
    assert await queue.depth() == 2
    await queue.ack(d)
    assert await queue.depth() == 2


async def test_backlog_counts_delayed_retries_but_not_deliveries_in_flight(queue: JobQueue) -> None:
    for n in "abc":
        await queue.put(job(n))
    assert await queue.backlog() == 3
    d = await queue.get(timeout=1.0)
    assert d is not None and d.job.job_id == "a"
    assert await queue.backlog() == 2  # in flight: owed by its consumer, not by the queue
    await queue.nack(d, delay=0.6, job=d.job.model_copy(update={"attempts": 1}))
    assert await queue.depth() == 2 and await queue.backlog() == 3
    assert await drain(queue, 2) == ["b", "c"]
    assert await queue.depth() == 0 and await queue.backlog() == 1  # only the retry is owed
    retry = await queue.get(timeout=3.0)
    assert retry is not None and retry.job.job_id == "a" and retry.job.attempts == 1
    assert await queue.backlog() == 0
    await queue.ack(retry)
    assert await queue.backlog() == 0


async def test_put_capped_refuses_at_the_cap_counting_delayed_retries(queue: JobQueue) -> None:
    assert [await queue.put_capped(job(n), 3) for n in ["a", "b", "c", "refused-1"]] == [
        True,
        True,
        True,
        False,
    ]
    assert await queue.depth() == 3
    d = await queue.get(timeout=1.0)
    assert d is not None and d.job.job_id == "a"
    assert await queue.put_capped(job("admitted-while-a-runs"), 3)  # in flight does not count
    assert not await queue.put_capped(job("refused-2"), 3)
    await queue.nack(d, delay=0.5)  # a retry takes its place back, even over the cap
    assert await queue.backlog() == 4 and await queue.depth() == 3
    assert not await queue.put_capped(job("refused-3"), 4)  # the delayed retry counts
    assert await queue.put_capped(job("room-above"), 5)
    got = await drain(queue, 5, timeout=3.0)
    assert sorted(got) == ["a", "admitted-while-a-runs", "b", "c", "room-above"]
    assert got[-1] == "a"  # the retry came back after its delay, behind the waiting ones
    assert await queue.get(timeout=0.3) is None  # nothing refused was queued after all
    assert await queue.backlog() == 0
    assert await queue.put_capped(job("empty-again"), 1)
    assert not await queue.put_capped(job("refused-4"), 0)


async def test_put_many_queues_in_order_like_single_puts(queue: JobQueue) -> None:
    await queue.put(job("a"))
    await queue.put_many([job("b"), job("c"), job("d")])
    await queue.put_many([])
    await queue.put(job("e"))
    assert await queue.depth() == 5
    assert await drain(queue, 5) == ["a", "b", "c", "d", "e"]


async def test_put_capped_many_admits_a_prefix_up_to_the_cap(queue: JobQueue) -> None:
    await queue.put(job("earlier"))
    d = await queue.get(timeout=1.0)
    assert d is not None
    await queue.nack(d, delay=30.0)  # a retry waiting out its delay holds a place
    assert await queue.put_capped_many([job(n) for n in ["a", "b", "c", "d", "e"]], 4) == 3
    assert await queue.backlog() == 4 and await queue.depth() == 3
    assert await queue.put_capped_many([job("refused")], 4) == 0
    assert await queue.put_capped_many([], 4) == 0
    assert await queue.put_capped_many([job("f"), job("g")], 5) == 1
    assert await queue.put_capped_many([job("h")], 0) == 0
    assert await drain(queue, 4) == ["a", "b", "c", "f"]
    assert await queue.get(timeout=0.2) is None  # nothing past a prefix was queued


async def test_put_capped_many_is_exact_under_producers_racing(backend: QueueBackend) -> None:
    """Two producers (for Redis two queue instances, each with its own connection pool,
    standing for two processes) race batches against one cap: exactly ``cap`` are admitted,
    and each batch's admitted jobs are a prefix of it."""
    clients: list[aioredis.Redis] = []
    if backend.redis is None:
        a = b = backend.new()
    else:
        for _ in range(2):
            pool = aioredis.BlockingConnectionPool.from_url(redis_url(), max_connections=16)
            clients.append(aioredis.Redis.from_pool(pool))
        a, b = (
            RedisJobQueue(c, backend.key, consumer=f"proc-{n}") for c, n in zip(clients, "ab", strict=True)
        )
    batches = [[job(f"{name}{i}-{k}") for k in range(7)] for i in range(30) for name in "ab"]
    try:
        cap = 50
        admitted = await asyncio.gather(
            *((a if batch[0].job_id.startswith("a") else b).put_capped_many(batch, cap) for batch in batches)
        )
        assert sum(admitted) == cap and await a.backlog() == cap
        queued = set(await drain(a, cap))
        assert queued == {j.job_id for batch, n in zip(batches, admitted, strict=True) for j in batch[:n]}
        assert await b.put_capped_many([job("after")], 1) == 1
    finally:
        if clients:
            for q in (a, b):
                await q.close()
            for c in clients:
                await c.aclose()


async def test_unacked_delivery_of_a_dead_consumer_comes_back(backend: QueueBackend) -> None:
    if not backend.recovers_dead_consumers:
        pytest.skip(f"{backend.name}: the queue dies with its process; nothing to recover")
    doomed = backend.new(visibility_timeout=0.6, consumer="doomed")
    for n in "abc":
        await doomed.put(job(n))
    taken = [await doomed.get(timeout=1.0) for _ in range(2)]
    assert all(taken)
    assert isinstance(doomed, RedisJobQueue)
    await doomed.abandon()  # neither acked nor nacked: the process "died"
    survivor = backend.new(visibility_timeout=0.6)
    t0 = time.monotonic()
    got = await drain(survivor, 3, timeout=5.0)
    assert sorted(got) == ["a", "b", "c"]
    assert got.index("a") < got.index("b")  # recovered oldest first
    assert time.monotonic() - t0 >= 0.3  # not before the lease ran out
    assert await survivor.get(timeout=0.3) is None


async def test_restarted_consumer_takes_back_its_own_deliveries_at_once(backend: QueueBackend) -> None:
    if not backend.recovers_dead_consumers:
        pytest.skip(f"{backend.name}: the queue dies with its process; nothing to recover")
    first = backend.new(consumer="worker-1", visibility_timeout=60.0)
    await first.put(job("a"))
    await first.put(job("b"))
    assert await first.get(timeout=1.0) is not None
    assert isinstance(first, RedisJobQueue)
    await first.abandon()
    second_life = backend.new(consumer="worker-1", visibility_timeout=60.0)
    assert await drain(second_life, 2, timeout=1.0) == ["a", "b"]


async def test_close_hands_unacked_deliveries_back(backend: QueueBackend) -> None:
    if not backend.recovers_dead_consumers:
        pytest.skip(f"{backend.name}: nothing outlives the process")
    q = backend.new()
    await q.put(job("a"))
    assert await q.get(timeout=1.0) is not None
    await q.close()
    other = backend.new()
    assert await drain(other, 1) == ["a"]


async def test_invalid_payloads_go_to_the_dlq_with_their_reason(backend: QueueBackend) -> None:
    if not backend.dead_letters:
        pytest.skip(f"{backend.name}: put() takes only validated jobs; nothing can be invalid")
    assert backend.redis is not None
    q = backend.new()
    assert isinstance(q, RedisJobQueue)
    await backend.redis.lpush(backend.key, b"{not json")
    await backend.redis.lpush(backend.key, json.dumps({"type": "quotes_fetch", "symbols": []}))
    await backend.redis.lpush(backend.key, b"\xff\xfe")
    await q.put(job("good"))
    d = await q.get(timeout=1.0)
    assert d is not None and d.job.job_id == "good"
    await q.ack(d)
    entries = await q.dlq_entries()
    assert len(entries) == 3 and q.dead_lettered == 3
    by_raw = {e["raw"]: e for e in entries}
    assert "symbols" in by_raw['{"type": "quotes_fetch", "symbols": []}']["reason"]
    assert "{not json" in by_raw and by_raw["{not json"]["reason"]
    assert all(e["queue"] == backend.key and e["failed_at"] for e in entries)
    assert await q.inflight() == 0  # nothing invalid left in the processing list


async def test_consumes_a_list_an_outside_producer_lpushes_to(backend: QueueBackend) -> None:
    if backend.redis is None:
        pytest.skip("in-process: there is no outside list")
    q = RedisListConsumer(backend.redis, backend.key, poll_interval=0.2)
    backend.made.append(q)
    for n in ["r1", "r2", "r3"]:  # as the Rate-Limit Coordinator does it
        await backend.redis.lpush(backend.key, job(n, Tier.T0).model_dump_json())
    assert await drain(q, 3) == ["r1", "r2", "r3"]


async def test_two_consumers_share_the_work_without_duplicates(backend: QueueBackend) -> None:
    if backend.redis is None:
        pytest.skip("in-process: one process, one consumer")
    a, b = backend.new(), backend.new()
    names = [f"j{i}" for i in range(40)]
    for n in names:
        await a.put(job(n))
    seen: list[str] = []

    async def work(q: JobQueue) -> None:
        while (d := await q.get(timeout=0.3)) is not None:
            seen.append(d.job.job_id)
            await q.ack(d)

    await asyncio.gather(work(a), work(b))
    assert sorted(seen) == sorted(names)


async def test_put_capped_is_exact_under_producers_racing_from_two_processes(backend: QueueBackend) -> None:
    """Two queue instances, each with its own connection pool, stand for two processes;
    their 400 capped puts interleave on the server, and exactly ``cap`` places are taken."""
    if backend.redis is None:
        pytest.skip("in-process: one process; atomic by the event loop alone")

    def process_client() -> aioredis.Redis:
        pool = aioredis.BlockingConnectionPool.from_url(redis_url(), max_connections=16)
        return aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it

    clients = [process_client(), process_client()]
    a, b = (RedisJobQueue(c, backend.key, consumer=f"proc-{n}") for c, n in zip(clients, "ab", strict=True))
    try:
        # One retry of an earlier job is waiting out its delay: it holds one of the places.
        await a.put(job("earlier"))
        d = await a.get(timeout=1.0)
        assert d is not None
        await a.nack(d, delay=30.0)
        cap = 50
        results = await asyncio.gather(
            *(q.put_capped(job(f"{name}{i}"), cap) for i in range(200) for q, name in ((a, "a"), (b, "b")))
        )
        assert sum(results) == cap - 1
        assert await backend.redis.llen(backend.key) == cap - 1
        assert await a.backlog() == await b.backlog() == cap
        assert await a.depth() == cap - 1  # depth alone misses the retry the cap counted
        assert not await b.put_capped(job("one-more"), cap)
    finally:
        for q in (a, b):
            await q.close()
        for c in clients:
            await c.aclose()


async def test_a_consumer_cancelled_as_a_job_arrives_takes_nothing(
    backend: QueueBackend, queue: JobQueue
) -> None:
    # The job must stay for the next consumer, not vanish into the cancelled one (on 3.11,
    # asyncio.wait_for could hand a cancelled getter the job anyway).
    if backend.recovers_dead_consumers:
        pytest.skip("Redis: a cancelled consumer's delivery comes back by lease recovery (chaos tests)")
    for i in range(10):
        getter = asyncio.get_running_loop().create_task(queue.get(timeout=5))
        await asyncio.sleep(0.01)
        await queue.put(job(f"j{i}"))
        getter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await getter
        assert await drain(queue, 1) == [f"j{i}"]


async def test_every_put_carries_the_trace_it_was_queued_in(queue: JobQueue) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("test")  # not the global one
    await queue.put(job("untraced"))
    with tracer.start_as_current_span("request") as span:
        await queue.put(job("put"))
        assert await queue.put_capped(job("capped"), 10)
        await queue.put_many([job("many")])
        assert await queue.put_capped_many([job("capped_many")], 10) == 1
    trace_id = format(span.get_span_context().trace_id, "032x")
    carried = {}
    for _ in range(5):
        d = await queue.get(timeout=2)
        assert d is not None
        carried[d.job.job_id] = d.job.traceparent and d.job.traceparent.split("-")[1]
        await queue.ack(d)
    assert carried == {"untraced": None, **dict.fromkeys(["put", "capped", "many", "capped_many"], trace_id)}
