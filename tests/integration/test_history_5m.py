"""Native 5m history (issue 14): the backfill of tracked symbols without a 1m series, 5m
reads that serve it where there is no 1m and the rollup where there is, retention, and the
straight-from-the-store history route. Sim providers, a real SqliteStore, in-process queues.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mds.api.errors import install_error_handlers
from mds.api.routes import market_data
from mds.cache import InMemoryCache
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval, Tier
from mds.domain.records import UniverseEntry
from mds.errors import StorageError
from mds.observability.metrics import Metrics
from mds.providers.sim.market import ground_truth
from mds.runtime import Runtime
from mds.serialize import iso
from mds.services.bar_cache import ResponseBytes, SeriesGenerations
from mds.services.history5m import backfill_5m
from mds.services.market import MarketService
from mds.services.retention import DISABLED, TIMESCALE_SKIP, enforce_retention
from mds.storage.base import RetentionCount
from mds.storage.sqlite import SqliteStore
from tests.helpers import rows
from tests.integration.conftest import API_NOW, API_OPEN, CAL, Pipeline

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
M5 = Interval.M5
SIMS = {"sim", "sim_backup"}
ENV_5M = {"POLICY_BARS_5M": "sim,sim_backup"}
TIERS = {"AAPL": Tier.T0, "JPM": Tier.T1, "KO": Tier.T2}


async def with_universe(p: Pipeline) -> Pipeline:
    entries = [UniverseEntry(s, t) for s, t in TIERS.items()]
    await p.store.upsert_universe(entries, version_tag="test-5m", source_meta={})
    return p


def scaled(bars: list[Bar], factor: float, provider: str) -> list[Bar]:
    """The same bars at other (still valid) prices, from another provider."""
    return [
        b.with_(
            open=b.open * factor,
            high=b.high * factor,
            low=b.low * factor,
            close=b.close * factor,
            provider=provider,
        )
        for b in bars
    ]


def selected(p: Pipeline, capability: str) -> float:
    return sum(p.metrics.value("provider_selected_total", capability=capability, provider=n) for n in SIMS)


async def test_backfill_skips_symbols_with_1m_and_stores_vendor_5m_for_the_rest(make_pipeline) -> None:
    p = await with_universe(await make_pipeline(ENV_5M, now=NOW, tiers=TIERS))
    await p.store.write_bars(ground_truth("AAPL", Interval.M1, OPEN, NOW), as_of=NOW)

    report = await backfill_5m(
        symbols=["KO", "AAPL", "JPM", "JPM"],
        n_days=3,
        batch_size=2,
        backfiller=p.collector.backfiller,
        store=p.store,
        clock=p.clock,
        calendar=CAL,
    )
    assert report["symbols"] == 3 and report["skipped_with_1m"] == 1
    assert report["queued_symbols"] == 2 and report["jobs_created"] >= 2 and report["refused"] == {}
    assert report["start"] == iso(NOW - timedelta(days=3)) and report["end"] == iso(NOW)
    await p.drain_backfills()

    window = (NOW - timedelta(days=3), NOW)
    for symbol in ("JPM", "KO"):
        stored = await p.store.read_bars(symbol, M5, *window)
        assert rows(stored) == rows(ground_truth(symbol, M5, *window))
        assert len(stored) == 78 * 2 + 18  # Monday and Tuesday, Wednesday to 15:00
        assert {b.provider for b in stored} <= SIMS
    assert await p.store.read_bars("AAPL", M5, *window) == []
    # The 5m jobs were routed by bars_5m; nothing asked bars_1m.
    assert selected(p, "bars_5m") > 0 and selected(p, "bars_1m") == 0

    again = await backfill_5m(
        symbols=["AAPL", "JPM", "KO"],
        n_days=3,
        batch_size=50,
        backfiller=p.collector.backfiller,
        store=p.store,
        clock=p.clock,
        calendar=CAL,
    )
    assert (again["queued_symbols"], again["jobs_created"]) == (0, 0)  # nothing left to fetch


async def test_a_5m_job_fails_over_only_to_providers_that_serve_5m(make_pipeline) -> None:
    # sim_backup is the only bars_5m provider here; bars_1m's sim must not be asked.
    p = await make_pipeline({"POLICY_BARS_5M": "sim_backup"}, now=NOW, tiers=TIERS)
    outcome = await p.collector.ingestor.ingest("JPM", M5, OPEN, NOW)
    assert outcome.provider == "sim_backup" and outcome.gaps == []
    assert {b.provider for b in await p.store.read_bars("JPM", M5, OPEN, NOW)} == {"sim_backup"}


@pytest.fixture
async def market(make_pipeline) -> AsyncIterator[tuple[Pipeline, MarketService]]:
    p = await with_universe(await make_pipeline(ENV_5M, now=NOW, tiers=TIERS))
    cache = InMemoryCache(p.clock)
    # As runtime.py wires it: the ingestor bumps the generations the market service keys on.
    p.collector.ingestor.generations = SeriesGenerations(cache)
    service = MarketService(
        store=p.store,
        calendar=CAL,
        clock=p.clock,
        cache=cache,
        responses=ResponseBytes(max_bytes=10_000_000, ttl_seconds=3600),
        metrics=p.metrics,
    )
    yield p, service


async def test_5m_reads_serve_native_bars_without_1m_and_the_rollup_with_it(market) -> None:
    p, service = market
    await p.collector.ingestor.ingest("AAPL", Interval.M1, OPEN, NOW)
    await p.collector.ingestor.ingest("JPM", M5, OPEN, NOW)
    # AAPL also holds native 5m bars; its 1m series still decides its 5m answer.
    await p.store.write_bars(scaled(ground_truth("AAPL", M5, OPEN, NOW), 2.0, "native"), as_of=NOW)

    jpm = await service.bars("JPM", M5, OPEN, NOW)
    assert rows(jpm.bars) == rows(ground_truth("JPM", M5, OPEN, NOW)) and len(jpm.bars) == 18
    assert {b.provider for b in jpm.bars} <= SIMS and all(b.interval is M5 for b in jpm.bars)

    aapl = await service.bars("AAPL", M5, OPEN, NOW)
    assert rows(aapl.bars) == rows(ground_truth("AAPL", M5, OPEN, NOW))
    assert all("native" not in b.provider for b in aapl.bars)

    # Other intervals are untouched: no 1m bars means no 15m bars, native 5m or not.
    assert (await service.bars("JPM", Interval.M15, OPEN, NOW)).bars == []
    # A range without native 5m bars either is empty.
    assert (await service.bars("KO", M5, OPEN, NOW)).bars == []


async def test_kept_5m_responses_follow_native_5m_writes(market) -> None:
    p, service = market
    await p.collector.ingestor.ingest("JPM", M5, OPEN, NOW)
    end = NOW - timedelta(minutes=30)  # a closed range: its answer is kept
    first = await service.bars_json("JPM", M5, OPEN, end)
    assert await service.bars_json("JPM", M5, OPEN, end) == first
    assert await service.kept_bars("JPM", M5, OPEN, end) == first
    assert p.metrics.value("bars_response_cache_total", result="hit") >= 1

    # A vendor revises one bar; the ingestor stores it and moves the 5m generation on.
    bar = (await p.store.read_bars("JPM", M5, OPEN, OPEN + timedelta(minutes=5)))[0]
    revised = bar.with_(close=bar.low, provider="sim_backup")
    await p.store.write_bars([revised], as_of=NOW)
    assert p.collector.ingestor.generations is not None
    await p.collector.ingestor.generations.bump("JPM", M5)

    assert await service.kept_bars("JPM", M5, OPEN, end) is None
    now_served = (await service.bars("JPM", M5, OPEN, end)).bars
    assert now_served[0].close == bar.low and now_served[0].provider == "sim_backup"
    assert await service.bars_json("JPM", M5, OPEN, end) != first


async def test_retention_deletes_old_5m_and_reports_per_interval(market) -> None:
    p, service = market
    old_day = datetime(2025, 6, 2, 13, 30, tzinfo=UTC)  # > 90 days before NOW
    old_end = old_day + timedelta(hours=1)
    old_5m = ground_truth("JPM", M5, old_day, old_end)
    old_1m = ground_truth("AAPL", Interval.M1, old_day, old_end)
    await p.store.write_bars([*old_5m, *old_1m], as_of=NOW - timedelta(days=100))
    await p.store.write_bars(scaled(old_5m[:2], 1.5, "sim_backup"), as_of=NOW - timedelta(days=99))
    await p.collector.ingestor.ingest("JPM", M5, OPEN, NOW)
    kept = await service.bars_json("JPM", M5, old_day, old_end)
    assert len(old_5m) == 12 and b'"bars":[]' not in kept

    report = await enforce_retention(
        p.store,
        p.clock,
        max_days_5m=90,
        max_days_1m=0,
        timescale=False,
        metrics=p.metrics,
        generations=service.generations,
    )
    assert report["ran_at"] == iso(NOW)
    assert report["intervals"]["5m"] == {
        "max_days": 90,
        "cutoff": iso(NOW - timedelta(days=90)),
        "deleted_bars": 12,
        "deleted_history": 2,
    }
    assert report["intervals"]["1m"] == {"max_days": 0, "skipped": DISABLED}
    assert p.metrics.value("retention_deleted_bars_total", interval="5m") == 14
    assert await p.store.read_bars("JPM", M5, old_day, old_end) == []
    assert len(await p.store.read_bars("JPM", M5, OPEN, NOW)) == 18  # recent bars stay
    assert len(await p.store.read_bars("AAPL", Interval.M1, old_day, old_end)) == 60
    # The kept answer of the old range went with its bars.
    assert (await service.bars("JPM", M5, old_day, old_end)).bars == []
    assert b'"bars":[]' in await service.bars_json("JPM", M5, old_day, old_end)

    # On TimescaleDB its own policy expires 1m bars; the service leaves them alone.
    ts = await enforce_retention(p.store, p.clock, max_days_5m=90, max_days_1m=30, timescale=True)
    assert ts["intervals"]["1m"] == {"max_days": 30, "skipped": TIMESCALE_SKIP}
    assert ts["intervals"]["5m"]["deleted_bars"] == 0
    assert len(await p.store.read_bars("AAPL", Interval.M1, old_day, old_end)) == 60
    plain = await enforce_retention(p.store, p.clock, max_days_5m=0, max_days_1m=30, timescale=False)
    assert plain["intervals"]["5m"] == {"max_days": 0, "skipped": DISABLED}
    assert plain["intervals"]["1m"]["deleted_bars"] == 60
    assert await p.store.read_bars("AAPL", Interval.M1, old_day, old_end) == []


class _TimescaleLike(SqliteStore):
    """A store that says it runs on TimescaleDB, and fails its first retention pass."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.calls = 0
        self.second_pass = asyncio.Event()

    async def backend_info(self) -> dict[str, Any]:
        return {**await super().backend_info(), "timescaledb": True}

    async def delete_bars_before(self, interval: Interval, cutoff: datetime) -> RetentionCount:
        self.calls += 1
        if self.calls == 1:
            raise StorageError("database went away")
        self.second_pass.set()
        return await super().delete_bars_before(interval, cutoff)


