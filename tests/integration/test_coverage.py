"""CoverageService over a real SQLite store on a ManualClock, and its routes over the app.

The clock stands on Tuesday 2025-10-21 at 08:00 ET, before the open: Monday 10-20 is the
last closed session ("<=24h"), Friday 10-17 the one before ("24-48h").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mds.access.admin import issue_key
from mds.access.keys import Role
from mds.api.app import _include_guarded, create_app
from mds.api.auth import ADMIN, READ
from mds.api.routes import coverage as coverage_routes
from mds.cache.memory import InMemoryCache
from mds.calendar import MarketCalendar
from mds.config import Settings, load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval, Tier
from mds.domain.records import UniverseEntry
from mds.domain.reference import TrackedSet
from mds.observability.metrics import Metrics
from mds.services.coverage import CACHE_KEY, CoverageService
from mds.storage.sqlite import SqliteStore

CAL = MarketCalendar()
NOW = datetime(2025, 10, 21, 12, 0, tzinfo=UTC)
SESSIONS = CAL.closed_sessions(NOW, 10)  # ascending; SESSIONS[-1] is Monday 10-20
MON, FRI, THU = SESSIONS[-1], SESSIONS[-2], SESSIONS[-3]


def daily(symbol: str, sessions: list[Any]) -> list[Bar]:
    return [Bar(symbol, Interval.D1, s.open, 10.0, 11.0, 9.0, 10.5, 1000.0, "sim") for s in sessions]


def intraday(symbol: str, interval: Interval, ts: datetime) -> Bar:
    return Bar(symbol, interval, ts, 10.0, 10.1, 9.9, 10.0, 100.0, "sim")


@dataclass
class Tracked:
    """A tracked set the test can swap."""

    symbols: set[str] = field(default_factory=set)
    calls: int = 0
    fail_next: int = 0

    async def __call__(self) -> TrackedSet:
        self.calls += 1
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("tracked set unavailable")
        return TrackedSet(frozenset(self.symbols), frozenset(), {"SP500": 503, "NASDAQ100": 101, "DOW30": 30})


@dataclass
class World:
    store: SqliteStore
    clock: ManualClock
    cache: InMemoryCache
    metrics: Metrics
    tracked: Tracked
    settings: Settings
    service: CoverageService


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = load_settings({"BACKFILL_TRACKED_SESSIONS": "10", "COVERAGE_REFRESH_SEC": "3600"})
    clock = ManualClock(NOW)
    store = SqliteStore(tmp_path / "coverage.db")
    await store.open()
    cache = InMemoryCache(clock)
    metrics = Metrics()
    tracked = Tracked()
    service = CoverageService(store, CAL, clock, cache, metrics, tracked, settings)
    try:
        yield World(store, clock, cache, metrics, tracked, settings, service)
    finally:
        await store.close()


FRESH = [f"F{i:03d}" for i in range(60)]
OLD = [f"OLD{i:02d}" for i in range(55)]


async def seed_degraded(w: World) -> None:
    """60 fresh symbols (5m data for 30 of them, 1m only for 30), one a session behind,
    55 three sessions behind, one without bars, and an untracked symbol with daily bars."""
    bars: list[Bar] = []
    for i, s in enumerate(FRESH):
        bars += daily(s, SESSIONS)
        last_bar = MON.close - timedelta(minutes=5)
        bars.append(intraday(s, Interval.M5 if i % 2 else Interval.M1, last_bar))
    bars += daily("BEHIND", SESSIONS[:-1])
    bars.append(intraday("BEHIND", Interval.M5, FRI.open))
    for s in OLD:
        bars += daily(s, SESSIONS[:-3])
    bars += daily("UNTRACKED", SESSIONS)
    await w.store.write_bars(bars, as_of=NOW)
    w.tracked.symbols = {*FRESH, "BEHIND", *OLD, "NOBARS"}


def gauge(w: World, name: str, **labels: str) -> float | None:
    return w.metrics.registry.get_sample_value(name, labels)


async def test_snapshot_shape_buckets_and_capped_stale_lists(world: World) -> None:
    await seed_degraded(world)
    snap = await world.service.snapshot()
    assert set(snap) >= {"symbols", "tracked_count", "indices", "daily", "m5", "status", "sla", "meta"}
    assert snap["symbols"] == 60 + 1 + 55 + 1  # every symbol with a daily bar, tracked or not
    assert snap["tracked_count"] == 117
    assert snap["indices"] == {"SP500": 503, "NASDAQ100": 101, "DOW30": 30}
    assert snap["sessions"] == {"last_closed": "2025-10-20", "previous": "2025-10-17"}

    d = snap["daily"]
    assert d["count"] == 116  # tracked symbols holding a daily bar; NOBARS holds none
    assert d["freshness"] == {"<=24h": 60, "24-48h": 1, ">48h": 55, "none": 1}
    assert d["last"]["F000"] == "2025-10-20T13:30:00Z"
    assert d["last"]["BEHIND"] == "2025-10-17T13:30:00Z"
    assert "UNTRACKED" not in d["last"] and "NOBARS" not in d["last"]
    assert d["stale"][">48h"] == OLD[:50]  # the first 50, sorted
    assert d["stale"]["24-48h"] == ["BEHIND"]
    assert d["stale"]["none"] == ["NOBARS"]
    assert "<=24h" not in d["stale"]

    m = snap["m5"]
    # 1m bars count as 5m data: F000 (1m only) is as fresh as F001 (5m).
    assert m["last"]["F000"] == m["last"]["F001"] == "2025-10-20T19:55:00Z"
    assert m["freshness"] == {"<=24h": 60, "24-48h": 1, ">48h": 0, "none": 56}
    assert m["count"] == 61
    assert m["stale"]["none"] == sorted(["NOBARS", *OLD])[:50]


async def test_status_degraded_names_every_failed_check_with_its_figures(world: World) -> None:
    await seed_degraded(world)
    snap = await world.service.snapshot()
    assert snap["status"] == "degraded"
    sla = snap["sla"]
    assert sla["ok"] is False
    assert sla["failed"] == ["daily_share", "daily_over_48h", "m5_previous_session"]
    assert sla["checks"]["daily_share"] == {"ok": False, "value": round(60 / 117, 4), "threshold": 0.9}
    assert sla["checks"]["daily_over_48h"] == {"ok": False, "value": 55, "threshold": 0}
    assert sla["checks"]["m5_previous_session"] == {"ok": False, "value": 57, "threshold": 0}
    assert gauge(world, "coverage_status_ok") == 0
    assert gauge(world, "coverage_tracked_symbols") == 117
    assert gauge(world, "coverage_daily_share") == round(60 / 117, 4)
    assert gauge(world, "coverage_freshness_symbols", interval="daily", bucket=">48h") == 55
    assert gauge(world, "coverage_freshness_symbols", interval="m5", bucket="none") == 56
    assert gauge(world, "coverage_snapshot_timestamp_seconds") == NOW.timestamp()


async def test_status_ok_when_every_check_passes_and_each_check_alone_degrades(world: World) -> None:
    await seed_degraded(world)
    world.tracked.symbols = set(FRESH)
    snap = await world.service.snapshot()
    assert (snap["status"], snap["sla"]["failed"]) == ("ok", [])
    assert gauge(world, "coverage_status_ok") == 1

    # One symbol a session behind among 60: the share holds (59/61 >= 0.9) but 5m fails.
    world.tracked.symbols = {*FRESH, "BEHIND"}
    snap = await world.service.snapshot()
    assert snap["sla"]["failed"] == ["m5_previous_session"]
    assert snap["sla"]["checks"]["daily_share"]["ok"] is True

    # One symbol three sessions behind, with 5m data of Monday: only ">48h" fails.
    await world.store.write_bars([intraday("OLD00", Interval.M1, MON.open)], as_of=NOW)
    world.tracked.symbols = {*FRESH, "OLD00"}
    snap = await world.service.snapshot()
    assert snap["sla"]["failed"] == ["daily_over_48h"]
    assert snap["status"] == "degraded"


async def test_monday_before_the_open_friday_is_fresh(world: World) -> None:
    await world.store.write_bars(
        [*daily("SPY", SESSIONS[:-1]), intraday("SPY", Interval.M5, FRI.close - timedelta(minutes=5))],
        as_of=NOW,
    )
    world.tracked.symbols = {"SPY"}
    world.clock.set(datetime(2025, 10, 20, 12, 0, tzinfo=UTC))  # Monday 08:00 ET
    snap = await world.service.snapshot()
    assert snap["daily"]["freshness"]["<=24h"] == 1 and snap["m5"]["freshness"]["<=24h"] == 1
    assert snap["status"] == "ok"
    world.clock.set(NOW)  # Tuesday morning: Monday closed without SPY's bars
    snap = await world.service.snapshot()
    assert snap["daily"]["freshness"]["24-48h"] == 1
    assert snap["sla"]["failed"] == ["daily_share", "m5_previous_session"]


async def test_read_serves_the_refreshed_snapshot_from_the_cache_until_it_expires(world: World) -> None:
    await seed_degraded(world)
    first = await world.service.read()
    assert first["meta"] == {"source": "db", "updated_at": "2025-10-21T12:00:00Z"}
    assert await world.cache.get(CACHE_KEY) is None  # a db read is not cached

    refreshed = await world.service.refresh()
    assert refreshed["meta"]["source"] == "db"
    cached = await world.cache.get(CACHE_KEY)
    assert cached is not None and cached["meta"] == {"source": "cache", "updated_at": "2025-10-21T12:00:00Z"}
    assert {k: v for k, v in cached.items() if k != "meta"} == {
        k: v for k, v in refreshed.items() if k != "meta"
    }

    # New bars arrive: readers see the cached snapshot, stamped with when it was made.
    await world.store.write_bars(daily("BEHIND", [MON]), as_of=NOW)
    world.clock.advance(600)
    served = await world.service.read()
    assert served["meta"] == {"source": "cache", "updated_at": "2025-10-21T12:00:00Z"}
    assert served["daily"]["freshness"]["24-48h"] == 1
    served["meta"]["source"] = "mutated"  # a reader's copy: the cache keeps its own
    assert (await world.service.read())["meta"]["source"] == "cache"

    # Two refresh periods without a refresh: the snapshot expires and the store answers.
    world.clock.advance(2 * 3600)
    fresh = await world.service.read()
    assert fresh["meta"]["source"] == "db"
    assert fresh["daily"]["freshness"]["24-48h"] == 0
    assert fresh["meta"]["updated_at"] == "2025-10-21T14:10:00Z"


class CountingCache(InMemoryCache):
    """The in-process cache, counting reads per key (stands for a shared Redis here)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.reads: dict[str, int] = {}

    async def get(self, key: str) -> Any | None:
        self.reads[key] = self.reads.get(key, 0) + 1
        return await super().get(key)


