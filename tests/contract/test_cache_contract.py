"""One Cache contract, run against the in-process cache and the Redis cache.

Expiry runs on the injected clock in process and on the server's clock in Redis, so
each backend brings its own way to let time pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from mds.cache import Cache, InMemoryCache
from mds.cache.redis import RedisCache
from mds.domain.clock import ManualClock
from tests.redis_support import delete_prefix, key_prefix, redis_url


@dataclass
class CacheUnderTest:
    cache: Cache
    pass_time: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["memory", "redis"])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[CacheUnderTest]:
    if request.param == "memory":
        clock = ManualClock(datetime(2025, 10, 8, 14, 0, tzinfo=UTC))

        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        mem = InMemoryCache(clock)
        yield CacheUnderTest(mem, advance)
        await mem.close()
        return
    client = aioredis.Redis.from_url(redis_url())
    prefix = key_prefix()
    try:
        yield CacheUnderTest(RedisCache(client, prefix=prefix), asyncio.sleep)
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


async def test_round_trips_json_values(subject: CacheUnderTest) -> None:
    cache = subject.cache
    value = {"symbol": "AAPL", "last": 187.25, "ts": "2025-10-08T14:00:00Z", "sizes": [1, 2], "halted": False}
    await cache.set("quote:AAPL", value, ttl=30)
    assert await cache.get("quote:AAPL") == value
    await cache.set("n", 3, ttl=30)
    assert await cache.get("n") == 3
    assert await cache.get("missing") is None


async def test_set_replaces_and_delete_removes(subject: CacheUnderTest) -> None:
    cache = subject.cache
    await cache.set("k", {"v": 1}, ttl=30)
    await cache.set("k", {"v": 2}, ttl=30)
    assert await cache.get("k") == {"v": 2}
    await cache.delete("k")
    assert await cache.get("k") is None
    await cache.delete("k")  # deleting what is gone is fine


async def test_entries_expire_after_their_ttl(subject: CacheUnderTest) -> None:
    cache = subject.cache
    await cache.set("short", "s", ttl=0.2)
    await cache.set("long", "l", ttl=30)
    assert await cache.get("short") == "s"
    await subject.pass_time(0.35)
    assert await cache.get("short") is None
    assert await cache.get("long") == "l"


async def test_a_new_set_renews_the_ttl(subject: CacheUnderTest) -> None:
    cache = subject.cache
    await cache.set("k", 1, ttl=0.3)
    await subject.pass_time(0.2)
    await cache.set("k", 2, ttl=0.3)
    await subject.pass_time(0.2)
    assert await cache.get("k") == 2


async def test_add_sets_only_what_is_absent(subject: CacheUnderTest) -> None:
    cache = subject.cache
    assert await cache.add("gen", "first", ttl=30) is True
    assert await cache.add("gen", "second", ttl=30) is False
    assert await cache.get("gen") == "first"
    await cache.set("gen", "third", ttl=30)  # set still overwrites
    assert await cache.get("gen") == "third"
    await cache.set("brief", 1, ttl=0.2)
    await subject.pass_time(0.35)
    assert await cache.add("brief", 2, ttl=30) is True  # an expired entry is absent
    assert await cache.get("brief") == 2


async def test_racing_adds_have_one_winner(subject: CacheUnderTest) -> None:
    cache = subject.cache
    won = await asyncio.gather(*(cache.add("race", i, ttl=30) for i in range(20)))
    assert won.count(True) == 1
    assert await cache.get("race") == won.index(True)
