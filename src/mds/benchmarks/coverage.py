"""Coverage snapshot of 8,000 tracked symbols: computed from the store, then read from the cache.

A fresh store (a SQLite file, or a PostgreSQL database ``mds_bench_<uuid>`` on
MDS_BENCH_DATABASE_URL as in :mod:`mds.benchmarks.pg`, dropped afterwards) gets ``symbols``
tracked symbols (index members and holdings) with ``sessions`` daily bars each, the last
hour of the last closed session in 5m bars (a quarter in 1m bars instead), and planted
staleness: every 50th symbol lacks the last session, every 100th the last three, every
200th holds nothing. Filling is not timed.

``snapshot_seconds`` is the median of three ``CoverageService.snapshot()`` calls from the
store, the real tracked set (``TrackedService.tracked_set``) included; targets: under 2 s.
``read_p99_ms`` is over ``reads`` ``read()`` calls served from the cache after one
``refresh()``, by a second service as another process would (``first_read_ms``: its first
read, which decodes the whole snapshot); target: under 20 ms. ``--cache redis`` reads
through Redis (MDS_BENCH_REDIS_URL), as several processes do. The snapshot's buckets must match what was planted.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mds.cache.base import Cache
from mds.cache.memory import InMemoryCache
from mds.calendar import MarketCalendar, Session, get_calendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval
from mds.domain.reference import Constituent, IndexName
from mds.observability.metrics import Metrics
from mds.services.coverage import CACHE_KEY, CACHE_TOKEN_KEY, CoverageService
from mds.services.tracked import TrackedService
from mds.storage.base import Store
from mds.storage.postgres import PostgresStore
from mds.storage.sqlite import SqliteStore

NOW = datetime(2025, 10, 21, 12, 0, tzinfo=UTC)  # Tuesday before the open: Monday is the last session
_BATCH = 50_000
_INDEXES: tuple[tuple[IndexName, int], ...] = (("SP500", 503), ("NASDAQ100", 101), ("DOW30", 30))


def _symbol(i: int) -> str:
    return f"S{i:05d}"


def _behind(i: int) -> int | None:
    """Sessions symbol ``i`` lacks at the end (None: it holds no bar at all)."""
    if i % 200 == 3:
        return None
    if i % 100 == 2:
        return 3
    if i % 50 == 1:
        return 1
    return 0


def _expected(symbols: int) -> dict[str, int]:
    out = {"<=24h": 0, "24-48h": 0, ">48h": 0, "none": 0}
    for i in range(symbols):
        b = _behind(i)
        out["none" if b is None else "<=24h" if b == 0 else "24-48h" if b == 1 else ">48h"] += 1
    return out


def _bars(i: int, sessions: list[Session]) -> list[Bar]:
    behind = _behind(i)
    if behind is None:
        return []
    sym, price = _symbol(i), 10.0 + i % 500
    held = sessions[: len(sessions) - behind]
    out = [Bar(sym, Interval.D1, s.open, price, price + 1, price - 1, price, 1e6, "bench") for s in held]
    last = held[-1]
    interval = Interval.M1 if i % 4 == 0 else Interval.M5
    n = 60 // (interval.seconds // 60)  # the session's last hour
    first = last.close - timedelta(hours=1)
    out += [
        Bar(sym, interval, first + k * interval.delta, price, price, price, price, 100.0, "bench")
        for k in range(n)
    ]
    return out


async def _fill(store: Store, calendar: MarketCalendar, symbols: int, sessions: int) -> dict[str, int]:
    closed = calendar.closed_sessions(NOW, sessions)
    names = [_symbol(i) for i in range(symbols)]
    for index, size in _INDEXES:
        await store.apply_constituents(index, [Constituent(s) for s in names[:size]], source="bench", now=NOW)
    await store.add_holdings(names, note="bench", now=NOW)
    counts = {"daily": 0, "intraday": 0}
    chunk: list[Bar] = []
    for i in range(symbols):
        for bar in _bars(i, closed):
            counts["daily" if bar.interval is Interval.D1 else "intraday"] += 1
            chunk.append(bar)
        if len(chunk) >= _BATCH:
            await store.write_bars(chunk, as_of=NOW)
            chunk = []
    if chunk:
        await store.write_bars(chunk, as_of=NOW)
    return counts


async def _measure(
    store: Store, backend: str, cache: Cache, cache_name: str, symbols: int, sessions: int, reads: int
) -> dict[str, object]:
    calendar = get_calendar("XNYS")
    t = time.perf_counter()
    counts = await _fill(store, calendar, symbols, sessions)
    fill_s = time.perf_counter() - t
    clock = ManualClock(NOW)
    settings = load_settings({"BACKFILL_TRACKED_SESSIONS": str(min(sessions, 200))})
    tracked = TrackedService(store=store, calendar=calendar, clock=clock, settings=settings)
    service = CoverageService(store, calendar, clock, cache, Metrics(), tracked.tracked_set, settings)

    t = time.perf_counter()
    tracked_set = await tracked.tracked_set()
    tracked_s = time.perf_counter() - t
    times = []
    snap: dict[str, Any] = {}
    for _ in range(3):
        t = time.perf_counter()
        snap = await service.snapshot()
        times.append(time.perf_counter() - t)
    # SPY is always tracked and holds nothing here.
    always = len(tracked_set.all - {_symbol(i) for i in range(symbols)})
    expected = _expected(symbols)
    expected["none"] += always
    assert snap["tracked_count"] == symbols + always, snap["tracked_count"]
    assert snap["daily"]["freshness"] == expected, snap["daily"]["freshness"]

    await service.refresh()
    # Read as another process would: a second service over the same cache. Its first read
    # decodes the whole snapshot; later ones find the cache's token unchanged.
    reader = CoverageService(store, calendar, clock, cache, Metrics(), tracked.tracked_set, settings)
    t = time.perf_counter()
    assert (await reader.read())["meta"]["source"] == "cache"
    first_read_ms = (time.perf_counter() - t) * 1000
    latencies = []
    for _ in range(reads):
        t = time.perf_counter()
        served = await reader.read()
        latencies.append((time.perf_counter() - t) * 1000)
        assert served["meta"]["source"] == "cache"
    latencies.sort()
    return {
        "benchmark": "coverage",
        "backend": backend,
        "cache": cache_name,
        "symbols": symbols,
        "tracked": snap["tracked_count"],
        "daily_bars": counts["daily"],
        "intraday_bars": counts["intraday"],
        "fill_seconds": round(fill_s, 1),
        "tracked_set_seconds": round(tracked_s, 3),
        "snapshot_seconds": round(statistics.median(times), 3),
        "snapshot_max_seconds": round(max(times), 3),
        "first_read_ms": round(first_read_ms, 3),
        "reads": reads,
        "read_p50_ms": round(statistics.median(latencies), 3),
        "read_p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 3),
        "status": snap["status"],
        "daily_freshness": snap["daily"]["freshness"],
        "m5_freshness": snap["m5"]["freshness"],
        "targets": {"snapshot_seconds": 2.0, "read_p99_ms": 20.0},
    }


@asynccontextmanager
async def _cache(kind: str) -> AsyncIterator[Cache]:
    if kind == "memory":
        yield InMemoryCache(ManualClock(NOW))
        return
    import os
    import uuid

    from redis.asyncio import Redis

    from mds.cache.redis import RedisCache
    from mds.constants import BENCH_PREFIX

    redis = Redis.from_url(os.environ.get("MDS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    cache = RedisCache(redis, prefix=f"{BENCH_PREFIX}{uuid.uuid4().hex[:8]}:")
    try:
        yield cache
    finally:
        for key in (CACHE_KEY, CACHE_TOKEN_KEY):
            await cache.delete(key)
        await redis.aclose()


async def _sqlite(symbols: int, sessions: int, reads: int, cache_kind: str) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-coverage-"))
    store = SqliteStore(workdir / "coverage.db")
    try:
        await store.open()
        async with _cache(cache_kind) as cache:
            return await _measure(store, "sqlite", cache, cache_kind, symbols, sessions, reads)
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)


async def _postgres(symbols: int, sessions: int, reads: int, cache_kind: str) -> dict[str, object]:
    from mds.benchmarks.pg import create_db, drop_db

    url = await create_db()
    try:
        store = PostgresStore(url, pool_max=4)
        await store.open()
        try:
            async with _cache(cache_kind) as cache:
                return await _measure(store, "postgres", cache, cache_kind, symbols, sessions, reads)
        finally:
            await store.close()
    finally:
        await drop_db(url)


def run(
    backend: str = "sqlite", symbols: int = 8000, sessions: int = 260, reads: int = 200, cache: str = "memory"
) -> dict[str, object]:
    """Fill a fresh ``backend`` store, time snapshots from it and reads from ``cache``."""
    if cache not in ("memory", "redis"):
        raise ValueError(f"cache: {cache!r}; use memory or redis")
    if backend == "sqlite":
        return asyncio.run(_sqlite(symbols, sessions, reads, cache))
    if backend == "postgres":
        return asyncio.run(_postgres(symbols, sessions, reads, cache))
    raise ValueError(f"backend: {backend!r}; use sqlite or postgres")
