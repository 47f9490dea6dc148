"""Continuity: "no trades" is told apart from "missing"; the SLO monitor; the DLQ API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillStatus
from mds.ingest.scan import scan_gaps
from mds.observability.metrics import Metrics
from mds.ops.slo import SloMonitor
from mds.providers.sim.market import ground_truth
from mds.runtime import Runtime, open_runtime
from tests.helpers import SIM_ENV
from tests.helpers import rows as values
from tests.integration.conftest import CAL, asgi_client

OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)


async def test_no_trade_minutes_are_confirmed_empty_and_not_backfilled_forever(make_pipeline) -> None:
    # ILLQ has no trades in ~20% of its minutes; both sims also drop 2% of bars at random.
    env = {"SIM_NO_TRADE": "ILLQ=0.2", "SIM_MISSING_RATE": "0.02", "SIM_BACKUP_MISSING_RATE": "0.02"}
    p = await make_pipeline(env, tiers={"ILLQ": Tier.T0, "AAPL": Tier.T0})
    for symbol in ("ILLQ", "AAPL"):
        await p.collector.backfiller.enqueue(symbol, Interval.M1, OPEN, NOW, Tier.T0)
    await p.drain_backfills()

    truth = ground_truth("ILLQ", Interval.M1, OPEN, NOW, no_trade={"ILLQ": 0.2})
    stored = await p.store.read_bars("ILLQ", Interval.M1, OPEN, NOW)
    assert values(stored) == values(truth)  # every real bar, nothing invented
    expected = {int(t.timestamp()) for t in CAL.expected_bar_times(Interval.M1, OPEN, NOW)}
    no_trade = expected - {int(b.ts.timestamp()) for b in truth}
    assert len(no_trade) > 5
    assert set(await p.store.confirmed_empty("ILLQ", Interval.M1, OPEN, NOW)) == no_trade
    # A liquid symbol whose bars only went missing at random has nothing confirmed empty.
    assert await p.store.confirmed_empty("AAPL", Interval.M1, OPEN, NOW) == []
    assert values(await p.store.read_bars("AAPL", Interval.M1, OPEN, NOW)) == values(
        ground_truth("AAPL", Interval.M1, OPEN, NOW)
    )
    # The scan no longer sees gaps, and no job ended in the DLQ.
    assert (
        await scan_gaps(
            p.store, CAL, symbols=["ILLQ", "AAPL"], interval=Interval.M1, start=OPEN, end=NOW, now=NOW
        )
        == []
    )
    assert await p.store.list_backfills(status=BackfillStatus.FAILED) == []


async def test_slo_monitor_rates_symbols_by_how_far_they_trail(make_pipeline) -> None:
    p = await make_pipeline()
    await p.store.advance_cursor("A", Interval.M1, "auto", NOW - timedelta(minutes=1), now=NOW)  # up to date
    await p.store.advance_cursor(
        "B", Interval.M1, "auto", NOW - timedelta(minutes=10), now=NOW
    )  # 9 bars behind
    await p.store.advance_cursor("D", Interval.D1, "auto", datetime(2025, 10, 7, 13, 30, tzinfo=UTC), now=NOW)
    metrics = Metrics()
    slo = SloMonitor(
        store=p.store,
        calendar=CAL,
        clock=p.clock,
        settings=p.settings,
        metrics=metrics,
        symbols_by_tier={Tier.T0: ["A", "B", "C"], Tier.T1: ["A"], Tier.T2: ["D"]},
    )
    samples = {(s.tier, s.interval): s for s in await slo.sample_once()}
    assert samples[(Tier.T0, Interval.M1)].violations == 2  # B trails, C has nothing at all
    assert metrics.value("slo_gap_violation_rate", tier="T0", interval="1m") == pytest.approx(2 / 3)
    assert samples[(Tier.T1, Interval.M1)].violations == 0
    assert samples[(Tier.T2, Interval.D1)].violations == 0  # yesterday's daily bar is the newest closed one


async def test_slo_monitor_samples_daily_bars_of_every_tier_that_collects_them(make_pipeline) -> None:
    """T0 and T1 collect 1m and daily bars: both are sampled, each with its own allowance
    (twice the eod cadence, in sessions), so a stopped daily series is found even while the
    symbol's 1m series is current."""
    p = await make_pipeline()
    for symbol in ("A", "B"):  # both 1m series are current
        await p.store.advance_cursor(symbol, Interval.M1, "auto", NOW - timedelta(minutes=1), now=NOW)
    # A's daily series holds yesterday's session; B's stopped on Oct 1 (4 closed sessions behind).
    await p.store.advance_cursor("A", Interval.D1, "auto", datetime(2025, 10, 7, 13, 30, tzinfo=UTC), now=NOW)
    await p.store.advance_cursor("B", Interval.D1, "auto", datetime(2025, 10, 1, 13, 30, tzinfo=UTC), now=NOW)
    # E's stopped two sessions back: within the allowance of 2 x eod (1 session).
    await p.store.advance_cursor("E", Interval.D1, "auto", datetime(2025, 10, 3, 13, 30, tzinfo=UTC), now=NOW)
    metrics = Metrics()
    slo = SloMonitor(
        store=p.store,
        calendar=CAL,
        clock=p.clock,
        settings=p.settings,
        metrics=metrics,
        symbols_by_tier={Tier.T0: ["A", "B"], Tier.T1: ["A", "E"], Tier.T2: ["F"]},
    )
    assert {(t, i) for t, i, _ in slo.plans()} == {
        (Tier.T0, Interval.M1),
        (Tier.T0, Interval.D1),
        (Tier.T1, Interval.M1),
        (Tier.T1, Interval.D1),
        (Tier.T2, Interval.D1),
    }
    samples = {(s.tier, s.interval): s for s in await slo.sample_once()}
    assert samples[(Tier.T0, Interval.M1)].violations == 0
    assert samples[(Tier.T0, Interval.D1)].violations == 1  # B
    assert metrics.value("slo_gap_violation_rate", tier="T0", interval="1d") == pytest.approx(0.5)
    assert samples[(Tier.T1, Interval.D1)].violations == 0  # E is 2 sessions behind: allowed
    assert samples[(Tier.T2, Interval.D1)].violations == 1  # F has no daily bar at all
    assert metrics.value("slo_gap_violation_rate", tier="T2", interval="1d") == 1.0


