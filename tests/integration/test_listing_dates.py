"""Listing dates (issue 14): a backfill reaching back past a symbol's first trade is not a failure.

The sim serves GOOG from 2004-08-19 only (``SIM_LISTINGS``), like a vendor asked about
the years before its IPO. Pipelines on a ManualClock, SQLite and in-process queues.
"""

from __future__ import annotations

import re
from datetime import datetime

from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillStatus, UniverseEntry
from mds.ingest.gaps import Gap
from mds.ingest.scan import coverage, scan_gaps
from mds.providers.sim.market import ground_truth
from tests.helpers import rows, utc
from tests.integration.conftest import CAL

D1, M1 = Interval.D1, Interval.M1
START = utc(2000, 1, 3)
NOW = utc(2025, 10, 8, 15)
GOOG_FIRST = utc(2004, 8, 19, 13, 30)  # the open of GOOG's first session
NOTE = re.compile(r"^(\d+) sessions before GOOG's first trade 2004-08-19 skipped$")
#: Every provider drops every bar: answers arrive, and hold nothing.
EMPTY_ANSWERS = {"SIM_MISSING_RATE": "1", "SIM_BACKUP_MISSING_RATE": "1", "BACKFILL_MAX_ATTEMPTS": "2"}


async def in_universe(p, *symbols: str) -> None:  # type: ignore[no-untyped-def]
    entries = [UniverseEntry(s, Tier.T0) for s in symbols]
    await p.store.upsert_universe(entries, version_tag="listing-test", source_meta={})


def sessions(start: datetime, end: datetime) -> int:
    return int(CAL.expected_epochs(D1, start, end).size)


async def test_a_daily_backfill_from_2000_ends_done_and_learns_the_listing(make_pipeline) -> None:
    p = await make_pipeline(
        {"BACKFILL_LOOKBACK_DAYS_1M": "0", "BACKFILL_LOOKBACK_DAYS_1D": "9500"}, tiers={"GOOG": Tier.T0}
    )
    await in_universe(p, "GOOG")
    created = (await p.collector.backfiller.enqueue("GOOG", D1, START, NOW, Tier.T0)).created
    assert len(created) > 20
    # Newest first, so the chunk holding the listing runs before the ones wholly before it.
    assert [c.start for c in created] == sorted((c.start for c in created), reverse=True)
    await p.drain_backfills()

    jobs = await p.store.list_backfills(limit=1000)
    assert len(jobs) == len(created)
    assert {j.status for j in jobs} == {BackfillStatus.DONE}
    assert await p.store.list_backfills(status=BackfillStatus.FAILED) == []
    assert p.metrics.value("backfill_jobs_completed_total", tier="T0", status="done") == len(created)
    assert p.metrics.value("backfill_jobs_completed_total", tier="T0", status="failed") == 0
    assert await p.store.first_trade_sessions() == {"GOOG": GOOG_FIRST}
    stored = await p.store.read_bars("GOOG", D1, START, NOW)
    assert stored[0].ts == GOOG_FIRST
    closed = utc(2025, 10, 8)  # today's bar is still provisional
    assert rows(stored[:-1]) == rows(ground_truth("GOOG", D1, START, closed))

    # Each session before the listing is accounted for once, by the job whose range held it.
    notes = [NOTE.match(j.last_error or "") for j in jobs]
    skipped = sum(int(m.group(1)) for m in notes if m is not None)
    assert skipped == sessions(START, GOOG_FIRST)
    wholly_before = [j for j in jobs if j.end <= GOOG_FIRST]
    assert wholly_before and all(NOTE.match(j.last_error or "") for j in wholly_before)

    # Nothing before the listing is owed any more: not to a scan, daily or intraday...
    assert await scan_gaps(p.store, CAL, symbols=["GOOG"], interval=D1, start=START, end=NOW, now=NOW) == []
    assert await scan_gaps(
        p.store, CAL, symbols=["GOOG"], interval=M1, start=utc(2004, 8, 18), end=utc(2004, 8, 19, 15), now=NOW
    ) == [Gap("GOOG", M1, GOOG_FIRST, utc(2004, 8, 19, 15), 90)]
    full = await coverage(p.store, CAL, symbols=["GOOG"], interval=D1, start=START, end=NOW, now=NOW)
    assert full["expected_bars"] == len(stored) - 1 and full["coverage_pct"] == 100.0  # closed ones
    # ...nor to the collector's scan of the whole lookback, nor to a second request.
    assert (await p.collector.scan_once({Tier.T0: ["GOOG"]})).created == []
    again = await p.collector.ingestor.ingest("GOOG", D1, START, utc(2003, 1, 1))
    assert again.complete and again.provider is None
    assert (
        again.listing_note
        == f"{sessions(START, utc(2003, 1, 1))} sessions before GOOG's first trade 2004-08-19 skipped"
    )


