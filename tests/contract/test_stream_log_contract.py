"""One StreamLog contract, run against the in-process log and the Redis log.

Each backend says what it offers beyond the protocol: the Redis log is shared by every
process on the server (its history outlives a process and two processes append to one
sequence) and expires idle symbols; the in-process log's history is its process's.
Redis tests use keys under their own prefix and delete them afterwards.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import redis.asyncio as aioredis

from mds import constants
from mds.domain.clock import ManualClock
from mds.stream.log import StreamLog
from mds.stream.log_memory import InMemoryStreamLog
from mds.stream.log_redis import RedisStreamLog
from tests.redis_support import delete_prefix, key_prefix, redis_url

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


@dataclass
class LogBackend:
    name: str
    clock: ManualClock
    shared: bool  # history outlives the log object and is shared by other processes
    prefix: str = ""
    admin: aioredis.Redis | None = None  # for peeking at and deleting the test's keys
    clients: list[aioredis.Redis] = field(default_factory=list)
    logs: list[StreamLog] = field(default_factory=list)

    def make(self, **kwargs: Any) -> StreamLog:
        """A new log object: for Redis a new process's view (its own connection) of the same keys."""
        log: StreamLog
        if self.shared:
            client = aioredis.Redis.from_url(redis_url())
            self.clients.append(client)
            log = RedisStreamLog(client, self.clock, prefix=self.prefix, **kwargs)
        else:
            log = InMemoryStreamLog(self.clock, **kwargs)
        self.logs.append(log)
        return log

    def peer(self, log: StreamLog, **kwargs: Any) -> StreamLog:
        """Another appender on the same history: another process for Redis, the same object in-process."""
        return self.make(**kwargs) if self.shared else log

    def redis_keys(self, symbol: str) -> list[str]:
        return [
            self.prefix + constants.stream_log_epoch_key(symbol),
            self.prefix + constants.stream_log_offset_key(symbol),
            self.prefix + constants.stream_log_entries_key(symbol),
        ]


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[LogBackend]:
    clock = ManualClock(T0)
    if request.param == "memory":
        b = LogBackend("memory", clock, shared=False)
        yield b
        for log in b.logs:
            await log.close()
        return
    admin = aioredis.Redis.from_url(redis_url())
    b = LogBackend("redis", clock, shared=True, prefix=key_prefix(), admin=admin)
    try:
        yield b
    finally:
        for log in b.logs:
            await log.close()
        for client in b.clients:
            await client.aclose()
        await delete_prefix(admin, b.prefix)
        await admin.aclose()


@pytest.fixture
def log(backend: LogBackend) -> StreamLog:
    return backend.make()


def redis_only(backend: LogBackend) -> aioredis.Redis:
    if backend.admin is None:
        pytest.skip(f"{backend.name}: no Redis keys to lose")
    return backend.admin


async def fill(log: StreamLog, symbol: str, n: int) -> list[dict[str, Any]]:
    msgs = [{"type": "bar", "symbol": symbol, "i": i} for i in range(1, n + 1)]
    for m in msgs:
        await log.append(symbol, m)
    return msgs


# -- offsets and heads ---------------------------------------------------------------


async def test_offsets_count_from_one_per_symbol_under_one_epoch(log: StreamLog) -> None:
    empty_offset, epoch = await log.head("AAPL")
    assert empty_offset == 0 and isinstance(epoch, str) and epoch
    entries = [await log.append("AAPL", {"i": i}) for i in range(3)]
    assert [(e.symbol, e.offset, e.epoch) for e in entries] == [("AAPL", n, epoch) for n in (1, 2, 3)]
    assert [e.message for e in entries] == [{"i": 0}, {"i": 1}, {"i": 2}]
    msft = await log.append("MSFT", {"i": 0})
    assert msft.offset == 1
    assert await log.head("AAPL") == (3, epoch)
    assert await log.head("MSFT") == (1, msft.epoch)


async def test_since_returns_exactly_the_missed_entries_and_the_head(log: StreamLog) -> None:
    msgs = await fill(log, "AAPL", 5)
    head, epoch = await log.head("AAPL")
    r = await log.since("AAPL", 2, epoch)
    assert not r.reset and (r.offset, r.epoch) == (5, epoch)
    assert [(e.offset, e.epoch, e.message) for e in r.entries] == [(i, epoch, msgs[i - 1]) for i in (3, 4, 5)]
    everything = await log.since("AAPL", 0, epoch)
    assert [e.offset for e in everything.entries] == [1, 2, 3, 4, 5] and not everything.reset
    caught_up = await log.since("AAPL", head, epoch)
    assert (caught_up.reset, caught_up.entries, caught_up.offset, caught_up.epoch) == (False, [], 5, epoch)


