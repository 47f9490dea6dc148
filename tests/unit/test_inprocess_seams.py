"""The in-process JobQueue, Bus and Cache behave as their protocols promise."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from mds.cache import InMemoryCache
from mds.domain.clock import ManualClock
from mds.domain.jobs import QuotesFetchJob
from mds.domain.models import Tier
from mds.queue.memory import InMemoryJobQueue
from mds.stream import InMemoryBus


def job(tier: Tier, name: str) -> QuotesFetchJob:
    return QuotesFetchJob(job_id=name, symbols=["SPY"], priority=tier)


async def test_queue_delivers_by_tier_then_fifo() -> None:
    q = InMemoryJobQueue()
    for t, n in [(Tier.T2, "c"), (Tier.T0, "a1"), (Tier.T1, "b"), (Tier.T0, "a2")]:
        await q.put(job(t, n))
    assert await q.depth() == 4
    got = []
    for _ in range(4):
        d = await q.get(timeout=0.1)
        assert d is not None
        got.append(d.job.job_id)
        await q.ack(d)
    assert got == ["a1", "a2", "b", "c"]
    assert await q.get(timeout=0.01) is None
    await q.close()


async def test_nack_redelivers_with_replacement_after_delay() -> None:
    q = InMemoryJobQueue()
    await q.put(job(Tier.T1, "x"))
    d = await q.get(timeout=0.1)
    assert d is not None
    await q.nack(d, delay=0.05, job=d.job.model_copy(update={"attempts": 1}))
    assert await q.depth() == 0 and await q.inflight() == 1
    again = await q.get(timeout=1.0)
    assert again is not None and again.job.job_id == "x" and again.job.attempts == 1
    await q.ack(again)
    assert await q.inflight() == 0
    await q.close()


async def test_get_wakes_when_a_job_arrives() -> None:
    q = InMemoryJobQueue()
    waiter = asyncio.create_task(q.get(timeout=2.0))
    await asyncio.sleep(0.01)
    await q.put(job(Tier.T0, "late"))
    d = await waiter
    assert d is not None and d.job.job_id == "late"
    await q.close()


async def test_bus_fans_out_and_drops_oldest_when_a_subscriber_lags() -> None:
    bus = InMemoryBus()
    fast = await bus.subscribe("bars:AAPL:1m")
    slow = await bus.subscribe("bars:AAPL:1m", buffer=2)
    everything = await bus.subscribe("*")
    for i in range(3):
        assert await bus.publish("bars:AAPL:1m", {"i": i}) == 3
    assert await bus.publish("bars:MSFT:1m", {"i": 99}) == 1
    assert slow.dropped == 1
    got_slow = [slow.queue.get_nowait()["i"] for _ in range(2)]
    assert got_slow == [1, 2]
    assert [fast.queue.get_nowait()["i"] for _ in range(3)] == [0, 1, 2]
    assert everything.queue.qsize() == 4
    await bus.close()


async def test_cache_expires_on_the_clock() -> None:
    clock = ManualClock(datetime(2025, 10, 8, 14, 0, tzinfo=UTC))
    cache = InMemoryCache(clock, max_items=2)
    await cache.set("a", 1, ttl=10)
    assert await cache.get("a") == 1
    clock.advance(10)
    assert await cache.get("a") is None
    await cache.set("b", 2, ttl=5)
    await cache.set("c", 3, ttl=50)
    await cache.set("d", 4, ttl=50)  # full: the entry closest to expiry (b) goes
    assert await cache.get("b") is None and await cache.get("c") == 3 and await cache.get("d") == 4
