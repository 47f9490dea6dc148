"""Reconciliation end to end on SQLite with a ManualClock: a sim provider with price noise
is scored lower than a clean one and demoted by the router; with only two providers nobody
is blamed; a traded minute wrongly recorded as empty is cleared and filled; the outcome is
served by ``GET /stats/quality``.

The third provider (the referee) is the real Polygon adapter talking to the sim-server's
Polygon format in process (ASGI transport), over the same sim market as the sims.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Capability, Interval
from mds.observability.metrics import Metrics
from mds.providers.base import Provider
from mds.providers.polygon import PolygonProvider
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.faults import FaultInjector, SimFaults
from mds.providers.sim.market import SimMarket
from mds.providers.sim.provider import SimProvider
from mds.reconcile.empty import recheck_empty
from mds.reconcile.service import Reconciler, ReconcileSettings
from mds.routing.breaker import BreakerState
from mds.routing.router import Router
from mds.simserver.app import create_sim_app
from mds.simserver.context import SimContext
from mds.storage.sqlite import SqliteStore
from tests.helpers import rows

#: Wednesday 2025-10-08, 11:00 New York: with a 24 h revision window the session compared
#: is Monday 2025-10-06 (Tuesday's closed less than 24 h ago).
NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
CAL = MarketCalendar()
_MONDAY = CAL.session_on(date(2025, 10, 6))
assert _MONDAY is not None
MONDAY = _MONDAY
SYMBOLS = ["AAPL", "MSFT", "SPY"]
BARS = Capability.BARS_1M


@dataclass
class World:
    store: SqliteStore
    router: Router
    providers: dict[str, Provider]
    metrics: Metrics
    clock: ManualClock
    reconciler: Reconciler


@pytest.fixture
async def world(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """sim (clean), sim_backup (price noise: the ``noise`` parameter, default 0.01) and,
    unless ``referee`` is false, polygon as referee; ILLQ trades in 70% of minutes."""
    noise = getattr(request, "param", {}).get("noise", "0.01")
    referee = getattr(request, "param", {}).get("referee", True)
    clock = ManualClock(NOW)
    market = SimMarket(seed=42, calendar=CAL, no_trade={"ILLQ": 0.3})
    env = {"POLICY_BARS_1M": "sim,sim_backup" + (",polygon" if referee else ""), "INDEX_SOURCES": ""}
    if referee:
        env["POLYGON_API_KEY"] = "test-key"
    settings = load_settings(env)
    providers: dict[str, Provider] = {
        "sim": SimProvider("sim", market, clock, SimFaults.from_env({}, "SIM_")),
        "sim_backup": SimProvider(
            "sim_backup", market, clock, SimFaults.from_env({"SIM_BACKUP_PRICE_NOISE": noise}, "SIM_BACKUP_")
        ),
    }
    client = None
    if referee:
        ctx = SimContext(market, clock, FaultInjector("polygon", SimFaults()), provider="polygon")
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_sim_app("polygon", ctx)))
        providers["polygon"] = PolygonProvider(
            settings=settings, calendar=CAL, limiter=RateLimiter(), client=client
        )
    metrics = Metrics()
    router = Router(providers, settings, clock, metrics)
    store = SqliteStore(tmp_path / "r.db")
    await store.open()
    reconciler = Reconciler(
        store=store, router=router, calendar=CAL, clock=clock, settings=ReconcileSettings(), metrics=metrics
    )
    try:
        yield World(store, router, providers, metrics, clock, reconciler)
    finally:
        await store.close()
        if client is not None:
            await client.aclose()


async def store_from(w: World, provider: str) -> None:
    for symbol in SYMBOLS:
        bars = await w.providers[provider].fetch_bars(symbol, Interval.M1, MONDAY.open, MONDAY.close)
        await w.store.write_bars(bars, as_of=MONDAY.close + timedelta(minutes=5))


async def test_noisy_provider_is_scored_lower_and_demoted(world: World) -> None:
    w = world
    await store_from(w, "sim")
    before = {s: rows(await w.store.read_bars(s, Interval.M1, MONDAY.open, MONDAY.close)) for s in SYMBOLS}
    assert w.router.order(BARS) == ["sim", "sim_backup", "polygon"]
    report = await w.reconciler.run(symbols=SYMBOLS)
    assert (report.start, report.end) == (MONDAY.open, MONDAY.close)
    assert report.compared_bars == 3 * 390
    assert report.providers["sim"] == 1.0
    assert report.providers["sim_backup"] < 0.2  # 1% noise: nearly every bar off by > 1 cent
    # Demoted: its health fell below the demote threshold, its breaker opened, routing skips it.
    assert w.router.health("sim_backup") < w.router.settings.BREAKER_DEMOTE_THRESHOLD
    assert w.router.state("sim_backup") is BreakerState.OPEN
    assert w.router.order(BARS) == ["sim", "polygon"]
    assert w.router.state("sim") is BreakerState.CLOSED and w.router.health("sim") > 0.9
    assert w.metrics.value("data_quality_score", provider="sim_backup") == report.providers["sim_backup"]
    assert w.metrics.value("data_quality_score", provider="sim") == 1.0
    assert w.metrics.value("reconcile_disagreements_total", provider="sim") == report.differing_bars
    # Stored per provider × symbol, and the disagreements blame the noisy one.
    scores = {(s.provider, s.symbol): s for s in await w.store.quality_scores()}
    assert set(scores) == {(p, s) for p in ("sim", "sim_backup") for s in SYMBOLS}
    assert all(
        scores[("sim", s)].score == 1.0 and scores[("sim", s)].against == "sim_backup" for s in SYMBOLS
    )
    assert all(scores[("sim_backup", s)].score < 0.2 for s in SYMBOLS)
    listed = await w.store.quality_disagreements(limit=1000)
    assert listed and {d.blamed for d in listed} == {"sim_backup"}
    assert {(d.provider, d.other_provider) for d in listed} == {("sim", "sim_backup")}
    assert all(d.note == "polygon sided with the stored bar" for d in listed)
    # Never auto-fixed: the stored bars are exactly as before.
    after = {s: rows(await w.store.read_bars(s, Interval.M1, MONDAY.open, MONDAY.close)) for s in SYMBOLS}
    assert after == before


async def test_noisy_bars_already_stored_are_blamed_on_their_provider(world: World) -> None:
    w = world
    await store_from(w, "sim_backup")  # the noisy vendor was primary when these were stored
    report = await w.reconciler.run(symbols=SYMBOLS)
    assert report.providers["sim_backup"] < 0.2 and report.providers["sim"] == 1.0
    assert {c.other for c in report.checks} == {"sim"} and {c.referee for c in report.checks} == {"polygon"}
    assert w.router.state("sim_backup") is BreakerState.OPEN
    assert {d.blamed for d in await w.store.quality_disagreements(limit=1000)} == {"sim_backup"}


@pytest.mark.parametrize("world", [{"referee": False}], indirect=True)
async def test_two_providers_alone_blame_nobody(world: World) -> None:
    w = world
    await store_from(w, "sim")
    report = await w.reconciler.run(symbols=SYMBOLS)
    assert report.differing_bars > 300
    assert report.providers == {"sim": 1.0, "sim_backup": 1.0}
    assert w.router.state("sim_backup") is BreakerState.CLOSED
    listed = await w.store.quality_disagreements(limit=5)
    assert listed and all(d.blamed is None and d.note == "no third provider to settle it" for d in listed)
    assert all(s.unresolved > 300 for s in await w.store.quality_scores())


@pytest.mark.parametrize("world", [{"noise": "0"}], indirect=True)
async def test_clean_providers_agree_and_keep_their_health(world: World) -> None:
    w = world
    await store_from(w, "sim")
    report = await w.reconciler.run(symbols=SYMBOLS)
    assert report.differing_bars == 0 and {c.referee for c in report.checks} == {None}
    assert report.providers == {"sim": 1.0, "sim_backup": 1.0}
    assert await w.store.quality_disagreements() == []
    assert w.router.order(BARS) == ["sim", "sim_backup", "polygon"]


@pytest.mark.parametrize("world", [{"noise": "0"}], indirect=True)
async def test_a_traded_minute_wrongly_marked_empty_is_cleared_and_filled(world: World) -> None:
    w = world
    truth = await w.providers["sim"].fetch_bars("AAPL", Interval.M1, MONDAY.open, MONDAY.close)
    lost = [truth[100], truth[101]]
    await w.store.write_bars([b for b in truth if b not in lost], as_of=MONDAY.close)
    epochs = [int(b.ts.timestamp()) for b in lost]
    # Heavy provider loss: answers that all lacked these two minutes confirmed them "no trades".
    for provider in ("sim_backup", "polygon"):
        await w.store.record_empty_evidence(
            "AAPL", Interval.M1, epochs, provider, now=MONDAY.close, needed_answers=2, needed_providers=2
        )
    assert await w.store.confirmed_empty("AAPL", Interval.M1, MONDAY.open, MONDAY.close) == epochs
    found = await recheck_empty(
        store=w.store,
        router=w.router,
        calendar=CAL,
        clock=w.clock,
        settings=ReconcileSettings(),
        metrics=w.metrics,
    )
    assert (found.checked, found.cleared, found.still_empty, found.unanswered) == (2, 2, 0, 0)
    assert await w.store.confirmed_empty("AAPL", Interval.M1, MONDAY.open, MONDAY.close) == []
    stored = await w.store.read_bars("AAPL", Interval.M1, MONDAY.open, MONDAY.close)
    assert rows(stored) == rows(truth)
    # Asked of the provider that had not confirmed it, labelled as its bars, learned now.
    filled = [b for b in stored if int(b.ts.timestamp()) in epochs]
    assert {(b.provider, b.as_of) for b in filled} == {("sim", NOW)}
    assert w.metrics.value("reconcile_empty_cleared_total", interval="1m") == 2


@pytest.mark.parametrize("world", [{"noise": "0"}], indirect=True)
async def test_truly_empty_minutes_stay_and_recent_ones_wait(world: World) -> None:
    w = world
    tuesday = CAL.session_on(date(2025, 10, 7))
    assert tuesday is not None
    truth = await w.providers["sim"].fetch_bars("ILLQ", Interval.M1, MONDAY.open, MONDAY.close)
    traded = {int(b.ts.timestamp()) for b in truth}
    quiet = [
        int(t) for t in CAL.expected_epochs(Interval.M1, MONDAY.open, MONDAY.close) if int(t) not in traded
    ]
    assert len(quiet) > 50  # ILLQ has no trades in about 30% of minutes
    await w.store.write_bars(truth, as_of=MONDAY.close)
    # Monday's quiet minutes, and one of Tuesday's, which is inside the 24 h revision window.
    for epochs in (quiet, [int(tuesday.open.timestamp())]):
        await w.store.record_empty_evidence(
            "ILLQ", Interval.M1, epochs, "sim", now=NOW, needed_answers=1, needed_providers=1
        )
    found = await recheck_empty(
        store=w.store, router=w.router, calendar=CAL, clock=w.clock, settings=ReconcileSettings()
    )
    assert (found.checked, found.cleared, found.still_empty) == (len(quiet), 0, len(quiet))
    still = await w.store.confirmed_empty("ILLQ", Interval.M1, MONDAY.open, tuesday.close)
    assert still == [*quiet, int(tuesday.open.timestamp())]


async def test_a_restarted_service_routes_with_the_stored_quality(tmp_path: Path) -> None:
    from mds.reconcile.records import QualityScore
    from mds.runtime import open_runtime
    from tests.helpers import SIM_ENV

    env = {**SIM_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/q.db"}
    clock = ManualClock(NOW)
    async with open_runtime(load_settings(env), clock=clock, demo=True, collect=False, environ=env) as rt:
        assert rt.router.quality("sim_backup") == 1.0
        bad = QualityScore(
            "sim_backup", "AAPL", Interval.M1, NOW, NOW - timedelta(days=1), NOW, 390, 370, 0, "sim"
        )
        await rt.store.write_quality([bad], [])
    async with open_runtime(load_settings(env), clock=clock, demo=True, collect=False, environ=env) as rt:
        assert rt.router.quality("sim_backup") == pytest.approx(20 / 390)
        assert rt.router.quality("sim") == 1.0
        snap = {p["provider"]: p for p in rt.router.snapshot()}
        assert snap["sim_backup"]["quality"] == pytest.approx(20 / 390, abs=1e-4)
        assert snap["sim_backup"]["state"] == BreakerState.OPEN.value