async def test_a_cursor_on_an_empty_history_stays_valid(log: StreamLog) -> None:
    offset, epoch = await log.head("NEW")
    assert offset == 0
    assert (await log.since("NEW", 0, epoch)).entries == []
    await fill(log, "NEW", 2)
    r = await log.since("NEW", 0, epoch)
    assert not r.reset and [e.offset for e in r.entries] == [1, 2] and r.offset == 2


@pytest.mark.parametrize(
    ("offset", "epoch_of"),
    [(3, lambda e: e + "x"), (3, lambda e: ""), (6, lambda e: e), (99, lambda e: e), (-1, lambda e: e)],
    ids=["other-epoch", "no-epoch", "ahead-by-one", "far-ahead", "negative"],
)
async def test_since_resets_when_the_gap_cannot_be_filled(log: StreamLog, offset: int, epoch_of: Any) -> None:
    await fill(log, "AAPL", 5)
    _, epoch = await log.head("AAPL")
    r = await log.since("AAPL", offset, epoch_of(epoch))
    assert (r.reset, r.entries, r.offset, r.epoch) == (True, [], 5, epoch)


async def test_at_most_max_messages_are_kept_and_older_cursors_reset(backend: LogBackend) -> None:
    log = backend.make(max_messages=3)
    await fill(log, "AAPL", 7)
    _, epoch = await log.head("AAPL")
    assert (await log.since("AAPL", 3, epoch)).reset  # entry 4 is gone
    r = await log.since("AAPL", 4, epoch)  # oldest kept is 5: nothing missed is lost
    assert not r.reset and [e.offset for e in r.entries] == [5, 6, 7]
    assert [e.offset for e in await log.since_time("AAPL", T0)] == [5, 6, 7]
    assert (await log.append("AAPL", {})).offset == 8


# -- time ----------------------------------------------------------------------------


async def test_since_time_returns_entries_appended_at_or_after(backend: LogBackend, log: StreamLog) -> None:
    clock = backend.clock
    first = await log.append("AAPL", {"n": "a"})
    clock.advance(10)
    await log.append("AAPL", {"n": "b"})
    await log.append("AAPL", {"n": "c"})
    clock.advance(0.000001)
    await log.append("AAPL", {"n": "d"})
    assert first.ts == T0
    assert [e.message["n"] for e in await log.since_time("AAPL", T0)] == ["a", "b", "c", "d"]
    at_10 = await log.since_time("AAPL", T0 + timedelta(seconds=10))
    assert [e.message["n"] for e in at_10] == ["b", "c", "d"]
    assert [e.offset for e in at_10] == [2, 3, 4]
    assert at_10[0].ts == T0 + timedelta(seconds=10)
    assert at_10[-1].ts == T0 + timedelta(seconds=10, microseconds=1)  # microseconds survive
    later = await log.since_time("AAPL", T0 + timedelta(seconds=10, microseconds=1))
    assert [e.message["n"] for e in later] == ["d"]
    # Another time zone names the same instant.
    est = datetime(2024, 3, 4, 9, 30, 10, tzinfo=timezone(timedelta(hours=-5)))
    assert [e.message["n"] for e in await log.since_time("AAPL", est)] == ["b", "c", "d"]
    assert await log.since_time("AAPL", T0 + timedelta(hours=1)) == []
    assert await log.since_time("NONE", T0) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        await log.since_time("AAPL", datetime(2024, 3, 4, 14, 30))


# -- messages ------------------------------------------------------------------------


async def test_messages_round_trip_as_json(log: StreamLog) -> None:
    message: dict[str, Any] = {
        "type": "bar",
        "close": 187.12345678901234,
        "tiny": 1e-300,
        "third": 0.1 + 0.2,
        "big": 2**62,
        "volume": None,
        "ok": True,
        "bars": [{"ts": "2024-03-04T14:30:00Z", "o": [1.5, None, {"x": -0.0}]}],
        "note": 'quotes " and \\ and ünïcode ✓',
        "pair": (1, 2),
    }
    expected = {**copy.deepcopy(message), "pair": [1, 2]}
    entry = await log.append("AAPL", message)
    message["bars"][0]["o"].append("mutated after append")
    assert entry.message == expected
    replayed = (await log.since("AAPL", 0, entry.epoch)).entries[0].message
    assert replayed == expected
    # Bit for bit, beyond the 14 digits Lua's cjson would keep.
    assert replayed["close"] == 187.12345678901234 and replayed["third"] == 0.1 + 0.2


# -- concurrency and processes -------------------------------------------------------