async def test_another_process_reads_each_snapshot_whole_once(world: World) -> None:
    await seed_degraded(world)
    shared = CountingCache(world.clock)
    writer = CoverageService(world.store, CAL, world.clock, shared, Metrics(), world.tracked, world.settings)
    reader = CoverageService(world.store, CAL, world.clock, shared, Metrics(), world.tracked, world.settings)
    first = await writer.refresh()
    for _ in range(3):
        served = await reader.read()
        assert served["meta"]["source"] == "cache"
        assert served["daily"]["freshness"] == first["daily"]["freshness"]
    assert shared.reads[CACHE_KEY] == 1  # then the token said it had not changed

    await world.store.write_bars(daily("BEHIND", [MON]), as_of=NOW)
    world.clock.advance(60)
    await writer.refresh()
    served = await reader.read()
    assert served["daily"]["freshness"]["24-48h"] == 0  # a new token: the new snapshot
    assert served["meta"]["updated_at"] == "2025-10-21T12:01:00Z"
    assert shared.reads[CACHE_KEY] == 2


async def test_stale_symbols_are_the_tracked_daily_series_not_fresh(world: World) -> None:
    await seed_degraded(world)
    stale = await world.service.stale_symbols()
    assert stale == sorted(["BEHIND", "NOBARS", *OLD])  # every one, not just 50
    assert await world.service.stale_symbols([">48h"]) == OLD
    groups = await world.service.stale_by_bucket()
    assert {b: len(v) for b, v in groups.items()} == {">48h": 55, "none": 1, "24-48h": 1}
    with pytest.raises(ValueError):
        await world.service.stale_symbols(["stale"])  # type: ignore[list-item]


