"""When schedules fire: cron in a zone (croniter's answers, DST included) and market-relative
timings on XNYS (holidays and early closes from the calendar)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter  # type: ignore[import-untyped]

from mds.calendar import get_calendar
from mds.domain.schedules import ScheduleSpec
from mds.ops.timing import (
    CronTiming,
    MarketTiming,
    Timing,
    TimingError,
    logical_date,
    preview,
    timing_for,
)
from tests.helpers import utc

NY = ZoneInfo("America/New_York")


@dataclass
class Spec:
    cron: str | None = None
    timezone: str = "UTC"
    calendar: str | None = None
    when: str | None = None


def croniter_fires(expr: str, zone: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    """croniter's own answer in UTC, computed here independently of mds.ops.timing."""
    it = croniter(expr, start.astimezone(zone))
    return in_utc([it.get_next(datetime) for _ in range(count)])


def in_utc(times: list[datetime]) -> list[datetime]:
    """Compare in UTC: two aware datetimes sharing one tzinfo compare by wall time, so
    01:30 EDT == 01:30 EST there (PEP 495)."""
    return [t.astimezone(UTC) for t in times]


def iso(times: list[datetime]) -> list[str]:
    return [t.isoformat() for t in times]


# -- cron across DST -------------------------------------------------------------------


def test_fall_back_daily_0130_fires_once_at_the_first_occurrence() -> None:
    start = datetime(2026, 10, 30, tzinfo=NY)
    raw = croniter_fires("30 1 * * *", NY, start, 6)
    # croniter itself answers 01:30 twice on 2026-11-01 (EDT, then EST): what we must settle.
    assert [t for t in raw if t.astimezone(NY).date() == date(2026, 11, 1)] == [
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
    ]
    expected = [t for t in raw if t != datetime(2026, 11, 1, 6, 30, tzinfo=UTC)][:5]

    got = preview(timing_for(Spec(cron="30 1 * * *", timezone="America/New_York")), start, 5)

    assert in_utc(got) == expected
    assert iso(got) == [
        "2026-10-30T01:30:00-04:00",
        "2026-10-31T01:30:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
        "2026-11-03T01:30:00-05:00",
    ]


def test_spring_forward_0230_is_croniters_answer_0300_edt() -> None:
    start = datetime(2026, 3, 6, tzinfo=NY)
    expected = croniter_fires("30 2 * * *", NY, start, 5)
    # 02:30 does not exist on 2026-03-08; croniter fires at the first instant after the gap.
    assert expected[2] == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)

    got = preview(CronTiming("30 2 * * *", "America/New_York"), start, 5)

    assert in_utc(got) == expected
    assert iso(got)[1:4] == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


@pytest.mark.parametrize("expr", ["30 1 * * *", "0 1 * * *", "59 1 * * *", "30 2 * * *", "0 2 * * *"])
def test_a_daily_schedule_fires_once_on_every_local_date_of_2026(expr: str) -> None:
    timing = CronTiming(expr, "America/New_York")
    fires = preview(timing, datetime(2026, 1, 1, tzinfo=NY), 365)
    per_day = Counter(t.date() for t in fires)
    assert set(per_day.values()) == {1}
    assert len(per_day) == 365
    assert per_day[date(2026, 3, 8)] == 1 and per_day[date(2026, 11, 1)] == 1
    assert max(per_day) == date(2026, 12, 31)


def test_hourly_keeps_every_real_hour_through_both_changes() -> None:
    timing = CronTiming("0 * * * *", "America/New_York")
    fall = datetime(2026, 11, 1, tzinfo=NY)
    assert in_utc(preview(timing, fall, 30)) == croniter_fires("0 * * * *", NY, fall, 30)
    on_fall = [t for t in preview(timing, fall - timedelta(minutes=1), 30) if t.date() == date(2026, 11, 1)]
    assert len(on_fall) == 25  # 01:00 EDT and 01:00 EST both fire
    spring = datetime(2026, 3, 8, tzinfo=NY)
    on_spring = [
        t for t in preview(timing, spring - timedelta(minutes=1), 30) if t.date() == date(2026, 3, 8)
    ]
    assert len(on_spring) == 23


def test_cron_latest_at_or_before_and_logical_date() -> None:
    daily = CronTiming("30 1 * * *", "America/New_York")
    # After the dropped 01:30 EST twin, the newest fire is still the 01:30 EDT one.
    assert daily.latest_at_or_before(utc(2026, 11, 1, 6, 45)) == utc(2026, 11, 1, 5, 30)
    assert daily.latest_at_or_before(utc(2026, 11, 2, 6, 30)) == utc(2026, 11, 2, 6, 30)
    assert daily.latest_at_or_before(utc(2026, 11, 2, 6, 29, 59, 999999)) == utc(2026, 11, 1, 5, 30)
    late = CronTiming("30 23 * * *", "America/New_York")
    due = late.next_after(utc(2026, 6, 1))
    assert due == utc(2026, 6, 1, 3, 30)  # 23:30 EDT on May 31
    assert logical_date(late, due) == date(2026, 5, 31)
    assert late.zone == "America/New_York"


