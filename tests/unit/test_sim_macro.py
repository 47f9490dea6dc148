"""The sim's macro series: plausible levels, business days, FRED-like missing values, and a
release history (first print a business day after the date, some values revised later)."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from mds.config import DEFAULT_MACRO_FACTORS
from mds.domain.macro import MacroObservation
from mds.errors import NoData
from mds.providers.sim.macro import REVISION_LAG, SIM_MACRO_EPOCH, sim_macro_observations, sim_vintage_dates

START, END = date(2024, 1, 1), date(2025, 12, 31)
TODAY = date(2026, 1, 5)  # a Monday

LEVELS = {
    "VIXCLS": (12, 35),
    "DGS10": (3.5, 5),
    "DGS2": (3.4, 5.2),
    "DGS3MO": (4, 5.5),
    "T10Y2Y": (-1.5, 1.5),
    "DFF": (3.9, 5.4),
    "DTWEXBGS": (110, 130),
    "BAMLH0A0HYM2": (2.5, 5),
    "T10YIE": (1.9, 2.7),
    "DCOILWTICO": (60, 90),
}


def next_weekday(d: date) -> date:
    d += timedelta(days=1)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


def plus_weekdays(d: date, n: int) -> date:
    for _ in range(n):
        d = next_weekday(d)
    return d


def current(series: str, today: date = TODAY, seed: int = 0) -> dict[date, float | None]:
    return {
        o.date: o.value for o in sim_macro_observations(series, start=START, end=END, today=today, seed=seed)
    }


def test_every_default_factor_has_plausible_levels() -> None:
    assert set(LEVELS) == set(DEFAULT_MACRO_FACTORS)
    for series, (lo, hi) in LEVELS.items():
        values = [v for v in current(series).values() if v is not None]
        assert len(values) > 500, series
        assert lo <= min(values) and max(values) <= hi, series
        assert max(values) - min(values) > 0.1 * (hi - lo), f"{series} barely moves"


def test_weekdays_only_with_missing_holidays() -> None:
    values = current("DGS10")
    assert all(d.weekday() < 5 for d in values)
    assert len(values) == 523  # every weekday of 2024-2025
    missing = sorted(d for d, v in values.items() if v is None)
    assert missing == [
        date(2024, 1, 1),
        date(2024, 7, 4),
        date(2024, 11, 11),
        date(2024, 12, 25),
        date(2025, 1, 1),
        date(2025, 7, 4),
        date(2025, 11, 11),
        date(2025, 12, 25),
    ]


def test_deterministic_per_seed_and_independent_of_the_range() -> None:
    assert current("VIXCLS") == current("VIXCLS")
    assert current("VIXCLS") != current("VIXCLS", seed=1)
    narrow = sim_macro_observations("VIXCLS", start=date(2025, 3, 3), end=date(2025, 3, 7), today=TODAY)
    assert {o.date: o.value for o in narrow} == {
        d: v for d, v in current("VIXCLS").items() if d in {o.date for o in narrow}
    }
    assert len(narrow) == 5


def test_term_spread_is_ten_minus_two_years() -> None:
    ten, two, spread = current("DGS10"), current("DGS2"), current("T10Y2Y")
    assert spread.keys() == ten.keys()
    for d, value in spread.items():
        a, b = ten[d], two[d]
        assert value == (None if a is None or b is None else round(a - b, 2)), d


def test_first_print_one_business_day_after_the_date() -> None:
    obs = sim_macro_observations("DGS10", start=START, end=END, today=TODAY, vintages=True)
    firsts: dict[date, MacroObservation] = {}
    for o in obs:
        firsts.setdefault(o.date, o)
    assert all(o.realtime_start == next_weekday(o.date) for o in firsts.values())
    # Published by today only: Friday's value came out on Monday (today), Monday's has not.
    friday = sim_macro_observations("DGS10", start=date(2026, 1, 1), end=TODAY, today=TODAY)
    assert [o.date for o in friday] == [date(2026, 1, 1), date(2026, 1, 2)]


def test_revisions_keep_the_first_print_as_an_earlier_vintage() -> None:
    obs = sim_macro_observations("DTWEXBGS", start=START, end=END, today=TODAY, vintages=True)
    by_date: dict[date, list[MacroObservation]] = {}
    for o in obs:
        by_date.setdefault(o.date, []).append(o)
    revised = [v for v in by_date.values() if len(v) == 2]
    # Every value but the eight missing ones, once its revision is out (not yet Dec 31's).
    due = {d for d in by_date if d.weekday() < 5 and plus_weekdays(next_weekday(d), REVISION_LAG) <= TODAY}
    assert len(due) == len(by_date) - 1
    assert {v[0].date for v in revised} == due - {d for d, v in current("DTWEXBGS").items() if v is None}
    for first, second in revised:
        assert first.value is not None and second.value is not None
        assert 0 < abs(first.value - second.value) < 1.0
        assert second.realtime_start == plus_weekdays(first.realtime_start, REVISION_LAG)
        assert first.realtime_end == second.realtime_start - timedelta(days=1)
        assert second.realtime_end is None
    # Other series: about every tenth value.
    dgs10 = sim_macro_observations("DGS10", start=START, end=END, today=TODAY, vintages=True)
    share = (len(dgs10) - len({o.date for o in dgs10})) / len({o.date for o in dgs10})
    assert 0.07 < share < 0.11


def test_current_vintage_depends_on_today() -> None:
    obs = sim_macro_observations(
        "DTWEXBGS", start=date(2025, 6, 2), end=date(2025, 6, 2), today=TODAY, vintages=True
    )
    first, second = obs
    between = first.realtime_start  # revised REVISION_LAG business days later
    early = sim_macro_observations("DTWEXBGS", start=first.date, end=first.date, today=between)
    late = sim_macro_observations("DTWEXBGS", start=first.date, end=first.date, today=second.realtime_start)
    assert [(o.value, o.realtime_start, o.realtime_end) for o in early] == [
        (first.value, first.realtime_start, None)
    ]
    assert [(o.value, o.realtime_start, o.realtime_end) for o in late] == [
        (second.value, second.realtime_start, None)
    ]
    # Before the first print: nothing.
    assert sim_macro_observations("DTWEXBGS", start=first.date, end=first.date, today=first.date) == []


def test_unknown_keys_are_no_data_and_sim_keys_generic() -> None:
    with pytest.raises(NoData) as info:
        sim_macro_observations("NOPE", start=START, end=END, today=TODAY)
    assert info.value.code == "unknown_series"
    with pytest.raises(NoData):
        sim_vintage_dates("NOPE", today=TODAY)
    generic = [o.value for o in sim_macro_observations("SIMX", start=START, end=END, today=TODAY) if o.value]
    assert generic and min(generic) >= 80 and max(generic) <= 120


def test_nothing_before_the_epoch() -> None:
    obs = sim_macro_observations("DFF", start=date(2000, 1, 1), end=date(2010, 1, 8), today=TODAY)
    assert [o.date for o in obs] == [SIM_MACRO_EPOCH + timedelta(days=i) for i in range(5)]


def test_vintage_dates_list_first_prints_and_revisions() -> None:
    dates = sim_vintage_dates("DGS10", today=TODAY)
    assert dates == sorted(set(dates))
    assert dates[0] == next_weekday(SIM_MACRO_EPOCH) and dates[-1] == TODAY
    obs = sim_macro_observations("DGS10", start=SIM_MACRO_EPOCH, end=TODAY, today=TODAY, vintages=True)
    assert set(dates) == {o.realtime_start for o in obs}
    assert len(dates) > 2000  # what makes FRED-style chunking necessary


def test_fast_enough_for_a_refresh() -> None:
    def run() -> float:
        t0 = time.perf_counter()
        for series in DEFAULT_MACRO_FACTORS:
            sim_macro_observations(series, start=START, end=END, today=TODAY, vintages=True)
        return time.perf_counter() - t0

    assert min(run() for _ in range(3)) < 0.1  # two years of ten series, every vintage