async def test_symbol_view_with_gaps_confirmed_empty_and_listing(world: World) -> None:
    # HOLEY misses sessions 3, 4 and 7 of the ten; session 8 is missing but confirmed empty.
    held = [s for i, s in enumerate(SESSIONS) if i not in (3, 4, 7, 8)]
    await world.store.write_bars(
        [*daily("HOLEY", held), intraday("HOLEY", Interval.M5, FRI.open + timedelta(minutes=5))], as_of=NOW
    )
    epoch = int(SESSIONS[8].open.timestamp())
    confirmed = await world.store.record_empty_evidence(
        "HOLEY", Interval.D1, [epoch], "sim", now=NOW, needed_answers=1, needed_providers=1
    )
    assert confirmed == [epoch]
    world.tracked.symbols = {"HOLEY"}

    view = await world.service.symbol("HOLEY")
    assert view["symbol"] == "HOLEY" and view["tracked"] is True
    assert view["daily"] == {
        "first": "2025-10-07T13:30:00Z",
        "last": "2025-10-20T13:30:00Z",
        "bucket": "<=24h",
    }
    assert view["m5"] == {
        "last": "2025-10-17T13:35:00Z",
        "bucket": "24-48h",
        "last_5m": "2025-10-17T13:35:00Z",
        "last_1m": None,
    }
    assert view["gaps"] == [
        {"start": "2025-10-10T13:30:00Z", "end": "2025-10-14T13:30:00Z", "missing_bars": 2},
        {"start": "2025-10-16T13:30:00Z", "end": "2025-10-17T13:30:00Z", "missing_bars": 1},
    ]
    assert view["missing_sessions"] == 3
    assert view["window"] == {"sessions": 10, "start": "2025-10-07T13:30:00Z", "end": "2025-10-21T12:00:00Z"}

    # A symbol listed three sessions ago: nothing before its first session is missing.
    await world.store.upsert_universe(
        [UniverseEntry("NEWCO", Tier.T2, True, "NEWCO", "XNYS")], version_tag="t", source_meta={}
    )
    await world.store.set_first_trade_session("NEWCO", SESSIONS[-3].open)
    await world.store.write_bars(daily("NEWCO", SESSIONS[-3:]), as_of=NOW)
    view = await world.service.symbol("NEWCO")
    assert view["tracked"] is False
    assert view["gaps"] == [] and view["missing_sessions"] == 0
    assert view["window"]["start"] == iso_of(SESSIONS[-3].open)
    assert view["m5"] == {"last": None, "bucket": "none", "last_5m": None, "last_1m": None}

    nothing = await world.service.symbol("NOBARS")
    assert nothing["daily"] == {"first": None, "last": None, "bucket": "none"}
    assert nothing["missing_sessions"] == 10 and len(nothing["gaps"]) == 1


