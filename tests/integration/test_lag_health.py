"""Lag end to end: the ingestor feeds the tracker, a runtime starts both monitors, /health shows them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.ingest.live_lag import LiveLagTracker
from mds.runtime import open_runtime
from tests.integration.conftest import API_ENV, API_NOW, CAL, asgi_client

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)


async def test_backfill_writes_do_not_move_the_live_lag(make_pipeline) -> None:
    p = await make_pipeline(now=NOW)
    tracker = LiveLagTracker(
        settings=p.settings,
        calendar=CAL,
        clock=p.clock,
        metrics=p.metrics,
        store=p.store,
        symbols_by_tier={Tier.T0: ["AAPL"], Tier.T1: ["JPM"]},
    )
    p.collector.ingestor.live_lag = tracker
    await p.collector.ingestor.ingest("AAPL", Interval.M1, NOW - timedelta(hours=1), NOW)
    assert tracker.newest("AAPL", Interval.M1) == NOW - timedelta(minutes=1)
    tracker.publish()
    assert p.metrics.value("live_lag_seconds", tier="T0", stat="max") == 0.0

    p.clock.advance(90)  # the 15:00 bar closed at 15:01 and is not stored yet
    tracker.publish()
    assert p.metrics.value("live_lag_seconds", tier="T0", stat="max") == 30.0

    # A backfill of yesterday: the store holds older bars now, the live series is no fresher.
    yesterday = datetime(2025, 10, 7, 13, 30, tzinfo=UTC)
    await p.collector.ingestor.ingest("AAPL", Interval.M1, yesterday, yesterday + timedelta(hours=2))
    tracker.publish()
    assert p.metrics.value("live_lag_seconds", tier="T0", stat="max") == 30.0
    assert tracker.newest("AAPL", Interval.M1) == NOW - timedelta(minutes=1)

    # The cursor the ingestor advanced is what a fresh tracker seeds from.
    fresh = LiveLagTracker(
        settings=p.settings,
        calendar=CAL,
        clock=p.clock,
        metrics=p.metrics,
        store=p.store,
        symbols_by_tier={Tier.T0: ["AAPL"]},
    )
    await fresh.seed()
    assert fresh.newest("AAPL", Interval.M1) == NOW - timedelta(minutes=1)


async def test_health_shows_event_loop_and_live_lag(api) -> None:
    client, rt = api
    assert rt.live_lag is not None and rt.loop_lag is not None
    # An API-only process builds the tracker but does not run it; drive it by hand here.
    await rt.store.advance_cursor("AAPL", Interval.M1, "auto", API_NOW - timedelta(minutes=3), now=API_NOW)
    await rt.live_lag.seed()
    rt.live_lag.publish()
    await asyncio.sleep(0.12)  # a couple of loop-lag samples
    body = (await client.get("/health")).json()
    assert set(body["event_loop"]) >= {"lag_p99_ms", "lag_max_ms", "window_s"}
    assert body["event_loop"]["samples"] >= 1
    assert set(body["live_lag"]) == {"T0", "T1"}  # T2 has no live cadence
    # AAPL's newest is 14:57; the 14:58 bar closed at 14:59, a minute before API_NOW.
    assert body["live_lag"]["T0"]["max_s"] == 60.0
    assert set(body["live_lag"]["T0"]) >= {"max_s", "p95_s"}
    assert rt.metrics.value("tier_cadence_seconds", tier="T0", capability="bars_1m") == 60.0


async def test_a_worker_process_runs_the_tracker(tmp_path) -> None:
    env = {**API_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "BACKFILL_LOOKBACK_DAYS_1M": "0"}
    settings = load_settings(env)
    async with open_runtime(
        settings, clock=ManualClock(API_NOW), demo=True, roles=frozenset({"api", "worker"}), environ=env
    ) as rt:
        assert rt.live_lag is not None
        for _ in range(100):
            if rt.live_lag.snapshot().get("tiers"):
                break
            await asyncio.sleep(0.02)

        async with asgi_client(rt) as client:
            body = (await client.get("/health")).json()
        assert set(body["live_lag"]) == {"T0", "T1"}
        assert body["live_lag"]["T0"]["symbols"] == 10
        assert "event_loop" in body and body["event_loop"]["window_s"] == 60.0

        # A reload publishes the new cadence for the alert rule to read.
        rt.apply_settings(load_settings({**env, "CADENCE_T0__bars_1m": "30"}))
        assert rt.metrics.value("tier_cadence_seconds", tier="T0", capability="bars_1m") == 30.0
    assert rt.live_lag._task is None and rt.loop_lag is not None and rt.loop_lag._task is None
