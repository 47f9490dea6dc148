"""MarketCalendar: sessions, DST, holidays, early closes and expected bar times on XNYS."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from mds.calendar import MarketCalendar, Session, get_calendar
from mds.domain.models import Interval
from tests.helpers import utc


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar("XNYS")


def day_range(d: date) -> tuple[datetime, datetime]:
    start = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def test_normal_summer_day_opens_1330z_with_390_minutes(cal: MarketCalendar) -> None:
    s = cal.session_on(date(2025, 7, 8))
    assert s == Session(date(2025, 7, 8), utc(2025, 7, 8, 13, 30), utc(2025, 7, 8, 20, 0))
    times = cal.expected_bar_times(Interval.M1, *day_range(date(2025, 7, 8)))
    assert len(times) == 390
    assert times[0] == utc(2025, 7, 8, 13, 30)
    assert times[-1] == utc(2025, 7, 8, 19, 59)


def test_normal_winter_day_opens_1430z(cal: MarketCalendar) -> None:
    s = cal.session_on(date(2025, 1, 15))
    assert s is not None
    assert (s.open, s.close) == (utc(2025, 1, 15, 14, 30), utc(2025, 1, 15, 21, 0))
    assert len(cal.expected_bar_times(Interval.M1, *day_range(date(2025, 1, 15)))) == 390


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (date(2025, 3, 7), date(2025, 3, 10)),  # EST -> EDT (clocks change Sun 2025-03-09)
        (date(2025, 10, 31), date(2025, 11, 3)),  # EDT -> EST (Sun 2025-11-02)
    ],
)
def test_dst_change_moves_the_utc_open_by_an_hour(cal: MarketCalendar, before: date, after: date) -> None:
    s0, s1 = cal.session_on(before), cal.session_on(after)
    assert s0 is not None and s1 is not None
    assert abs((s1.open - s0.open) - timedelta(days=(after - before).days)) == timedelta(hours=1)
    daily = cal.expected_bar_times(Interval.D1, day_range(before)[0], day_range(after)[1])
    assert daily == [s0.open, s1.open]
    # Nothing on the weekend in between.
    assert cal.sessions(day_range(before)[1], day_range(after)[0]) == []


def test_dst_week_sessions_in_order(cal: MarketCalendar) -> None:
    sessions = cal.sessions(utc(2025, 3, 3), utc(2025, 3, 15))
    assert [s.date.day for s in sessions] == [3, 4, 5, 6, 7, 10, 11, 12, 13, 14]
    assert {s.open.hour for s in sessions[:5]} == {14}
    assert {s.open.hour for s in sessions[5:]} == {13}


@pytest.mark.parametrize("holiday", [date(2025, 7, 4), date(2025, 12, 25), date(2026, 1, 1)])
def test_holidays_have_no_session_and_no_bars(cal: MarketCalendar, holiday: date) -> None:
    assert cal.session_on(holiday) is None
    for interval in Interval:
        assert cal.expected_bar_times(interval, *day_range(holiday)) == []
    assert not cal.is_open(datetime(holiday.year, holiday.month, holiday.day, 16, tzinfo=UTC))


def test_weekend_has_no_session(cal: MarketCalendar) -> None:
    assert cal.session_on(date(2025, 11, 29)) is None
    assert cal.session_for(utc(2025, 11, 29, 15)) is None


def test_early_close_day_after_thanksgiving(cal: MarketCalendar) -> None:
    d = date(2025, 11, 28)
    s = cal.session_on(d)
    assert s is not None
    assert (s.open, s.close) == (utc(2025, 11, 28, 14, 30), utc(2025, 11, 28, 18, 0))  # 13:00 ET
    assert len(cal.expected_bar_times(Interval.M1, *day_range(d))) == 210
    hours = cal.expected_bar_times(Interval.H1, *day_range(d))
    assert hours == [utc(2025, 11, 28, h, 30) for h in (14, 15, 16, 17)]
    # The last hourly bar is cut short by the close: 12:30-13:00 ET.
    assert cal.bar_end(hours[-1], Interval.H1) == s.close
    assert cal.bar_end(hours[0], Interval.H1) == utc(2025, 11, 28, 15, 30)
    assert cal.bar_end(s.open, Interval.D1) == s.close
    assert cal.expected_bar_times(Interval.D1, *day_range(d)) == [s.open]


@pytest.mark.parametrize(
    ("interval", "count", "last"),
    [
        (Interval.M1, 390, (19, 59)),
        (Interval.M5, 78, (19, 55)),
        (Interval.M15, 26, (19, 45)),
        (Interval.H1, 7, (19, 30)),
        (Interval.D1, 1, (13, 30)),
    ],
)
def test_intervals_align_to_the_session_open(
    cal: MarketCalendar, interval: Interval, count: int, last: tuple[int, int]
) -> None:
    times = cal.expected_bar_times(interval, *day_range(date(2025, 6, 10)))
    assert len(times) == count
    assert times[0] == utc(2025, 6, 10, 13, 30)
    assert times[-1] == utc(2025, 6, 10, *last)
    open_ = utc(2025, 6, 10, 13, 30)
    assert all((t - open_).total_seconds() % interval.seconds == 0 for t in times)


def test_range_is_start_inclusive_end_exclusive(cal: MarketCalendar) -> None:
    start, end = utc(2025, 6, 10, 14, 0), utc(2025, 6, 10, 14, 5)
    times = cal.expected_bar_times(Interval.M1, start, end)
    assert times[0] == start
    assert times[-1] == utc(2025, 6, 10, 14, 4)
    assert len(times) == 5
    # A start between bar times does not round down to the bar it falls inside.
    assert cal.expected_bar_times(Interval.M5, utc(2025, 6, 10, 13, 31), end) == [
        utc(2025, 6, 10, 13, 35),
        utc(2025, 6, 10, 13, 40),
        utc(2025, 6, 10, 13, 45),
        utc(2025, 6, 10, 13, 50),
        utc(2025, 6, 10, 13, 55),
        utc(2025, 6, 10, 14, 0),
    ]
    # Sub-second bounds: a start half a second after a bar time excludes that bar.
    half = utc(2025, 6, 10, 14, 0) + timedelta(microseconds=500_000)
    assert cal.expected_bar_times(Interval.M1, half, end)[0] == utc(2025, 6, 10, 14, 1)
    assert cal.expected_bar_times(Interval.M1, end, start) == []


def test_daily_range_uses_the_open_time(cal: MarketCalendar) -> None:
    # A range starting after the open excludes that day's bar, even though the session
    # is still running: the daily bar's ts is its open.
    assert cal.expected_bar_times(Interval.D1, utc(2025, 6, 10, 14), utc(2025, 6, 12)) == [
        utc(2025, 6, 11, 13, 30)
    ]
    # ...but sessions() reports every session the range touches.
    assert [s.date for s in cal.sessions(utc(2025, 6, 10, 14), utc(2025, 6, 12))] == [
        date(2025, 6, 10),
        date(2025, 6, 11),
    ]


def test_expected_epochs_equal_expected_bar_times(cal: MarketCalendar) -> None:
    start, end = utc(2025, 10, 1), utc(2025, 12, 31)
    for interval in Interval:
        epochs = cal.expected_epochs(interval, start, end)
        times = cal.expected_bar_times(interval, start, end)
        assert epochs.dtype == np.int64
        assert np.all(np.diff(epochs) > 0)
        assert epochs.tolist() == [int(t.timestamp()) for t in times]
    with pytest.raises(ValueError):
        cal.expected_epochs(Interval.M1, start, end)[0] = 0  # shared memo is read-only


def test_counts_over_a_quarter_match_session_lengths(cal: MarketCalendar) -> None:
    start, end = utc(2025, 10, 1), utc(2026, 1, 1)
    sessions = cal.sessions(start, end)
    minutes = sum(int((s.close - s.open).total_seconds()) // 60 for s in sessions)
    assert len(cal.expected_epochs(Interval.M1, start, end)) == minutes
    assert len(cal.expected_epochs(Interval.D1, start, end)) == len(sessions)
    # Two early closes this quarter: 2025-11-28 and 2025-12-24.
    assert sorted(s.date for s in sessions if (s.close - s.open) < timedelta(hours=6)) == [
        date(2025, 11, 28),
        date(2025, 12, 24),
    ]


def test_session_for_is_open_and_boundaries(cal: MarketCalendar) -> None:
    s = cal.session_on(date(2025, 6, 10))
    assert s is not None
    assert cal.session_for(s.open) == s
    assert cal.session_for(s.close - timedelta(seconds=1)) == s
    assert cal.session_for(s.close) is None
    assert cal.session_for(s.open - timedelta(microseconds=1)) is None
    assert cal.is_open(utc(2025, 6, 10, 15)) and not cal.is_open(utc(2025, 6, 10, 21))


def test_next_open_is_at_or_after(cal: MarketCalendar) -> None:
    fri_open = utc(2025, 6, 13, 13, 30)
    assert cal.next_open(fri_open) == fri_open
    assert cal.next_open(fri_open + timedelta(seconds=1)) == utc(2025, 6, 16, 13, 30)
    # Over the July 4th holiday weekend.
    assert cal.next_open(utc(2025, 7, 3, 18)) == utc(2025, 7, 7, 13, 30)


def test_previous_close_is_at_or_before(cal: MarketCalendar) -> None:
    close = utc(2025, 11, 28, 18)
    assert cal.previous_close(close) == close
    assert cal.previous_close(close - timedelta(seconds=1)) == utc(2025, 11, 26, 21)
    assert cal.previous_close(utc(2025, 12, 1, 15)) == close


def test_bar_end_outside_a_session_is_an_error(cal: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="not inside"):
        cal.bar_end(utc(2025, 6, 14, 15), Interval.M1)


def test_naive_datetimes_are_refused(cal: MarketCalendar) -> None:
    naive = datetime(2025, 6, 10, 15)
    for call in (
        lambda: cal.session_for(naive),
        lambda: cal.is_open(naive),
        lambda: cal.sessions(naive, utc(2025, 6, 11)),
        lambda: cal.expected_bar_times(Interval.M1, utc(2025, 6, 10), naive),
        lambda: cal.next_open(naive),
        lambda: cal.previous_close(naive),
    ):
        with pytest.raises(ValueError, match="naive"):
            call()


@pytest.mark.parametrize(
    ("day", "open_", "close"),
    [
        (date(2003, 1, 2), utc(2003, 1, 2, 14, 30), utc(2003, 1, 2, 21)),
        (date(2029, 7, 3), utc(2029, 7, 3, 13, 30), utc(2029, 7, 3, 17)),  # early close
        (date(2035, 3, 12), utc(2035, 3, 12, 13, 30), utc(2035, 3, 12, 20)),
    ],
)
def test_lookups_far_outside_the_default_range(day: date, open_: datetime, close: datetime) -> None:
    cal = MarketCalendar()  # fresh: widening must happen on demand
    assert cal.session_on(day) == Session(day, open_, close)
    assert cal.session_on(date(2029, 12, 25)) is None
    assert len(cal.expected_bar_times(Interval.M1, *day_range(day))) == (close - open_).seconds // 60


def test_ranges_straddling_the_default_edge() -> None:
    cal = MarketCalendar()
    daily = cal.expected_bar_times(Interval.D1, utc(2004, 12, 20), utc(2035, 1, 10))
    assert len(daily) > 252 * 29
    assert daily == sorted(daily)
    assert utc(2004, 12, 20, 14, 30) in daily and utc(2035, 1, 9, 14, 30) in daily


def test_lookups_beyond_supported_dates_raise_clearly() -> None:
    with pytest.raises(ValueError, match="between"):
        MarketCalendar().session_on(date(1850, 1, 3))


def test_get_calendar_is_shared() -> None:
    assert get_calendar("XNYS") is get_calendar("XNYS")
    with pytest.raises(ValueError, match="unknown exchange calendar"):
        MarketCalendar("NOPE")