def iso_of(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


async def test_the_hourly_monitor_task_caches_the_snapshot_and_counts_what_it_saw(world: World) -> None:
    from types import SimpleNamespace

    from mds.ops.catalog import monitor_coverage_health

    await seed_degraded(world)
    ctx: Any = SimpleNamespace(coverage=world.service)
    world.tracked.fail_next = 1
    with pytest.raises(Exception, match="tracked"):  # the run fails; nothing is cached
        await monitor_coverage_health(ctx, {})
    assert await world.cache.get(CACHE_KEY) is None
    world.clock.advance(3600)
    counters: dict[str, Any] = {}
    await monitor_coverage_health(ctx, counters)
    cached = await world.cache.get(CACHE_KEY)
    assert cached is not None and cached["meta"]["updated_at"] == "2025-10-21T13:00:00Z"
    assert counters == {
        "status": "degraded",
        "tracked": cached["tracked_count"],
        "daily_fresh": cached["daily"]["freshness"]["<=24h"],
        "daily_stale": cached["daily"]["freshness"][">48h"] + cached["daily"]["freshness"]["none"],
        "m5_fresh": cached["m5"]["freshness"]["<=24h"],
    }
    assert counters["daily_stale"] == 56  # 55 three sessions behind and one without bars
    assert gauge(world, "coverage_snapshot_timestamp_seconds") == (NOW + timedelta(hours=1)).timestamp()


# -- the routes, over the app built as in tests/integration/conftest.py --------------------


@pytest.fixture
async def coverage_api(api: Any) -> AsyncIterator[tuple[Any, Any]]:
    """The ``api`` fixture's runtime with a CoverageService over its own parts, and a client
    for an app serving the coverage routes (included here unless app.py already does)."""
    _, rt = api
    rt.coverage = CoverageService(
        rt.store, rt.calendar, rt.clock, rt.cache, rt.metrics, rt.tracked.tracked_set, rt.settings
    )

    @asynccontextmanager
    async def same_runtime() -> AsyncIterator[Any]:
        yield rt

    app = create_app(same_runtime)
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/api/v1/market-data/coverage" not in paths:
        _include_guarded(app, coverage_routes.router, READ)
        _include_guarded(app, coverage_routes.admin_router, ADMIN)
    app.state.runtime = rt
    keys = {}
    for role in (Role.ADMIN, Role.READ):
        keys[role], _ = await issue_key(rt.store, f"cov-{role.value}", role, now=rt.clock.now())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://mds") as client:
        yield client, (rt, keys)


async def test_coverage_routes(coverage_api: Any) -> None:
    client, (rt, keys) = coverage_api
    admin, reader = {"X-API-Key": keys[Role.ADMIN]}, {"X-API-Key": keys[Role.READ]}
    await rt.tracked.hold(["AAPL"])  # tracked: SPY (always) and AAPL

    r = await client.get("/api/v1/market-data/coverage", headers=reader)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["meta"]["source"] == "db"
    assert body["tracked_count"] == 2 and body["daily"]["count"] == 1  # the fixture holds AAPL's daily bars
    assert set(body["daily"]["freshness"]) == {"<=24h", "24-48h", ">48h", "none"}
    assert body["daily"]["stale"]["none"] == ["SPY"]

    # Refresh is the admin's: a reader is refused, the admin gets the snapshot and caches it.
    r = await client.post("/api/v1/market-data/admin/coverage/refresh", headers=reader)
    assert r.status_code == 403
    r = await client.post("/api/v1/market-data/admin/coverage/refresh", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["tracked_count"] == 2
    r = await client.get("/api/v1/market-data/coverage", headers=reader)
    assert r.json()["meta"]["source"] == "cache"

    r = await client.get("/api/v1/market-data/coverage/aapl", headers=reader)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["symbol"] == "AAPL" and view["tracked"] is True
    assert view["daily"]["last"] is not None and view["m5"]["last_1m"] is not None

    r = await client.get("/api/v1/market-data/coverage/NOSUCH", headers=reader)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/api/v1/market-data/coverage/bad$symbol", headers=reader)
    assert r.status_code == 422

    # The stale-only backfill queues SPY's daily sessions; AAPL is fresh or near it.
    r = await client.post("/api/v1/market-data/admin/coverage/backfill-stale-daily", headers=reader)
    assert r.status_code == 403
    r = await client.post("/api/v1/market-data/admin/coverage/backfill-stale-daily", headers=admin)
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["per_bucket"]["none"] == 1 and out["sessions"] == rt.settings.BACKFILL_TRACKED_SESSIONS
    assert out["jobs_created"] >= 1
    jobs = await rt.store.active_backfills("SPY", Interval.D1)
    assert jobs and all(j.interval is Interval.D1 for j in jobs)
    # Again: everything is already queued, so it is refused as duplicate, not queued twice.
    r = await client.post("/api/v1/market-data/admin/coverage/backfill-stale-daily", headers=admin)
    assert r.status_code == 202
    again = r.json()
    assert again["jobs_created"] == 0 and again["refused"].get("duplicate", 0) >= 1
