"""The ingest path end to end in-process: what is stored equals the sim's ground truth."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from mds.calendar import MarketCalendar
from mds.domain.models import BarStatus, Interval, Tier
from mds.domain.records import BackfillStatus
from mds.ingest.dispatch import Dispatcher
from mds.ingest.sweeper import Sweeper
from mds.providers.sim.market import ground_truth
from tests.helpers import rows as values

CAL = MarketCalendar()


async def assert_complete(p, symbol: str, interval: Interval, start: datetime, end: datetime) -> None:
    stored = await p.store.read_bars(symbol, interval, start, end)
    truth = ground_truth(symbol, interval, start, end)
    assert len(stored) == len(truth), f"{symbol} {interval.value}: {len(stored)} of {len(truth)} bars"
    assert values(stored) == values(truth)
    assert all(b.provider.startswith("sim") and b.as_of is not None for b in stored)


async def test_startup_gap_check_and_backfill_fill_everything_despite_missing_bars(make_pipeline) -> None:
    # A bar both sims drop at random from GAP_CONFIRM_EMPTY_ANSWERS answers in a row counts as
    # "no trades" by design (a later re-check clears it). At the default 4 answers and a 5%
    # drop rate that is 0.05**4 per minute, about 1 run in 200 over these 780 minutes, which
    # made this test flaky; 8 answers (and attempts to match) put it near 1 in 10**7.
    p = await make_pipeline(
        {
            "SIM_MISSING_RATE": "0.05",
            "SIM_BACKUP_MISSING_RATE": "0.05",
            "GAP_CONFIRM_EMPTY_ANSWERS": "8",
            "BACKFILL_MAX_ATTEMPTS": "10",
        }
    )
    created = (
        await p.collector.startup_gap_check({Tier.T0: ["AAPL"], Tier.T1: ["JPM"], Tier.T2: []})
    ).created
    assert created, "an empty store has gaps"
    # T0 was queued before T1.
    tiers = [r.priority for r in created]
    assert tiers.index(Tier.T1) > max(i for i, t in enumerate(tiers) if t is Tier.T0)
    now = p.clock.now()  # the dispatcher's pacing moves the ManualClock on; the scan was at this time
    await p.drain_backfills()
    for symbol in ("AAPL", "JPM"):
        # BACKFILL_LOOKBACK_DAYS_1M=1: from 24 hours back.
        await assert_complete(p, symbol, Interval.M1, now - timedelta(days=1), now)
        # Daily bars for the lookback's closed sessions (today's is still open at 15:00).
        await assert_complete(
            p, symbol, Interval.D1, now - timedelta(days=30), datetime(2025, 10, 8, tzinfo=UTC)
        )
    jobs = await p.store.list_backfills(limit=1000)
    assert jobs and {j.status for j in jobs} == {BackfillStatus.DONE}
    assert any(j.attempts > 1 for j in jobs), "5% missing bars should have forced some retries"
    assert p.metrics.value("gaps_found_total", interval="1m") > 0
    assert p.metrics.value("backfill_jobs_completed_total", tier="T0", status="done") > 0


async def test_live_sweeps_follow_the_clock_and_advance_cursors(make_pipeline) -> None:
    p = await make_pipeline()
    sweeper = Sweeper(
        queue=p.live,
        settings=p.settings,
        clock=p.clock,
        calendar=CAL,
        symbols_by_tier={Tier.T0: ["AAPL"], Tier.T1: ["JPM"], Tier.T2: ["IBM"]},
    )
    jobs = sweeper.due(p.clock.now())
    kinds = sorted((j.type, getattr(j, "interval", None), j.priority.value) for j in jobs)
    assert ("bars_fetch", Interval.M1, "T0") in kinds and ("bars_fetch", Interval.M1, "T1") in kinds
    assert ("quotes_fetch", None, "T0") in kinds and ("bars_fetch", Interval.D1, "T2") in kinds
    assert ("bars_fetch", Interval.M1, "T2") not in kinds  # T2 is EOD only
    assert sweeper.due(p.clock.now()) == []  # nothing is due twice

    for job in jobs:
        await p.live.put(job)
    p.worker.queue = p.live
    await p.drain(p.live)
    c = await p.store.get_cursor("AAPL", Interval.M1, "auto")
    assert c is not None and c.last_ts == datetime(2025, 10, 8, 14, 59, tzinfo=UTC)
    assert (await p.store.latest_quote("AAPL")) is not None

    p.clock.advance(61)
    again = sweeper.due(p.clock.now())
    assert [j.priority for j in again if j.type == "bars_fetch"] == [Tier.T0]  # T1 waits 300 s
    for job in again:
        await p.live.put(job)
    await p.drain(p.live)
    c = await p.store.get_cursor("AAPL", Interval.M1, "auto")
    assert c is not None and c.last_ts == datetime(2025, 10, 8, 15, 0, tzinfo=UTC)


async def test_a_cursor_jump_is_backfilled(make_pipeline) -> None:
    p = await make_pipeline()
    await p.collector.ingestor.ingest(
        "AAPL", Interval.M1, datetime(2025, 10, 8, 13, 30, tzinfo=UTC), p.clock.now()
    )
    p.clock.advance(3 * 3600)  # 18:00: longer than LIVE_MAX_WINDOW_MINUTES (120)
    sweeper = Sweeper(
        queue=p.live, settings=p.settings, clock=p.clock, calendar=CAL, symbols_by_tier={Tier.T0: ["AAPL"]}
    )
    for job in sweeper.due(p.clock.now()):
        if job.type == "bars_fetch" and job.interval is Interval.M1:
            await p.worker.handle_bars(job)
    queued = await p.store.list_backfills(status=BackfillStatus.QUEUED)
    assert [(j.symbol, j.start, j.end) for j in queued] == [
        ("AAPL", datetime(2025, 10, 8, 15, 0, tzinfo=UTC), datetime(2025, 10, 8, 16, 0, tzinfo=UTC))
    ]
    await p.drain_backfills()
    await assert_complete(p, "AAPL", Interval.M1, datetime(2025, 10, 8, 13, 30, tzinfo=UTC), p.clock.now())


async def test_backfill_that_cannot_succeed_ends_in_the_dlq_with_its_reason(make_pipeline) -> None:
    # Both providers answer, but every answer is corrupt: the job cannot be satisfied.
    p = await make_pipeline(
        {
            "SIM_MALFORMED_RATE": "1",
            "SIM_BACKUP_MALFORMED_RATE": "1",
            "BACKFILL_MAX_ATTEMPTS": "3",
            "BREAKER_OPEN_SECONDS": "0.001",
        }
    )
    [rec] = (
        await p.collector.backfiller.enqueue(
            "AAPL",
            Interval.M1,
            datetime(2025, 10, 8, 13, 30, tzinfo=UTC),
            datetime(2025, 10, 8, 14, 0, tzinfo=UTC),
            Tier.T0,
        )
    ).created
    await p.drain_backfills()
    job = await p.store.get_backfill(rec.id)
    assert job is not None and job.status is BackfillStatus.FAILED
    assert job.attempts == 3
    assert job.last_error and "bad_payload" in job.last_error
    assert p.metrics.value("backfill_jobs_completed_total", tier="T0", status="failed") == 1


async def test_an_outage_does_not_spend_a_backfills_attempts(make_pipeline) -> None:
    # Every provider down: the job waits for the breakers instead of dead-lettering.
    down = "2025-10-01T00:00:00Z/2025-10-09T00:00:00Z"
    p = await make_pipeline(
        {
            "SIM_OUTAGES": down,
            "SIM_BACKUP_OUTAGES": down,
            "BACKFILL_MAX_ATTEMPTS": "2",
            "BREAKER_OPEN_SECONDS": "1",
        }
    )
    [rec] = (
        await p.collector.backfiller.enqueue(
            "AAPL",
            Interval.M1,
            datetime(2025, 10, 8, 13, 30, tzinfo=UTC),
            datetime(2025, 10, 8, 14, 0, tzinfo=UTC),
            Tier.T0,
        )
    ).created
    dispatcher = Dispatcher(p.collector.backfiller, p.worker.process, p.settings, p.clock)
    task = asyncio.get_running_loop().create_task(dispatcher.run())
    await asyncio.sleep(2.0)  # several rounds of trying and waiting
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    job = await p.store.get_backfill(rec.id)
    assert job is not None and job.status is BackfillStatus.QUEUED  # still waiting, not failed
    assert job.attempts == 0 and job.last_error and "unavailable" in job.last_error


async def test_provisional_daily_bar_becomes_final_and_history_keeps_both(make_pipeline) -> None:
    p = await make_pipeline()
    day = (datetime(2025, 10, 8, tzinfo=UTC), datetime(2025, 10, 9, tzinfo=UTC))
    first = await p.collector.ingestor.ingest("AAPL", Interval.D1, *day)
    assert first.inserted == 1
    [provisional] = await p.store.read_bars("AAPL", Interval.D1, *day)
    assert provisional.status is BarStatus.PROVISIONAL
    learned_at = p.clock.now()

    p.clock.set(datetime(2025, 10, 8, 20, 30, tzinfo=UTC))  # after the close
    second = await p.collector.ingestor.ingest("AAPL", Interval.D1, *day)
    assert second.revised == 1
    [final] = await p.store.read_bars("AAPL", Interval.D1, *day)
    assert final.status is BarStatus.FINAL
    assert values([final]) == values(ground_truth("AAPL", Interval.D1, *day))
    [then] = await p.store.read_bars("AAPL", Interval.D1, *day, as_of=learned_at)
    assert then == provisional and then.close != final.close
    # Fetching the same closed day again stores nothing new.
    third = await p.collector.ingestor.ingest("AAPL", Interval.D1, *day)
    assert (third.inserted, third.revised) == (0, 0)
    assert len(await p.store.bar_revisions("AAPL", Interval.D1, final.ts)) == 2


async def test_bad_payloads_are_rejected_counted_and_failed_over(make_pipeline) -> None:
    p = await make_pipeline({"SIM_MALFORMED_RATE": "1"})
    start = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
    out = await p.collector.ingestor.ingest("AAPL", Interval.M1, start, p.clock.now())
    assert out.provider == "sim_backup" and out.complete
    assert p.metrics.value("provider_bad_payloads_total", provider="sim") == 1
    stored = await p.store.read_bars("AAPL", Interval.M1, start, p.clock.now())
    assert {b.provider for b in stored} == {"sim_backup"}
    assert all(not b.problems() for b in stored)