async def test_an_older_range_run_first_proves_nothing_until_the_years_between_are_asked(
    make_pipeline,
) -> None:
    p = await make_pipeline()
    await in_universe(p, "GOOG")
    await p.store.write_bars(ground_truth("GOOG", D1, utc(2005, 1, 1), utc(2006, 1, 1)), as_of=NOW)
    ingest = p.collector.ingestor.ingest
    # Empty for 2002, but 2003..2004 have not been asked: maybe a failure, so a gap to retry.
    old = await ingest("GOOG", D1, utc(2002, 1, 1), utc(2003, 1, 1))
    assert [g.missing_bars for g in old.gaps] == [sessions(utc(2002, 1, 1), utc(2003, 1, 1))]
    assert await p.store.first_trade_sessions() == {}
    # The range that holds the first bar shows where trading began.
    holding = await ingest("GOOG", D1, utc(2003, 1, 1), utc(2005, 1, 1))
    assert holding.complete
    assert holding.before_listing == sessions(utc(2003, 1, 1), GOOG_FIRST)
    assert await p.store.first_trade_sessions() == {"GOOG": GOOG_FIRST}
    assert (await ingest("GOOG", D1, utc(2002, 1, 1), utc(2003, 1, 1))).complete


async def test_a_bar_before_the_recorded_first_trade_moves_it_earlier(make_pipeline) -> None:
    p = await make_pipeline()
    await in_universe(p, "GOOG")
    await p.store.set_first_trade_session("GOOG", utc(2004, 9, 1, 13, 30))  # too late
    out = await p.collector.ingestor.ingest("GOOG", D1, utc(2004, 8, 2), utc(2004, 10, 1))
    assert out.complete and out.received == sessions(GOOG_FIRST, utc(2004, 10, 1))
    assert await p.store.first_trade_sessions() == {"GOOG": GOOG_FIRST}
    assert out.before_listing == sessions(utc(2004, 8, 2), GOOG_FIRST)
    # Intraday ranges before it are not expected either, and not asked for.
    day_before = await p.collector.ingestor.ingest("GOOG", M1, utc(2004, 8, 18), utc(2004, 8, 19))
    assert day_before.complete and day_before.provider is None and day_before.before_listing == 390
    assert await p.store.read_bars("GOOG", M1, utc(2004, 8, 18), utc(2004, 8, 19)) == []


async def test_a_series_with_no_data_at_all_still_fails(make_pipeline) -> None:
    p = await make_pipeline(EMPTY_ANSWERS, tiers={"GOOG": Tier.T0})
    await in_universe(p, "GOOG")
    created = (
        await p.collector.backfiller.enqueue("GOOG", D1, utc(2003, 1, 2), utc(2006, 1, 3), Tier.T0)
    ).created
    await p.drain_backfills()
    failed = await p.store.list_backfills(status=BackfillStatus.FAILED)
    assert len(failed) == len(created) == 3
    assert all("bars still missing" in (j.last_error or "") for j in failed)
    assert await p.store.first_trade_sessions() == {}


async def test_holes_after_or_just_before_the_first_stored_bar_still_fail(make_pipeline) -> None:
    p = await make_pipeline(EMPTY_ANSWERS, tiers={"GOOGL": Tier.T0})
    await in_universe(p, "GOOGL")
    await p.store.write_bars(ground_truth("GOOGL", D1, utc(2024, 1, 10), utc(2025, 1, 1)), as_of=NOW)
    backfiller = p.collector.backfiller
    # An empty answer after the first stored bar is an outage of data, not a listing.
    [after] = (await backfiller.enqueue("GOOGL", D1, utc(2025, 1, 2), utc(2025, 3, 1), Tier.T0)).created
    # Four sessions lacking right before it: a provider may drop a few days, so no listing.
    [short] = (await backfiller.enqueue("GOOGL", D1, utc(2024, 1, 4), utc(2024, 1, 10), Tier.T0)).created
    await p.drain_backfills()
    for rec in (after, short):
        job = await p.store.get_backfill(rec.id)
        assert job is not None and job.status is BackfillStatus.FAILED
        assert "bars still missing" in (job.last_error or "")
    assert await p.store.first_trade_sessions() == {}
