"""Freshness buckets are counted in exchange sessions, not wall hours (issue 14).

"<=24h" holds the last closed session, "24-48h" is one session behind, ">48h" two or more,
"none" no bar: a weekend, a holiday or an early close moves the buckets exactly as the
sessions move, never as the hours pass.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.domain.models import Interval
from mds.services.coverage import freshness_bucket

CAL = MarketCalendar()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def daily(last: datetime | None, now: datetime) -> str:
    return freshness_bucket(last, interval=Interval.D1, calendar=CAL, now=now)


def m5(last: datetime | None, now: datetime) -> str:
    return freshness_bucket(last, interval=Interval.M5, calendar=CAL, now=now)


# Daily bars are stamped with their session's open (13:30 UTC in EDT, 14:30 UTC in EST).
THU_1016, FRI_1017, MON_1020 = utc(2025, 10, 16, 13, 30), utc(2025, 10, 17, 13, 30), utc(2025, 10, 20, 13, 30)
WED_1015 = utc(2025, 10, 15, 13, 30)


@pytest.mark.parametrize(
    ("now", "last", "bucket"),
    [
        # Monday 08:00 ET, before the open: Friday is the last closed session, 64 hours ago.
        (utc(2025, 10, 20, 12, 0), FRI_1017, "<=24h"),
        (utc(2025, 10, 20, 12, 0), THU_1016, "24-48h"),
        (utc(2025, 10, 20, 12, 0), WED_1015, ">48h"),
        (utc(2025, 10, 20, 12, 0), None, "none"),
        # The weekend itself: Friday's bar stays fresh.
        (utc(2025, 10, 19, 23, 0), FRI_1017, "<=24h"),
        # Monday while it trades: Monday has not closed, Friday is still the last session.
        (utc(2025, 10, 20, 15, 0), FRI_1017, "<=24h"),
        # Monday after the close: now Monday is expected and Friday is one behind.
        (utc(2025, 10, 20, 20, 0), FRI_1017, "24-48h"),
        (utc(2025, 10, 20, 20, 0), MON_1020, "<=24h"),
        (utc(2025, 10, 20, 20, 0), THU_1016, ">48h"),
    ],
)
def test_daily_buckets_around_a_weekend(now: datetime, last: datetime | None, bucket: str) -> None:
    assert daily(last, now) == bucket


def test_after_a_holiday_the_session_before_it_is_still_the_last_one() -> None:
    # Labor Day, Monday 2025-09-01: closed. Friday 2025-08-29 is the last session until
    # Tuesday's close, four calendar days later.
    fri, thu = utc(2025, 8, 29, 13, 30), utc(2025, 8, 28, 13, 30)
    for now in (utc(2025, 9, 1, 18, 0), utc(2025, 9, 2, 12, 0), utc(2025, 9, 2, 19, 0)):
        assert daily(fri, now) == "<=24h", now
        assert daily(thu, now) == "24-48h", now
    assert daily(fri, utc(2025, 9, 2, 20, 0)) == "24-48h"  # Tuesday closed at 16:00 ET


def test_the_day_after_thanksgiving_closes_early_and_counts_from_its_early_close() -> None:
    # Thanksgiving 2025-11-27 closed; Friday 11-28 trades 09:30-13:00 ET (14:30-18:00 UTC).
    wed, fri = utc(2025, 11, 26, 14, 30), utc(2025, 11, 28, 14, 30)
    # 12:30 ET: Friday still trades, Wednesday is the last closed session.
    assert daily(wed, utc(2025, 11, 28, 17, 30)) == "<=24h"
    # 13:30 ET: the early close has passed, so Friday is due and Wednesday one behind,
    # hours before a regular 16:00 close would have made it so.
    assert daily(wed, utc(2025, 11, 28, 18, 30)) == "24-48h"
    assert daily(fri, utc(2025, 11, 28, 18, 30)) == "<=24h"
    assert daily(utc(2025, 11, 25, 14, 30), utc(2025, 11, 28, 18, 30)) == ">48h"
    # The Monday after, before the open: the short Friday is the last session.
    assert daily(fri, utc(2025, 12, 1, 13, 0)) == "<=24h"


def test_m5_holds_any_bar_of_the_last_closed_session() -> None:
    tue_morning = utc(2025, 10, 21, 12, 0)  # before Tuesday's open: Monday is the last session
    assert m5(utc(2025, 10, 20, 19, 55), tue_morning) == "<=24h"  # Monday's last 5m bar
    assert m5(utc(2025, 10, 20, 13, 30), tue_morning) == "<=24h"  # its first is enough
    assert m5(utc(2025, 10, 17, 19, 55), tue_morning) == "24-48h"  # Friday's last bar
    assert m5(utc(2025, 10, 16, 19, 55), tue_morning) == ">48h"
    assert m5(None, tue_morning) == "none"
    # During Tuesday's session a bar of Tuesday is fresh; Monday's still is too.
    assert m5(utc(2025, 10, 21, 14, 0), utc(2025, 10, 21, 14, 10)) == "<=24h"
    assert m5(utc(2025, 10, 20, 19, 55), utc(2025, 10, 21, 14, 10)) == "<=24h"


def test_m5_after_an_early_close() -> None:
    # The last 5m bar of the short 2025-11-28 session opens at 12:55 ET (17:55 UTC).
    last_bar = utc(2025, 11, 28, 17, 55)
    wednesday_bar = utc(2025, 11, 26, 20, 55)
    assert m5(last_bar, utc(2025, 11, 28, 18, 30)) == "<=24h"
    assert m5(wednesday_bar, utc(2025, 11, 28, 18, 30)) == "24-48h"
    assert m5(wednesday_bar, utc(2025, 11, 28, 17, 30)) == "<=24h"


def test_the_interval_must_be_one() -> None:
    with pytest.raises(ValueError):
        freshness_bucket(None, interval="2m", calendar=CAL, now=utc(2025, 10, 20, 12, 0))  # type: ignore[arg-type]