async def test_the_retention_task_reads_the_backend_mode_and_a_failed_pass_raises_for_the_retry(
    tmp_path,
) -> None:
    from types import SimpleNamespace

    from mds.ops.catalog import enforce_price_data_retention

    settings = load_settings({"RETENTION_DAYS_1M": "30"})
    store = _TimescaleLike(str(tmp_path / "r.db"))
    await store.open()
    try:
        ctx: Any = SimpleNamespace(
            store=store, clock=ManualClock(NOW), settings=settings, metrics=Metrics(), generations=None
        )
        with pytest.raises(StorageError):  # the run fails; its schedule's retry policy tries again
            await enforce_price_data_retention(ctx, {})
        counters: dict[str, Any] = {}
        await enforce_price_data_retention(ctx, counters)
        assert store.calls == 2  # TimescaleDB: only 5m is deleted here, 1m is left to its policy
        assert counters == {
            "deleted_bars_5m": 0,
            "deleted_history_5m": 0,
            "deleted_bars_1m": 0,
            "deleted_history_1m": 0,
        }
        counters = {}
        await enforce_price_data_retention(ctx, counters, max_days_5m=0)
        assert store.calls == 2  # 0 keeps all: nothing asked of the store
    finally:
        await store.close()


# -- routes ---------------------------------------------------------------------------