def test_hourly_and_minutely_in_utc() -> None:
    hourly = timing_for(Spec(cron="0 * * * *"))
    assert preview(hourly, utc(2026, 5, 4, 10, 15), 3) == [
        utc(2026, 5, 4, 11),
        utc(2026, 5, 4, 12),
        utc(2026, 5, 4, 13),
    ]
    minutely = timing_for(Spec(cron="* * * * *"))
    assert minutely.next_after(utc(2026, 5, 4, 10, 0)) == utc(2026, 5, 4, 10, 1)  # strictly after
    assert minutely.next_after(utc(2026, 5, 4, 9, 59, 59, 1)) == utc(2026, 5, 4, 10, 0)
    assert minutely.latest_at_or_before(utc(2026, 5, 4, 10, 0)) == utc(2026, 5, 4, 10, 0)
    assert minutely.latest_at_or_before(utc(2026, 5, 4, 10, 0, 59)) == utc(2026, 5, 4, 10, 0)
    assert minutely.next_after(datetime(2026, 5, 4, 12, 0, tzinfo=NY)) == utc(2026, 5, 4, 16, 1)
    assert preview(hourly, utc(2026, 5, 4), 1)[0].utcoffset() == timedelta(0)


@pytest.mark.parametrize("alias", ["@hourly", "@daily", "@weekly", "@monthly", "@yearly"])
def test_croniter_aliases_are_accepted(alias: str) -> None:
    start = utc(2026, 2, 14, 12, 30)
    assert (
        timing_for(Spec(cron=alias)).next_after(start) == croniter_fires(alias, ZoneInfo("UTC"), start, 1)[0]
    )


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cron",
    ["61 * * * *", "* * *", "@reboot", "* * * * * *", "0 0 * * * 2027", "R * * * *", "0 0 31 2 *", ""],
)
def test_bad_cron_names_the_cron_field(cron: str) -> None:
    with pytest.raises(TimingError) as err:
        timing_for(Spec(cron=cron, timezone="America/New_York"))
    assert err.value.field == "cron"


def test_unknown_zone_names_timezone() -> None:
    with pytest.raises(TimingError) as err:
        timing_for(Spec(cron="0 * * * *", timezone="Mars/Olympus_Mons"))
    assert err.value.field == "timezone"


def test_unknown_calendar_names_calendar() -> None:
    with pytest.raises(TimingError) as err:
        timing_for(Spec(calendar="NOPE", when="after_close+30m"))
    assert err.value.field == "calendar"


@pytest.mark.parametrize("when", ["before_open+30m", "after_close-5m", "before_close+1m", "at_noon"])
def test_contradictory_or_bad_when_names_when(when: str) -> None:
    with pytest.raises(TimingError) as err:
        timing_for(Spec(calendar="XNYS", when=when))
    assert err.value.field == "when"


def test_a_schedule_spec_with_a_contradictory_when_passes_the_model_but_not_timing() -> None:
    spec = ScheduleSpec(name="x", task="t", calendar="XNYS", when="before_open+60m")
    with pytest.raises(TimingError) as err:
        timing_for(spec)
    assert err.value.field == "when"


def test_half_a_market_timing_names_what_is_missing() -> None:
    with pytest.raises(TimingError) as err:
        timing_for(Spec(calendar="XNYS"))
    assert err.value.field == "when"
    with pytest.raises(TimingError) as err:
        timing_for(Spec(when="after_close"))
    assert err.value.field == "calendar"


# -- market-relative on XNYS ------------------------------------------------------------


def test_calendar_has_the_early_close_and_holiday_these_tests_assume() -> None:
    cal = get_calendar("XNYS")
    early = cal.session_on(date(2026, 11, 27))
    assert early is not None and early.close == utc(2026, 11, 27, 18, 0)
    assert cal.session_on(date(2026, 11, 26)) is None  # Thanksgiving
    normal = cal.session_on(date(2026, 11, 25))
    assert normal is not None and (normal.open, normal.close) == (
        utc(2026, 11, 25, 14, 30),
        utc(2026, 11, 25, 21),
    )


