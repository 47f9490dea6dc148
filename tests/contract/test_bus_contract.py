"""One Bus contract, run against the in-process bus and the Redis pub/sub bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from mds.stream import Bus, InMemoryBus
from mds.stream.redis import RedisBus
from tests.redis_support import key_prefix, redis_url


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        b: Bus = InMemoryBus()
        yield b
        await b.close()
        return
    client = aioredis.Redis.from_url(redis_url())
    b = RedisBus(client, prefix=f"{key_prefix()}bus:")  # "*" sees only this test's topics
    try:
        yield b
    finally:
        await b.close()
        await client.aclose()


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def take(sub: Any, n: int, timeout: float = 3.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    async def read() -> None:
        async for event in sub:
            out.append(event)
            if len(out) == n:
                return

    await asyncio.wait_for(read(), timeout)
    return out


async def _all(sub: Any) -> list[dict[str, Any]]:
    return [e async for e in sub]


async def test_fan_out_to_every_subscriber_of_the_topic_and_to_star(bus: Bus) -> None:
    a = await bus.subscribe("bars:AAPL:1m")
    b = await bus.subscribe("bars:AAPL:1m")
    star = await bus.subscribe("*")
    assert await bus.publish("bars:AAPL:1m", {"i": 1, "close": 10.5}) == 3
    assert await bus.publish("bars:MSFT:1m", {"i": 2}) == 1
    assert await bus.publish("quotes:NOBODY", {"i": 3}) == 1  # only "*"
    assert await take(a, 1) == [{"i": 1, "close": 10.5}]
    assert await take(b, 1) == [{"i": 1, "close": 10.5}]
    assert [e["i"] for e in await take(star, 3)] == [1, 2, 3]


async def test_publish_without_subscribers_reaches_nobody(bus: Bus) -> None:
    assert await bus.publish("bars:ZZZ:1m", {"i": 0}) == 0


async def test_a_lagging_subscriber_loses_the_oldest_and_counts_them(bus: Bus) -> None:
    slow = await bus.subscribe("bars:AAPL:1m", buffer=2)
    fast = await bus.subscribe("bars:AAPL:1m")
    for i in range(5):
        await bus.publish("bars:AAPL:1m", {"i": i})
    await eventually(lambda: slow.dropped == 3)
    assert [e["i"] for e in await take(slow, 2)] == [3, 4]
    assert [e["i"] for e in await take(fast, 5)] == [0, 1, 2, 3, 4]
    assert fast.dropped == 0


async def test_close_ends_iteration_and_stops_delivery(bus: Bus) -> None:
    sub = await bus.subscribe("bars:AAPL:1m")
    other = await bus.subscribe("bars:AAPL:1m")
    await sub.close()
    events = await asyncio.wait_for(_all(sub), 1.0)
    assert events == []
    assert await bus.publish("bars:AAPL:1m", {"i": 1}) == 1
    assert await take(other, 1) == [{"i": 1}]