async def test_concurrent_appenders_get_every_offset_once(backend: LogBackend, log: StreamLog) -> None:
    other = backend.peer(log)
    per_task = 10

    async def appender(n: int) -> list[tuple[int, str, dict[str, Any]]]:
        target = log if n % 2 else other
        out = []
        for i in range(per_task):
            e = await target.append("AAPL", {"task": n, "i": i})
            out.append((e.offset, e.epoch, e.message))
        return out

    results = [x for chunk in await asyncio.gather(*(appender(n) for n in range(20))) for x in chunk]
    offsets = sorted(o for o, _, _ in results)
    assert offsets == list(range(1, 20 * per_task + 1))
    assert len({ep for _, ep, _ in results}) == 1
    for n in range(20):  # each appender's messages got increasing offsets
        mine = [o for o, _, m in results if m["task"] == n]
        assert mine == sorted(mine) and len(mine) == per_task
    # Every reader, in either process, sees the offsets the appenders were given.
    for reader in (log, other):
        replay = await reader.since("AAPL", 0, results[0][1])
        assert [(e.offset, e.message) for e in replay.entries] == sorted((o, m) for o, _, m in results)


async def test_a_new_log_object_sees_history_only_when_shared(backend: LogBackend, log: StreamLog) -> None:
    await fill(log, "AAPL", 3)
    _, epoch = await log.head("AAPL")
    fresh = backend.make()
    r = await fresh.since("AAPL", 1, epoch)
    if backend.shared:
        assert not r.reset and [e.offset for e in r.entries] == [2, 3]
        assert (await fresh.append("AAPL", {})).offset == 4
    else:  # a new process: a new history, and the old cursor must not be mistaken for it
        assert r.reset and r.offset == 0 and r.epoch != epoch


# -- losing history (Redis) ----------------------------------------------------------


async def test_deleting_a_symbols_keys_starts_a_new_epoch(backend: LogBackend, log: StreamLog) -> None:
    client = redis_only(backend)
    await fill(log, "AAPL", 3)
    await fill(log, "MSFT", 2)
    _, old = await log.head("AAPL")
    keys = backend.redis_keys("AAPL")
    assert await client.exists(*keys) == 3
    await client.delete(*keys)
    r = await log.since("AAPL", 3, old)
    assert r.reset and r.offset == 0 and r.epoch != old
    entry = await log.append("AAPL", {"after": "flush"})
    assert (entry.offset, entry.epoch) == (1, r.epoch)
    assert (await log.since("AAPL", 0, r.epoch)).entries == [entry]
    assert (await log.head("MSFT"))[0] == 2  # other symbols keep their history


async def test_losing_the_offset_key_alone_starts_a_new_epoch(backend: LogBackend, log: StreamLog) -> None:
    client = redis_only(backend)
    await fill(log, "AAPL", 3)
    _, old = await log.head("AAPL")
    await client.delete(backend.redis_keys("AAPL")[1])
    entry = await log.append("AAPL", {"n": 1})
    assert entry.offset == 1 and entry.epoch != old
    assert (await log.since("AAPL", 3, old)).reset
    assert [e.message for e in (await log.since("AAPL", 0, entry.epoch)).entries] == [{"n": 1}]


async def test_losing_the_epoch_key_alone_starts_a_new_epoch(backend: LogBackend, log: StreamLog) -> None:
    client = redis_only(backend)
    await fill(log, "AAPL", 3)
    _, old = await log.head("AAPL")
    await client.delete(backend.redis_keys("AAPL")[0])
    offset, epoch = await log.head("AAPL")
    assert offset == 0 and epoch != old
    assert (await log.since("AAPL", 0, epoch)).entries == []


async def test_losing_the_entries_alone_resets_older_cursors(backend: LogBackend, log: StreamLog) -> None:
    client = redis_only(backend)
    await fill(log, "AAPL", 3)
    _, epoch = await log.head("AAPL")
    await client.delete(backend.redis_keys("AAPL")[2])
    assert (await log.since("AAPL", 2, epoch)).reset
    assert not (await log.since("AAPL", 3, epoch)).reset  # nothing was missed
    await log.append("AAPL", {"n": 4})
    r = await log.since("AAPL", 3, epoch)
    assert not r.reset and [e.offset for e in r.entries] == [4]


async def test_keys_expire_after_ttl_without_appends(backend: LogBackend) -> None:
    client = redis_only(backend)
    log = backend.make(ttl_sec=1.0)
    await log.append("AAPL", {"n": 1})
    keys = backend.redis_keys("AAPL")
    ttls = [await client.pttl(k) for k in keys]
    assert all(0 < t <= 1000 for t in ttls), ttls
    await asyncio.sleep(0.6)
    entry = await log.append("AAPL", {"n": 2})  # refreshes all three keys
    await asyncio.sleep(0.6)
    assert await client.exists(*keys) == 3, "an append must keep the symbol alive"
    assert await log.head("AAPL") == (2, entry.epoch)
    await asyncio.sleep(1.5)
    assert await client.exists(*keys) == 0
    r = await log.since("AAPL", 2, entry.epoch)
    assert r.reset and r.offset == 0 and r.epoch != entry.epoch


# -- arguments -----------------------------------------------------------------------


async def test_max_messages_must_be_positive(backend: LogBackend) -> None:
    with pytest.raises(ValueError, match="max_messages"):
        backend.make(max_messages=0)