def test_after_close_30m_from_a_wednesday_around_thanksgiving() -> None:
    timing = timing_for(ScheduleSpec(name="eod", task="t", calendar="XNYS", when="after_close+30m"))
    assert timing.zone == "America/New_York"
    got = preview(timing, datetime(2026, 11, 25, 12, tzinfo=NY), 5)
    assert iso(got) == [
        "2026-11-25T16:30:00-05:00",
        "2026-11-27T13:30:00-05:00",  # early close 13:00 ET
        "2026-11-30T16:30:00-05:00",
        "2026-12-01T16:30:00-05:00",
        "2026-12-02T16:30:00-05:00",
    ]
    assert got[1] == utc(2026, 11, 27, 18, 30)
    assert not {t.date() for t in got} & {date(2026, 11, 26), date(2026, 11, 28), date(2026, 11, 29)}
    assert [logical_date(timing, t) for t in got[:3]] == [
        date(2026, 11, 25),
        date(2026, 11, 27),
        date(2026, 11, 30),
    ]
    assert timing.next_after(utc(2026, 11, 27, 18, 30)) == utc(2026, 11, 30, 21, 30)


def test_after_close_latest_at_or_before() -> None:
    timing = MarketTiming("XNYS", "after_close+30m")
    assert timing.latest_at_or_before(utc(2026, 11, 27, 18, 30)) == utc(2026, 11, 27, 18, 30)
    assert timing.latest_at_or_before(utc(2026, 11, 27, 18, 29, 59, 999999)) == utc(2026, 11, 25, 21, 30)
    assert timing.latest_at_or_before(datetime(2026, 11, 26, 12, tzinfo=NY)) == utc(2026, 11, 25, 21, 30)
    assert timing.latest_at_or_before(datetime(2026, 11, 29, 23, tzinfo=NY)) == utc(2026, 11, 27, 18, 30)


def test_before_open_60m_is_0830_et_and_belongs_to_that_session() -> None:
    timing = MarketTiming("XNYS", "before_open-60m")
    got = preview(timing, datetime(2026, 11, 25, 12, tzinfo=NY), 2)
    assert iso(got) == ["2026-11-27T08:30:00-05:00", "2026-11-30T08:30:00-05:00"]
    assert logical_date(timing, got[0]) == date(2026, 11, 27)
    assert timing.latest_at_or_before(utc(2026, 11, 27, 13, 29)) == utc(2026, 11, 25, 13, 30)
    summer = timing.next_after(utc(2026, 7, 1, 12, 30))  # 08:30 EDT: strictly after
    assert summer.astimezone(NY).isoformat() == "2026-07-02T08:30:00-04:00"


def test_after_open_and_before_close_offsets() -> None:
    start = datetime(2026, 11, 27, tzinfo=NY)
    assert MarketTiming("XNYS", "after_open").next_after(start) == utc(2026, 11, 27, 14, 30)
    assert MarketTiming("XNYS", "before_close").next_after(start) == utc(2026, 11, 27, 18)
    assert MarketTiming("XNYS", "before_close-5m").next_after(start) == utc(2026, 11, 27, 17, 55)
    assert MarketTiming("XNYS", "after_open+15m").next_after(start) == utc(2026, 11, 27, 14, 45)


def test_an_offset_past_midnight_still_belongs_to_its_session() -> None:
    timing = MarketTiming("XNYS", "after_close+600m")
    got = preview(timing, datetime(2026, 11, 25, 12, tzinfo=NY), 3)
    assert iso(got) == [
        "2026-11-26T02:00:00-05:00",
        "2026-11-27T23:00:00-05:00",
        "2026-12-01T02:00:00-05:00",
    ]
    assert [logical_date(timing, t) for t in got] == [
        date(2026, 11, 25),
        date(2026, 11, 27),
        date(2026, 11, 30),
    ]


def test_an_offset_longer_than_the_window_follows_every_session() -> None:
    cal = get_calendar("XNYS")
    timing: Timing = MarketTiming("XNYS", "after_close+9999m")
    start = utc(2026, 12, 1)
    sessions = cal.sessions(start - timedelta(days=10), start + timedelta(days=40))
    fires = [s.close + timedelta(minutes=9999) for s in sessions]
    expected = [f for f in fires if f > start][:15]
    assert in_utc(preview(timing, start, 15)) == expected
    assert logical_date(timing, expected[0]) == next(
        s.date for s, f in zip(sessions, fires, strict=True) if f > start
    )


def test_a_closure_longer_than_the_look_ahead_window_is_bridged() -> None:
    # XSHG's Lunar New Year 2024: no session from Feb 9 to Feb 18 (more than 10 days apart).
    cal = get_calendar("XSHG")
    between = cal.sessions(utc(2024, 2, 8, 12), utc(2024, 2, 19))
    assert between == []
    timing = timing_for(Spec(calendar="XSHG", when="after_open+15m"))
    assert timing.zone == "Asia/Shanghai"
    assert timing.next_after(utc(2024, 2, 8, 2)) == utc(2024, 2, 19, 1, 45)
    assert timing.latest_at_or_before(utc(2024, 2, 19, 1, 44)) == utc(2024, 2, 8, 1, 45)
    assert logical_date(timing, utc(2024, 2, 19, 1, 45)) == date(2024, 2, 19)