@pytest.fixture
async def api(tmp_path) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    env = dict(SIM_ENV)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/dlq.db"
    async with (
        open_runtime(load_settings(env), clock=ManualClock(NOW), demo=True, collect=False, environ=env) as rt,
        asgi_client(rt) as client,
    ):
        yield client, rt


async def test_dlq_endpoints(api) -> None:
    client, rt = api
    failed = []
    for symbol, tier in (("AAPL", Tier.T0), ("MSFT", Tier.T0), ("JPM", Tier.T1)):
        rec = await rt.store.create_backfill(
            symbol, Interval.M1, OPEN, NOW, tier, now=NOW - timedelta(days=40)
        )
        await rt.store.update_backfill(
            rec.id,
            status=BackfillStatus.FAILED,
            now=NOW - timedelta(days=40 if symbol == "MSFT" else 1),
            attempts=5,
            last_error="7 bars still missing",
        )
        failed.append(rec)

    listing = (await client.get("/ops/dlq/backfills")).json()["jobs"]
    assert {j["symbol"] for j in listing} == {"AAPL", "MSFT", "JPM"}
    assert all(j["status"] == "failed" and j["last_error"] == "7 bars still missing" for j in listing)
    assert [
        j["symbol"] for j in (await client.get("/ops/dlq/backfills", params={"tier": "T1"})).json()["jobs"]
    ] == ["JPM"]

    stats = (await client.get("/ops/dlq/stats")).json()
    assert stats["by_status"]["failed"] == 3

    r = await client.post(f"/ops/dlq/backfills/requeue/{failed[0].id}")
    assert r.status_code == 200 and r.json()["job"]["status"] == "queued"
    assert (
        await client.post(f"/ops/dlq/backfills/requeue/{failed[0].id}")
    ).status_code == 404  # no longer failed
    assert (await client.post("/ops/dlq/backfills/requeue/999999")).status_code == 404

    bad = await client.post("/ops/dlq/backfills/requeue-all", params={"tier": "T9"})
    assert bad.status_code == 422 and bad.json()["field"] == "tier"
    r = await client.post("/ops/dlq/backfills/requeue-all", params={"tier": "T1"})
    assert r.json()["requeued"] == 1 and r.json()["ids"] == [failed[2].id]

    assert (await client.delete("/ops/dlq/backfills/purge", params={"days": -1})).status_code == 422
    purged = (await client.delete("/ops/dlq/backfills/purge", params={"days": 30})).json()
    assert purged["purged"] == 1  # MSFT failed 40 days ago
    assert (await rt.store.get_backfill(failed[1].id)) is None
