"""The Redis heartbeat hash behind /health's process list: a process that stopped beating
(it died without leaving) drops out after the presence TTL and its entry is deleted; a
process that beat again in the meantime keeps its fresh entry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from mds.ops.config_sync import PRESENCE_TTL_SECONDS, ConfigSync, ProcessVersion, RedisPresence
from mds.stream import InMemoryBus
from tests.redis_support import delete_prefix, key_prefix, redis_url

T0 = 1_760_000_000.0


@pytest.fixture
async def presence() -> AsyncIterator[tuple[RedisPresence, aioredis.Redis, str]]:
    client = aioredis.Redis.from_url(redis_url())
    prefix = key_prefix()
    processes_key = f"{prefix}config:processes"
    try:
        yield (
            RedisPresence(
                client,
                processes_key=processes_key,
                version_key=f"{prefix}config:version",
                ttl=PRESENCE_TTL_SECONDS,
            ),
            client,
            processes_key,
        )
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


async def test_a_process_that_stopped_beating_drops_out_and_is_deleted(
    presence: tuple[RedisPresence, aioredis.Redis, str],
) -> None:
    store, client, key = presence
    now = [T0]
    bus = InMemoryBus()
    api = ConfigSync(
        bus=bus,
        presence=store,
        topic="config:test",
        process="api-1",
        roles=frozenset({"api"}),
        current=lambda: "1760000000",
        apply=lambda _: _noop(),
        heartbeat_seconds=3600,  # the test beats by hand, on its own clock
        wall=lambda: now[0],
    )
    # Killed processes: they beat once and never called leave().
    await store.beat(ProcessVersion("worker-1", ("worker",), "1760000000", T0))
    await store.beat(ProcessVersion("scheduler-1", ("scheduler",), "initial", T0 + 10))
    await api.beat()
    assert 0 < await client.ttl(key) <= PRESENCE_TTL_SECONDS + 1  # the hash goes when all are gone

    now[0] = T0 + PRESENCE_TTL_SECONDS  # exactly the TTL: still listed
    roll = await api.roll_call()
    assert [p["process"] for p in roll["processes"]] == ["api-1", "scheduler-1", "worker-1"]

    now[0] = T0 + PRESENCE_TTL_SECONDS + 1
    await api.beat()
    roll = await api.roll_call()
    assert [p["process"] for p in roll["processes"]] == ["api-1", "scheduler-1"]
    assert roll["policy_versions"] == {"api": ["1760000000"], "scheduler": ["initial"]}
    assert await client.hexists(key, "worker-1") == 0  # deleted, not only skipped

    now[0] = T0 + 10 + PRESENCE_TTL_SECONDS + 1
    await api.beat()
    assert [p.process for p in await store.live(now[0])] == ["api-1"]
    assert sorted(await client.hkeys(key)) == [b"api-1"]
    await bus.close()


async def test_an_unreadable_entry_is_deleted(presence: tuple[RedisPresence, aioredis.Redis, str]) -> None:
    store, client, key = presence
    await store.beat(ProcessVersion("api-1", ("api",), "initial", T0))
    await client.hset(key, "broken", "{not json")
    await client.hset(key, "partial", json.dumps({"roles": ["worker"]}))
    assert [p.process for p in await store.live(T0)] == ["api-1"]
    assert await client.hkeys(key) == [b"api-1"]


async def test_a_stale_read_does_not_delete_an_entry_refreshed_since(
    presence: tuple[RedisPresence, aioredis.Redis, str],
) -> None:
    store, client, key = presence
    await store.beat(ProcessVersion("worker-1", ("worker",), "initial", T0))
    read = await client.hgetall(key)  # a reader sees the old entry ...
    await store.beat(ProcessVersion("worker-1", ("worker",), "initial", T0 + 40))  # ... it beats again
    assert await store.forget(read) == 0
    [entry] = await store.live(T0 + 41)
    assert entry.seen_at == T0 + 40

    assert await store.forget(await client.hgetall(key)) == 1  # an unchanged entry does go
    assert await store.live(T0 + 41) == []


async def _noop() -> None:
    return None