@pytest.fixture
async def client(api) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The market-data routers over the ``api`` runtime (guards are app.py's concern)."""
    _, rt = api
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(market_data.router)
    app.include_router(market_data.admin_router)
    app.state.runtime = rt
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://mds") as c:
        yield c, rt


async def test_db_history_reads_the_stored_series(client) -> None:
    c, rt = client
    r = await c.get("/api/v1/market-data/db/history", params={"symbol": "aapl", "interval": "1d", "limit": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    daily = await rt.store.read_bars("AAPL", Interval.D1, API_NOW - timedelta(days=40), API_OPEN)
    assert body["symbol"] == "AAPL" and body["count"] == 5 and body["limit"] == 5
    assert [b["ts"] for b in body["bars"]] == [iso(b.ts) for b in daily[-5:]]
    assert [b["close"] for b in body["bars"]] == [b.close for b in daily[-5:]]

    # 5m straight from the store: AAPL's 1m series is not rolled up here.
    five = await c.get("/api/v1/market-data/db/history", params={"symbol": "AAPL", "interval": "5m"})
    assert five.status_code == 200 and five.json()["bars"] == []
    native = scaled(ground_truth("AAPL", M5, API_OPEN, API_NOW), 1.0, "fmp")
    await rt.store.write_bars(native, as_of=API_NOW)
    params = {
        "symbol": "AAPL",
        "interval": "5m",
        "start": "2025-10-08T14:00:00Z",
        "end": "2025-10-08T14:30:00Z",
    }
    body = (await c.get("/api/v1/market-data/db/history", params=params)).json()
    assert [b["ts"] for b in body["bars"]] == [
        iso(API_OPEN + timedelta(minutes=30 + 5 * i)) for i in range(6)
    ]
    assert {b["provider"] for b in body["bars"]} == {"fmp"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"symbol": "AAPL", "interval": "1h"}, "interval"),
        ({"symbol": "AAPL", "limit": 0}, "limit"),
        ({"symbol": "AAPL", "start": "yesterday"}, "start"),
        ({"symbol": "AAPL", "start": "2025-10-08T14:00:00Z", "end": "2025-10-08T14:00:00Z"}, "start"),
        ({"interval": "1d"}, "symbol"),
    ],
)
async def test_db_history_refuses_bad_input_naming_the_field(
    client, params: dict[str, Any], field: str
) -> None:
    c, _ = client
    r = await c.get("/api/v1/market-data/db/history", params=params)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field


