"""The pure parts of `mds bench live`: the database lag, percentiles, the universe file."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mds.benchmarks.live import (
    clock_start,
    histogram_quantile,
    lags_from_newest,
    newest_bars,
    parse_metrics,
    percentile,
    pick,
    write_universe,
)
from mds.calendar import get_calendar
from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from mds.storage.sqlite import SqliteStore

OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)


def at(h: int, m: int, s: int = 0) -> datetime:
    return OPEN.replace(hour=h, minute=m, second=s)


async def test_lag_from_the_database_counts_from_the_close_of_the_first_missing_bar(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "live.db") as store:
        await store.write_bars(ground_truth("AAA", Interval.M1, OPEN, at(14, 0)), as_of=at(14, 0))
        await store.write_bars(ground_truth("BBB", Interval.M1, OPEN, at(13, 50)), as_of=at(14, 0))
        await store.write_bars(ground_truth("CCC", Interval.D1, OPEN, at(20, 0)), as_of=at(20, 0))
    conn = sqlite3.connect(f"file:{tmp_path / 'live.db'}?mode=ro", uri=True)
    try:
        newest = newest_bars(conn, ["AAA", "BBB", "CCC"])
    finally:
        conn.close()
    assert newest == {"AAA": int(at(13, 59).timestamp()), "BBB": int(at(13, 49).timestamp()), "CCC": None}

    cal = get_calendar("XNYS")
    lags = lags_from_newest(newest, at(14, 0, 30), cal, since=at(13, 55))
    # AAA's next bar (14:00) closes at 14:01: not due yet. BBB lacks 13:50, closed 13:51.
    # CCC has no 1m bar: it counts from the first bar at or after `since` (13:55, closed 13:56).
    assert lags == {"AAA": 0.0, "BBB": 570.0, "CCC": 270.0}


def test_no_lag_after_the_close_when_the_session_is_complete() -> None:
    cal = get_calendar("XNYS")
    last = int(at(19, 59).timestamp())
    evening = at(22, 0)
    assert lags_from_newest({"A": last}, evening, cal, since=OPEN) == {"A": 0.0}
    # One bar short: the 19:59 bar closed at the 20:00 close.
    assert lags_from_newest({"A": last - 60}, evening, cal, since=OPEN) == {"A": 7200.0}


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.01, 90.0), (0.1, 99.0), (1.0, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.01 * 50 / 90)
    assert histogram_quantile(buckets, 0.99) == pytest.approx(0.1)
    assert histogram_quantile([(0.1, 0.0), (math.inf, 3.0)], 0.99) == 0.1
    assert histogram_quantile([(0.1, 0.0), (math.inf, 0.0)], 0.99) is None


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.99) is None
    assert percentile(list(range(1, 101)), 0.99) == 99
    assert percentile([5.0], 0.99) == 5.0


def test_metrics_parse_and_pick_by_label_subset() -> None:
    text = (
        "# TYPE live_lag_seconds gauge\n"
        'live_lag_seconds{tier="T0",stat="max"} 3.5\n'
        'live_lag_seconds{tier="T1",stat="max"} 9.0\n'
        "# TYPE circuit_opened_total counter\n"
        'circuit_opened_total{provider="sim"} 2.0\n'
        'circuit_opened_total{provider="sim_backup"} 1.0\n'
    )
    samples = parse_metrics(text)
    assert pick(samples, "live_lag_seconds", tier="T0", stat="max") == [3.5]
    assert sum(pick(samples, "circuit_opened_total")) == 3.0
    assert pick(samples, "backfill_queue_bytes") == []


def test_universe_and_clock_start(tmp_path: Path) -> None:
    t0 = write_universe(tmp_path / "u.csv", 100, 20)
    rows = (tmp_path / "u.csv").read_text().splitlines()
    assert rows[0] == "symbol,tier" and len(rows) == 101 and len(t0) == 20
    assert sum(r.endswith(",T1") for r in rows) == 28  # 35% of the other 80

    cal = get_calendar("XNYS")
    # From a Monday: the Friday before (an early close, still room), in winter (EST) half an
    # hour after the 14:30Z open; a run too long for that short session goes back further.
    assert clock_start(cal, 10, today=date(2026, 11, 30)) == datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    assert clock_start(cal, 200, today=date(2026, 11, 30)) == datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    start = clock_start(cal, 10, today=date(2025, 10, 9))
    assert start == datetime(2025, 10, 8, 14, 0, tzinfo=UTC)
    assert cal.is_open(start + timedelta(minutes=12))
