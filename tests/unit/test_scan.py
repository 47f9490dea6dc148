"""The full gap scan on a SQLite store holding sim ground truth with planted holes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from mds.calendar import get_calendar
from mds.domain.models import Bar, Interval
from mds.ingest.gaps import Gap
from mds.ingest.scan import closed_expected, scan_gaps, summarize
from mds.providers.sim.market import ground_truth
from mds.storage.sqlite import SqliteStore
from tests.helpers import utc

CAL = get_calendar("XNYS")
M1 = Interval.M1


# Two full sessions, 2025-10-07 and 2025-10-08 (13:30Z-20:00Z), and the early close on
# 2025-11-28 (14:30Z-18:00Z).
START, END = utc(2025, 10, 7), utc(2025, 10, 9)
AFTER = utc(2025, 10, 9, 12)
EARLY_START, EARLY_END = utc(2025, 11, 28), utc(2025, 11, 29)
NIGHT_HOLE = (utc(2025, 10, 7, 19, 57), utc(2025, 10, 8, 13, 32))  # 3 + 2 minutes
SINGLE_HOLE = utc(2025, 10, 8, 16, 0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "mds.db") as s:
        yield s


def without(bars: list[Bar], *holes: tuple[datetime, datetime]) -> list[Bar]:
    return [b for b in bars if not any(a <= b.ts < z for a, z in holes)]


async def fill(
    store: SqliteStore,
    symbol: str,
    interval: Interval,
    start: datetime,
    end: datetime,
    *holes: tuple[datetime, datetime],
) -> None:
    await store.write_bars(without(ground_truth(symbol, interval, start, end), *holes), as_of=AFTER)


async def test_holes_across_the_night_and_whole_symbols(store: SqliteStore) -> None:
    await fill(store, "AAPL", M1, START, END)
    await fill(store, "MSFT", M1, START, END, NIGHT_HOLE, (SINGLE_HOLE, SINGLE_HOLE + M1.delta))
    await fill(store, "MSFT", Interval.M5, START, END)  # another interval does not count
    gaps = await scan_gaps(
        store, CAL, symbols=["MSFT", "NONE", "AAPL"], interval=M1, start=START, end=END, now=AFTER
    )
    assert gaps == [
        Gap("MSFT", M1, NIGHT_HOLE[0], NIGHT_HOLE[1], 5),
        Gap("MSFT", M1, SINGLE_HOLE, SINGLE_HOLE + M1.delta, 1),
        Gap("NONE", M1, utc(2025, 10, 7, 13, 30), utc(2025, 10, 8, 20), 780),
    ]
    assert summarize(gaps) == {"gaps": 3, "missing_bars": 786, "symbols_affected": 2}
    assert summarize([]) == {"gaps": 0, "missing_bars": 0, "symbols_affected": 0}


async def test_early_close_day(store: SqliteStore) -> None:
    last_minute = utc(2025, 11, 28, 17, 59)
    await fill(store, "AAPL", M1, EARLY_START, EARLY_END, (last_minute, last_minute + M1.delta))
    await fill(store, "AAPL", Interval.H1, EARLY_START, EARLY_END, (utc(2025, 11, 28, 17, 30), EARLY_END))
    after = utc(2025, 11, 28, 22)
    kw = dict(symbols=["AAPL"], start=EARLY_START, end=EARLY_END, now=after)
    assert await scan_gaps(store, CAL, interval=M1, **kw) == [  # type: ignore[arg-type]
        Gap("AAPL", M1, last_minute, utc(2025, 11, 28, 18), 1)
    ]
    # The early close's last hourly bar is 17:30 to 18:00; its gap ends at the nominal hour.
    [gap] = await scan_gaps(store, CAL, interval=Interval.H1, **kw)  # type: ignore[arg-type]
    assert (gap.start, gap.missing_bars) == (utc(2025, 11, 28, 17, 30), 1)
    # Nothing is expected after the early close, and nothing from the weekend.
    weekend = await scan_gaps(
        store,
        CAL,
        symbols=["AAPL"],
        interval=M1,
        start=utc(2025, 11, 28, 18),
        end=utc(2025, 12, 1),
        now=utc(2025, 12, 1),
    )
    assert weekend == []


async def test_bars_that_have_not_closed_are_not_expected(store: SqliteStore) -> None:
    session = utc(2025, 10, 8, 13, 30)
    await fill(store, "AAPL", M1, session, utc(2025, 10, 8, 15))  # up to the 14:59 bar
    scan = lambda now, interval=M1: scan_gaps(  # noqa: E731
        store, CAL, symbols=["AAPL"], interval=interval, start=session, end=END, now=now
    )
    assert await scan(utc(2025, 10, 8, 15)) == []
    assert await scan(utc(2025, 10, 8, 15, 0, 59)) == []  # the 15:00 bar is still open
    [gap] = await scan(utc(2025, 10, 8, 15, 1))
    assert (gap.start, gap.missing_bars) == (utc(2025, 10, 8, 15), 1)
    assert await scan(session) == []  # nothing has closed yet
    # An hourly bar is expected only once its hour (or the session) has closed.
    await fill(store, "AAPL", Interval.H1, session, utc(2025, 10, 8, 15))
    assert await scan(utc(2025, 10, 8, 16, 29), Interval.H1) == []
    [gap] = await scan(utc(2025, 10, 8, 16, 30), Interval.H1)
    assert gap.start == utc(2025, 10, 8, 15, 30)


def test_closed_expected_cuts_at_now_and_end() -> None:
    got = closed_expected(CAL, M1, START, END, utc(2025, 10, 7, 13, 32, 30))
    assert got.tolist() == [
        int(utc(2025, 10, 7, 13, 30).timestamp()),
        int(utc(2025, 10, 7, 13, 31).timestamp()),
    ]
    assert closed_expected(CAL, M1, START, utc(2025, 10, 7, 13, 31), AFTER).size == 1
    assert closed_expected(CAL, M1, START, END, START).size == 0


async def test_confirmed_empty_minutes_are_no_gaps(store: SqliteStore) -> None:
    no_trade = {"ILLQ": 0.3}
    day = (utc(2025, 10, 8), utc(2025, 10, 9))
    sparse = ground_truth("ILLQ", M1, *day, no_trade=no_trade)
    await store.write_bars(sparse, as_of=AFTER)
    kw = dict(symbols=["ILLQ"], interval=M1, start=day[0], end=day[1], now=AFTER)
    gaps = await scan_gaps(store, CAL, **kw)  # type: ignore[arg-type]
    assert sum(g.missing_bars for g in gaps) == 390 - len(sparse)
    # Two providers' complete answers lacked the same minutes: they are confirmed empty.
    empty = [
        int(e) for e in CAL.expected_epochs(M1, *day) if e not in {int(b.ts.timestamp()) for b in sparse}
    ]
    for provider in ("sim", "sim2"):
        await store.record_empty_evidence(
            "ILLQ", M1, empty, provider, now=AFTER, needed_answers=2, needed_providers=2
        )
    assert await scan_gaps(store, CAL, **kw) == []  # type: ignore[arg-type]
    assert await store.count_confirmed_empty(M1, *day) == len(empty)