async def test_db_history_of_an_unknown_symbol_is_404(client) -> None:
    c, _ = client
    r = await c.get("/api/v1/market-data/db/history", params={"symbol": "NOPE"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


async def test_admin_routes(client) -> None:
    c, rt = client
    r = await c.post("/api/v1/market-data/retention/enforce", params={"max_days_5m": 90})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "ran_at": iso(API_NOW),
        "intervals": {
            "5m": {
                "max_days": 90,
                "cutoff": iso(API_NOW - timedelta(days=90)),
                "deleted_bars": 0,
                "deleted_history": 0,
            },
            "1m": {"max_days": rt.settings.RETENTION_DAYS_1M, "skipped": DISABLED},
        },
    }
    assert (await c.post("/api/v1/market-data/retention/enforce", params={"max_days_5m": -1})).json()[
        "field"
    ] == ("max_days_5m")
    await rt.tracked.hold(["AAPL", "JPM"])  # tracked: AAPL, JPM and SPY
    r = await c.post("/api/v1/market-data/backfill/5m", params={"n_days": 5, "batch_size": 2})
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["symbols"], body["skipped_with_1m"], body["queued_symbols"]) == (3, 1, 2)  # AAPL has 1m
    assert body["jobs_created"] > 0 and body["n_days"] == 5
    queued = await rt.store.list_backfills()
    assert {(j.symbol, j.interval) for j in queued} == {("JPM", M5), ("SPY", M5)}
    assert (await c.post("/api/v1/market-data/backfill/5m", params={"batch_size": 0})).json()[
        "field"
    ] == "batch_size"

    collector, rt.collector = rt.collector, None
    try:  # a process without a collector has nowhere to queue
        r = await c.post("/api/v1/market-data/backfill/5m")
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
    finally:
        rt.collector = collector


async def test_intraday_5m_over_http_serves_native_bars_where_there_is_no_1m(api) -> None:
    c, rt = api  # the full app: guards, fast path and the response cache
    await rt.store.write_bars(scaled(ground_truth("JPM", M5, API_OPEN, API_NOW), 1.0, "fmp"), as_of=API_NOW)
    await rt.store.write_bars(scaled(ground_truth("AAPL", M5, API_OPEN, API_NOW), 2.0, "fmp"), as_of=API_NOW)
    params = {"interval": "5m", "start": iso(API_OPEN), "end": "2025-10-08T14:30:00Z"}  # closed: kept
    for _ in range(2):  # the second answer comes from the kept bytes
        jpm = await c.get("/stocks/JPM/intraday", params=params)
        assert jpm.status_code == 200, jpm.text
        bars = jpm.json()["bars"]
        assert [b["close"] for b in bars] == [
            b.close for b in ground_truth("JPM", M5, API_OPEN, API_OPEN + timedelta(hours=1))
        ]
        assert {b["provider"] for b in bars} == {"fmp"}
        aapl = (await c.get("/stocks/AAPL/intraday", params=params)).json()["bars"]
        assert len(aapl) == 12 and all("fmp" not in b["provider"] for b in aapl)  # rolled up from 1m
    assert rt.metrics.value("bars_response_cache_total", result="hit") >= 2
