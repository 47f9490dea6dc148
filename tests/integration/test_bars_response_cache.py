"""Kept bar responses are never stale: every changing write moves its series on.

Real parts throughout: the sim provider through the router and ``BarIngestor`` into
SQLite, and for the multi-process case the generations in a real Redis shared by two
"API processes" (two MarketServices with their own kept bytes).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis.asyncio as aioredis

from mds.cache import Cache, InMemoryCache
from mds.cache.redis import RedisCache
from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.domain.records import UniverseEntry
from mds.ingest.ingestor import BarIngestor
from mds.observability.metrics import Metrics
from mds.providers.registry import build_providers
from mds.providers.sim.market import ground_truth
from mds.routing.router import Router
from mds.services.bar_cache import ResponseBytes, SeriesGenerations
from mds.services.market import MarketService
from mds.storage.sqlite import SqliteStore
from tests.redis_support import delete_prefix, key_prefix, redis_url

CAL = MarketCalendar()
OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
CLOSE = datetime(2025, 10, 8, 20, 0, tzinfo=UTC)
AFTER = datetime(2025, 10, 8, 21, 0, tzinfo=UTC)
M1 = Interval.M1


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[SqliteStore]:  # type: ignore[no-untyped-def]
    s = SqliteStore(str(tmp_path / "bars.db"))
    await s.open()
    await s.upsert_universe([UniverseEntry("AAPL", Tier.T0)], version_tag="t", source_meta={})
    yield s
    await s.close()


def ingestor(store: SqliteStore, clock: ManualClock, cache: Cache, metrics: Metrics) -> BarIngestor:
    environ = {"POLICY_BARS_1M": "sim", "POLICY_EOD": "sim"}
    settings = load_settings(environ)
    router = Router(build_providers(settings, clock, CAL, environ), settings, clock, metrics)
    return BarIngestor(
        store=store,
        router=router,
        calendar=CAL,
        clock=clock,
        metrics=metrics,
        generations=SeriesGenerations(cache),
    )


def service(store: SqliteStore, clock: ManualClock, cache: Cache, metrics: Metrics) -> MarketService:
    return MarketService(
        store=store,
        calendar=CAL,
        clock=clock,
        cache=cache,
        responses=ResponseBytes(max_bytes=8 << 20, ttl_seconds=300),
        metrics=metrics,
    )


def closes(body: bytes) -> list[float]:
    return [b["close"] for b in orjson.loads(body)["bars"]]


async def test_a_closed_range_is_kept_until_a_write_changes_its_series(store: SqliteStore) -> None:
    clock = ManualClock(AFTER)
    cache, metrics = InMemoryCache(clock), Metrics()
    feed = ingestor(store, clock, cache, metrics)
    market = service(store, clock, cache, metrics)
    await feed.ingest("AAPL", M1, OPEN, CLOSE)

    first = await market.bars_json("AAPL", M1, OPEN, CLOSE)
    assert len(orjson.loads(first)["bars"]) == 390
    assert await market.bars_json("AAPL", M1, OPEN, CLOSE) is first  # the kept bytes
    hits = lambda: metrics.value("bars_response_cache_total", result="hit")  # noqa: E731
    assert hits() == 1

    # Fetching again changes nothing: the series keeps its generation and its bytes.
    await feed.ingest("AAPL", M1, OPEN, CLOSE)
    assert await market.bars_json("AAPL", M1, OPEN, CLOSE) is first
    assert hits() == 2

    # A vendor correction, written as the ingestor writes it, then announced.
    revised = [
        b.with_(close=b.close + 1)
        for b in await store.read_bars("AAPL", M1, OPEN, OPEN + timedelta(minutes=3))
    ]
    clock.advance(60)
    await store.write_bars(revised, as_of=clock.now())
    await SeriesGenerations(cache).bump("AAPL", M1)
    after = await market.bars_json("AAPL", M1, OPEN, CLOSE)
    assert closes(after)[:3] == [b.close for b in revised]
    assert closes(after)[3:] == closes(first)[3:]
    assert hits() == 2
    # A rolled-up read of the same series moved on too.
    hourly = await market.bars_json("AAPL", Interval.H1, OPEN, CLOSE)
    assert closes(hourly)[0] == closes(after)[59]
    # What was known before the correction is still what an as_of read shows, kept or not.
    for _ in range(2):
        before = await market.bars_json("AAPL", M1, OPEN, CLOSE, as_of=AFTER)
        assert closes(before) == closes(first)


async def test_the_ingestor_moves_a_series_on_only_when_it_changed(store: SqliteStore) -> None:
    clock = ManualClock(AFTER)
    cache, metrics = InMemoryCache(clock), Metrics()
    feed = ingestor(store, clock, cache, metrics)
    generations = SeriesGenerations(cache)
    g0 = await generations.current("AAPL", M1)
    assert await generations.current("AAPL", M1) == g0  # stable while nothing is written
    await feed.ingest("AAPL", M1, OPEN, CLOSE)
    g1 = await generations.current("AAPL", M1)
    assert g1 != g0
    await feed.ingest("AAPL", M1, OPEN, CLOSE)  # the same bars again: nothing changed
    assert await generations.current("AAPL", M1) == g1
    assert await generations.current("AAPL", Interval.D1) != g1  # series are apart


async def test_an_open_range_is_read_fresh_every_time(store: SqliteStore) -> None:
    clock = ManualClock(datetime(2025, 10, 8, 15, 0, tzinfo=UTC))
    cache, metrics = InMemoryCache(clock), Metrics()
    feed = ingestor(store, clock, cache, metrics)
    market = service(store, clock, cache, metrics)
    await feed.ingest("AAPL", M1, OPEN, clock.now())
    end = clock.now() + timedelta(seconds=1)  # the intraday route's default end
    n = len(orjson.loads(await market.bars_json("AAPL", M1, OPEN, end))["bars"])
    clock.advance(120)
    await store.write_bars(ground_truth("AAPL", M1, OPEN, clock.now()), as_of=clock.now())
    # Not announced, yet seen: ranges that reach now are never kept.
    assert len(orjson.loads(await market.bars_json("AAPL", M1, OPEN, clock.now()))["bars"]) == n + 2
    assert metrics.value("bars_response_cache_total", result="hit") == 0
    assert metrics.value("bars_response_cache_total", result="bypass") == 2


async def test_two_api_processes_sharing_redis_never_serve_a_superseded_bar(store: SqliteStore) -> None:
    clock = ManualClock(AFTER)
    client = aioredis.Redis.from_url(redis_url())
    prefix = key_prefix()
    try:
        metrics = Metrics()
        # Each "process" has its own Redis cache object and its own kept bytes.
        api_a = service(store, clock, RedisCache(client, prefix=prefix), metrics)
        api_b = service(store, clock, RedisCache(client, prefix=prefix), metrics)
        feed = ingestor(store, clock, RedisCache(client, prefix=prefix), metrics)
        await feed.ingest("AAPL", M1, OPEN, CLOSE)
        original = closes(await api_a.bars_json("AAPL", M1, OPEN, CLOSE))
        assert closes(await api_b.bars_json("AAPL", M1, OPEN, CLOSE)) == original
        assert closes(await api_a.bars_json("AAPL", M1, OPEN, CLOSE)) == original  # kept in A

        async def revise(delta: float) -> None:
            bars = await store.read_bars("AAPL", M1, OPEN, OPEN + timedelta(minutes=1))
            clock.advance(60)
            await store.write_bars([b.with_(close=b.close + delta) for b in bars], as_of=clock.now())

        # A worker's write, announced in Redis: both processes move on.
        await revise(1.0)
        await SeriesGenerations(RedisCache(client, prefix=prefix)).bump("AAPL", M1)
        for api in (api_a, api_b):
            assert closes(await api.bars_json("AAPL", M1, OPEN, CLOSE))[0] == original[0] + 1.0

        # Redis restarts and loses every generation; both processes keep bytes again.
        await delete_prefix(client, prefix)
        for api in (api_a, api_b):
            for _ in range(2):
                assert closes(await api.bars_json("AAPL", M1, OPEN, CLOSE))[0] == original[0] + 1.0
        # It restarts again, losing the announcement of a write made just before: the
        # generation taken now is new, so no bytes kept since the last restart match it.
        await revise(1.0)
        await SeriesGenerations(RedisCache(client, prefix=prefix)).bump("AAPL", M1)
        await delete_prefix(client, prefix)
        for api in (api_a, api_b):
            assert closes(await api.bars_json("AAPL", M1, OPEN, CLOSE))[0] == original[0] + 2.0
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


def test_kept_bytes_stay_within_their_budget_and_expire() -> None:
    kept = ResponseBytes(max_bytes=100, ttl_seconds=0.2)
    kept.put("a", b"x" * 40)
    kept.put("b", b"y" * 40)
    assert kept.get("a") == b"x" * 40  # "a" is now the most recently used
    kept.put("c", b"z" * 40)  # over budget: the least recently used ("b") goes
    assert kept.get("b") is None and kept.get("a") is not None and kept.get("c") is not None
    assert kept.size == 80
    kept.put("huge", b"h" * 101)  # larger than the whole budget: not kept, nothing evicted
    assert kept.get("huge") is None and len(kept) == 2
    time.sleep(0.25)
    assert kept.get("a") is None and kept.get("c") is None
    assert kept.size == 0


async def test_with_the_cache_turned_off_every_read_is_built_and_no_generation_is_asked(
    store: SqliteStore,
) -> None:
    clock = ManualClock(AFTER)
    cache, metrics = InMemoryCache(clock), Metrics()
    await store.write_bars(ground_truth("AAPL", M1, OPEN, CLOSE), as_of=AFTER)
    market = MarketService(
        store=store, calendar=CAL, clock=clock, cache=cache, responses=None, metrics=metrics
    )
    first = await market.bars_json("AAPL", M1, OPEN, CLOSE)
    assert await market.bars_json("AAPL", M1, OPEN, CLOSE) == first
    assert await market.kept_bars("AAPL", M1, OPEN, CLOSE) is None
    assert metrics.value("bars_response_cache_total", result="bypass") == 2
    assert await cache.get("series-gen:AAPL:1m") is None  # BARS_RESPONSE_CACHE_MB=0 costs no round trip
