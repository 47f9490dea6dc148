"""SimMarket: a deterministic ground truth that respects the calendar and aggregates exactly."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mds.calendar import get_calendar
from mds.domain.models import Bar, BarStatus, Interval
from mds.providers.sim import SimMarket, ground_truth
from tests.helpers import utc

CAL = get_calendar("XNYS")


@pytest.fixture(scope="module")
def market() -> SimMarket:
    return SimMarket(seed=42)


def day(d: date) -> tuple[datetime, datetime]:
    start = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def aggregate(minutes: list[Bar]) -> tuple[float, float, float, float, float]:
    return (
        minutes[0].open,
        max(b.high for b in minutes),
        min(b.low for b in minutes),
        minutes[-1].close,
        sum(b.volume for b in minutes),
    )


def is_cents(x: float) -> bool:
    return abs(x * 100 - round(x * 100)) < 1e-6


# -- determinism --------------------------------------------------------------------


def test_same_bar_whatever_range_was_asked(market: SimMarket) -> None:
    wide = market.bars("AAPL", Interval.M1, utc(2025, 6, 9), utc(2025, 6, 14))
    narrow = market.bars("AAPL", Interval.M1, utc(2025, 6, 11, 15), utc(2025, 6, 11, 15, 10))
    assert len(narrow) == 10
    by_ts = {b.ts: b for b in wide}
    assert all(by_ts[b.ts] == b for b in narrow)
    daily_long = market.bars("AAPL", Interval.D1, utc(2024, 1, 1), utc(2025, 12, 31))
    daily_one = market.bars("AAPL", Interval.D1, *day(date(2025, 6, 11)))
    assert daily_one[0] in daily_long


def test_same_across_instances_and_ground_truth(market: SimMarket) -> None:
    other = SimMarket(seed=42)
    args = ("MSFT", Interval.M15, utc(2025, 3, 7), utc(2025, 3, 11))
    assert other.bars(*args) == market.bars(*args)
    assert ground_truth(*args) == market.bars(*args)
    # Asked in the opposite order (fresh instance, fresh caches), still the same.
    third = SimMarket(seed=42)
    late = third.bars("MSFT", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    early = third.bars("MSFT", Interval.M1, utc(2025, 3, 7), utc(2025, 3, 8))
    assert late + early == [
        *market.bars("MSFT", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11)),
        *market.bars("MSFT", Interval.M1, utc(2025, 3, 7), utc(2025, 3, 8)),
    ]


def test_different_seeds_and_symbols_differ(market: SimMarket) -> None:
    args = (Interval.D1, utc(2025, 6, 1), utc(2025, 7, 1))
    a = [b.values() for b in market.bars("AAPL", *args)]
    assert a != [b.values() for b in SimMarket(seed=7).bars("AAPL", *args)]
    assert a != [b.values() for b in market.bars("MSFT", *args)]
    assert a != [b.values() for b in ground_truth("AAPL", *args, seed=43)]


def test_provider_label_is_applied(market: SimMarket) -> None:
    bars = market.bars("AAPL", Interval.H1, *day(date(2025, 6, 10)), provider="sim_backup")
    assert bars and {b.provider for b in bars} == {"sim_backup"}
    assert {b.status for b in bars} == {BarStatus.FINAL}


# -- calendar -----------------------------------------------------------------------


@pytest.mark.parametrize("interval", list(Interval))
def test_bars_exist_exactly_at_expected_times(market: SimMarket, interval: Interval) -> None:
    start, end = utc(2025, 11, 20), utc(2025, 12, 30)  # Thanksgiving, early closes, Christmas
    bars = market.bars("SPY", interval, start, end)
    assert [b.ts for b in bars] == CAL.expected_bar_times(interval, start, end)


def test_no_bars_outside_sessions(market: SimMarket) -> None:
    assert market.bars("SPY", Interval.M1, *day(date(2025, 7, 4))) == []
    assert market.bars("SPY", Interval.D1, *day(date(2025, 12, 25))) == []
    assert market.bars("SPY", Interval.M1, utc(2025, 6, 10, 20), utc(2025, 6, 11, 13, 30)) == []
    assert market.bars("SPY", Interval.M1, utc(2025, 6, 11), utc(2025, 6, 10)) == []


def test_early_close_hour_bar_is_the_last_half_hour(market: SimMarket) -> None:
    hours = market.bars("SPY", Interval.H1, *day(date(2025, 11, 28)))
    minutes = market.bars("SPY", Interval.M1, utc(2025, 11, 28, 17, 30), utc(2025, 11, 28, 19))
    assert len(minutes) == 30
    assert hours[-1].ts == utc(2025, 11, 28, 17, 30)
    assert hours[-1].values() == aggregate(minutes)


def test_far_dates_are_served(market: SimMarket) -> None:
    old = market.bars("IBM", Interval.D1, utc(2003, 1, 1), utc(2003, 2, 1))
    future = market.bars("IBM", Interval.D1, utc(2029, 1, 1), utc(2029, 2, 1))
    assert len(old) == 21 and len(future) == 21  # Jan 2003 and Jan 2029: 21 sessions each
    assert [b.ts for b in future] == CAL.expected_bar_times(Interval.D1, utc(2029, 1, 1), utc(2029, 2, 1))
    assert all(not b.problems() for b in old + future)


# -- consistency ----------------------------------------------------------------------

SYMBOLS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ.", min_size=1, max_size=6)
SESSION_DAYS = st.dates(min_value=date(2008, 1, 1), max_value=date(2027, 6, 30))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(symbol=SYMBOLS, d=SESSION_DAYS)
def test_ohlc_is_consistent_and_in_cents(market: SimMarket, symbol: str, d: date) -> None:
    bars = market.bars(symbol, Interval.M1, *day(d))
    assert len(bars) == len(CAL.expected_bar_times(Interval.M1, *day(d)))
    for b in bars + market.bars(symbol, Interval.D1, *day(d)):
        assert b.problems() == [], b
        assert 0 < b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert all(is_cents(x) for x in (b.open, b.high, b.low, b.close))
        assert b.volume >= 0 and b.volume == int(b.volume)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(symbol=SYMBOLS, d=SESSION_DAYS)
def test_1m_aggregates_exactly_to_every_interval(market: SimMarket, symbol: str, d: date) -> None:
    minutes = market.bars(symbol, Interval.M1, *day(d))
    for interval in (Interval.M5, Interval.M15, Interval.H1, Interval.D1):
        bigger = market.bars(symbol, interval, *day(d))
        assert len(bigger) == len(CAL.expected_bar_times(interval, *day(d)))
        for bar in bigger:
            end = CAL.bar_end(bar.ts, interval)
            inside = [m for m in minutes if bar.ts <= m.ts < end]
            assert inside and bar.values() == aggregate(inside)


def test_prices_stay_plausible_over_decades(market: SimMarket) -> None:
    closes = [b.close for b in market.bars("XOM", Interval.D1, utc(1995, 1, 1), utc(2035, 1, 1))]
    assert min(closes) > 1.0 and max(closes) < 2000.0
    # Daily moves look like a market, not like noise or a flat line.
    moves = [abs(math.log(b / a)) for a, b in zip(closes, closes[1:], strict=False)]
    assert 0.003 < sum(moves) / len(moves) < 0.05


# -- what a vendor knows at `now` ------------------------------------------------------


@pytest.mark.parametrize("interval", list(Interval))
def test_known_at_never_leaks_the_future(market: SimMarket, interval: Interval) -> None:
    now = utc(2025, 6, 11, 15, 7, 30)
    bars = market.bars_known_at("AAPL", interval, utc(2025, 6, 9), utc(2025, 6, 13), now)
    assert bars and all(b.ts < now for b in bars)
    truth = {b.ts: b for b in market.bars("AAPL", interval, utc(2025, 6, 9), utc(2025, 6, 13))}
    minutes = market.bars("AAPL", Interval.M1, *day(date(2025, 6, 11)))
    for b in bars:
        if CAL.bar_end(b.ts, interval) <= now:
            assert b.status is BarStatus.FINAL and b == truth[b.ts]
        else:
            assert b.status is BarStatus.PROVISIONAL
            closed = [m for m in minutes if m.ts >= b.ts and m.ts + timedelta(minutes=1) <= now]
            assert b.values() == aggregate(closed)
    provisional = [b for b in bars if b.status is BarStatus.PROVISIONAL]
    # A 1m bar is never served while open; every larger interval serves its open bar.
    assert len(provisional) == (0 if interval is Interval.M1 else 1)


def test_known_at_omits_an_interval_with_no_closed_minute(market: SimMarket) -> None:
    now = utc(2025, 6, 11, 15, 0, 30)  # the 15:00 bar has no closed minute yet
    for interval in (Interval.M1, Interval.M5, Interval.M15):
        bars = market.bars_known_at("AAPL", interval, *day(date(2025, 6, 11)), now)
        assert bars[-1].ts == utc(2025, 6, 11, 15) - interval.delta
        assert bars[-1].status is BarStatus.FINAL
    # The 14:30 hour bar has 30 closed minutes, so it is served, provisionally.
    hours = market.bars_known_at("AAPL", Interval.H1, *day(date(2025, 6, 11)), now)
    assert hours[-1].ts == utc(2025, 6, 11, 14, 30)
    assert hours[-1].status is BarStatus.PROVISIONAL
    at_open = utc(2025, 6, 11, 13, 30, 59)
    assert market.bars_known_at("AAPL", Interval.D1, *day(date(2025, 6, 11)), at_open) == []
    assert market.bars_known_at("AAPL", Interval.M1, *day(date(2025, 6, 11)), at_open) == []


def test_known_at_after_the_close_is_ground_truth(market: SimMarket) -> None:
    args = ("AAPL", Interval.M5, *day(date(2025, 11, 28)))
    assert market.bars_known_at(*args, utc(2025, 11, 28, 18)) == market.bars(*args)
    daily = market.bars_known_at("AAPL", Interval.D1, *day(date(2025, 11, 28)), utc(2025, 11, 28, 17))
    assert daily[0].status is BarStatus.PROVISIONAL
    assert daily[0].values() != market.bars("AAPL", Interval.D1, *day(date(2025, 11, 28)))[0].values()


def test_naive_now_is_refused(market: SimMarket) -> None:
    with pytest.raises(ValueError, match="naive"):
        market.bars_known_at(
            "AAPL", Interval.M1, utc(2025, 6, 11), utc(2025, 6, 12), datetime(2025, 6, 11, 15)
        )
    with pytest.raises(ValueError, match="naive"):
        market.bars("AAPL", Interval.M1, datetime(2025, 6, 11), utc(2025, 6, 12))


# -- quotes --------------------------------------------------------------------------


def test_quote_in_session_uses_the_last_closed_minute(market: SimMarket) -> None:
    now = utc(2025, 6, 11, 15, 7, 30)
    q = market.quote("AAPL", now, provider="sim_backup")
    last_closed = market.bars("AAPL", Interval.M1, utc(2025, 6, 11, 15, 6), utc(2025, 6, 11, 15, 7))
    assert q.last == last_closed[0].close
    assert q.ts == now and q.provider == "sim_backup"
    assert q.bid is not None and q.ask is not None
    assert 0 < q.bid < q.last < q.ask and q.ask - q.bid < q.last * 0.01
    assert market.quote("AAPL", now, provider="sim_backup") == q


def test_quote_outside_hours_is_the_previous_close(market: SimMarket) -> None:
    friday = market.bars("AAPL", Interval.D1, *day(date(2025, 6, 13)))[0]
    for now in (utc(2025, 6, 14, 12), utc(2025, 6, 16, 13, 30, 30)):  # weekend; first minute open
        assert market.quote("AAPL", now).last == friday.close
    early = market.bars("AAPL", Interval.D1, *day(date(2025, 11, 28)))[0]
    assert market.quote("AAPL", utc(2025, 11, 28, 20)).last == early.close
