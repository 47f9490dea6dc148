"""Live first: sweeps start with the service, and live jobs never wait for backfill work."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mds.config import load_settings
from mds.domain.clock import SimulatedClock
from mds.domain.jobs import BarsFetchJob, TimeWindow
from mds.domain.models import Interval, Tier
from mds.ingest.collector import Collector
from mds.ingest.handoff import GapHandoff
from mds.runtime import open_runtime
from tests.helpers import SIM_ENV

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)


async def test_live_bars_are_stored_while_the_startup_gap_check_is_still_running(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start-up check of a big universe takes minutes; sweeps must not wait for it."""
    release = asyncio.Event()
    entered = asyncio.Event()
    original = Collector.startup_gap_check

    async def slow_check(self, by_tier):  # type: ignore[no-untyped-def]
        entered.set()
        await release.wait()
        return await original(self, by_tier)

    monkeypatch.setattr(Collector, "startup_gap_check", slow_check)
    (tmp_path / "u.csv").write_text("symbol,tier\nAAA,T0\nBBB,T1\n")
    env = {
        **SIM_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/lf.db",
        "UNIVERSE_FILE": str(tmp_path / "u.csv"),
        "LIVE_MAX_WINDOW_MINUTES": "30",
    }
    settings = load_settings(env)
    clock = SimulatedClock(NOW, 1.0)
    async with open_runtime(settings, clock=clock, environ=env) as rt:
        assert rt.collector is not None
        await asyncio.wait_for(entered.wait(), 5)
        async with asyncio.timeout(10):
            # Polling the store: nothing signals a stored bar.
            while (cursor := await rt.store.get_cursor("AAA", Interval.M1, "auto")) is None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert not rt.collector.startup_done.is_set(), "the check finished first; the test proves nothing"
        assert cursor.last_ts >= NOW - timedelta(minutes=2)
        release.set()
        await asyncio.wait_for(rt.collector.startup_done.wait(), 10)


async def test_a_live_job_hands_its_holes_off_and_does_not_wait_for_enqueueing(make_pipeline) -> None:
    p = await make_pipeline({"LIVE_MAX_WINDOW_MINUTES": "5"}, tiers={"AAPL": Tier.T0})
    backfiller = p.collector.backfiller
    gate = asyncio.Event()
    original = backfiller.enqueue_gaps
    calls: list[int] = []

    async def slow_enqueue(gaps, tier):  # type: ignore[no-untyped-def]
        calls.append(len(gaps))
        await gate.wait()  # e.g. a busy database
        return await original(gaps, tier)

    backfiller.enqueue_gaps = slow_enqueue  # type: ignore[method-assign]
    p.worker.handoff = GapHandoff(backfiller)
    runner = asyncio.get_running_loop().create_task(p.worker.handoff.run())
    try:
        # The cursor says 10:00 and the job covers the last 5 minutes: an old hole lies between.
        await p.store.advance_cursor("AAPL", Interval.M1, "auto", NOW - timedelta(hours=1), now=NOW)
        window = TimeWindow(start=NOW - timedelta(minutes=5), end=NOW)
        job = BarsFetchJob(symbols=["AAPL"], interval=Interval.M1, time_window=window, priority=Tier.T0)
        await asyncio.wait_for(p.worker.handle_bars(job), 5)  # returns although enqueueing is stuck
        newest = await p.store.get_cursor("AAPL", Interval.M1, "auto")
        assert newest is not None and newest.last_ts == NOW - timedelta(minutes=1)
        await asyncio.sleep(0.05)
        assert calls, "the hole never reached the backfiller"
        assert backfiller.active() == 0
        gate.set()
        await asyncio.wait_for(p.worker.handoff.flush(), 5)
        jobs = backfiller.active(Tier.T0)
        assert jobs >= 1
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_handoff_drops_beyond_its_bound_and_counts_it(make_pipeline) -> None:
    p = await make_pipeline()
    handoff = GapHandoff(p.collector.backfiller, max_pending=3)
    from mds.ingest.gaps import Gap

    gap = Gap("AAPL", Interval.M1, NOW - timedelta(minutes=10), NOW - timedelta(minutes=5), 5)
    handoff.submit([gap, gap], Tier.T1)
    handoff.submit([gap, gap], Tier.T0)
    assert handoff.pending() == 3
    assert handoff.dropped == 1
