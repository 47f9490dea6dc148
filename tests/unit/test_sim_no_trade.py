"""SimMarket ``no_trade``: minutes without trades are omitted deterministically, and only them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mds.calendar import get_calendar
from mds.domain.models import Bar, BarStatus, Interval
from mds.errors import ConfigError
from mds.providers.sim import SimMarket, ground_truth
from mds.providers.sim.market import parse_no_trade

CAL = get_calendar("XNYS")
NO_TRADE = {"ILLQ": 0.3, "THIN": 0.05}
DAY = date(2025, 10, 8)  # a full session
EARLY = date(2025, 11, 28)  # closes at 13:00 ET


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


@pytest.fixture(scope="module")
def market() -> SimMarket:
    return SimMarket(seed=42, no_trade=NO_TRADE)


@pytest.fixture(scope="module")
def plain() -> SimMarket:
    return SimMarket(seed=42)


def test_minutes_are_omitted_deterministically(market: SimMarket) -> None:
    bars = market.bars("ILLQ", Interval.M1, *day(DAY))
    assert 0.2 * 390 < 390 - len(bars) < 0.4 * 390
    again = SimMarket(seed=42, no_trade=dict(NO_TRADE)).bars("ILLQ", Interval.M1, *day(DAY))
    assert again == bars
    assert ground_truth("ILLQ", Interval.M1, *day(DAY), no_trade=NO_TRADE) == bars
    # The same minutes whatever range was asked.
    start = datetime(2025, 10, 8, 15, tzinfo=UTC)
    narrow = market.bars("ILLQ", Interval.M1, start, start + timedelta(minutes=30))
    assert narrow == [b for b in bars if start <= b.ts < start + timedelta(minutes=30)]
    # Another seed draws other minutes.
    other = SimMarket(seed=7, no_trade=NO_TRADE).bars("ILLQ", Interval.M1, *day(DAY))
    assert {b.ts for b in other} != {b.ts for b in bars}


def test_remaining_minutes_are_the_plain_market(market: SimMarket, plain: SimMarket) -> None:
    full = {b.ts: b for b in plain.bars("ILLQ", Interval.M1, *day(DAY))}
    sparse = market.bars("ILLQ", Interval.M1, *day(DAY))
    assert all(full[b.ts] == b for b in sparse)
    # A higher probability drops a superset of the minutes.
    sparser = SimMarket(seed=42, no_trade={"ILLQ": 0.6}).bars("ILLQ", Interval.M1, *day(DAY))
    assert {b.ts for b in sparser} < {b.ts for b in sparse}


@pytest.mark.parametrize("d", [DAY, EARLY])
@pytest.mark.parametrize("symbol", ["ILLQ", "THIN"])
def test_coarser_bars_aggregate_the_minutes_that_exist(market: SimMarket, symbol: str, d: date) -> None:
    minutes = market.bars(symbol, Interval.M1, *day(d))
    for interval in (Interval.M5, Interval.M15, Interval.H1, Interval.D1):
        bigger = market.bars(symbol, interval, *day(d))
        expected = CAL.expected_bar_times(interval, *day(d))
        buckets = {t: [m for m in minutes if t <= m.ts < CAL.bar_end(t, interval)] for t in expected}
        assert [b.ts for b in bigger] == [t for t in expected if buckets[t]]
        for bar in bigger:
            assert bar.values() == aggregate(buckets[bar.ts]) and bar.status is BarStatus.FINAL


def test_an_empty_bucket_is_absent() -> None:
    dark = SimMarket(seed=42, no_trade={"DARK": 1.0, "ILLQ": 0.9})
    assert dark.bars("DARK", Interval.M1, *day(DAY)) == []
    assert dark.bars("DARK", Interval.D1, *day(DAY)) == []
    five = dark.bars("ILLQ", Interval.M5, *day(DAY))
    assert 0 < len(five) < 78  # at 90% some 5-minute buckets have no trade at all
    assert dark.quote("DARK", datetime(2025, 10, 8, 15, tzinfo=UTC)).last > 0


def test_other_symbols_are_unchanged(market: SimMarket, plain: SimMarket) -> None:
    for interval in (Interval.M1, Interval.M15, Interval.D1):
        assert market.bars("AAPL", interval, *day(DAY)) == plain.bars("AAPL", interval, *day(DAY))
    assert SimMarket(seed=42, no_trade={"ZERO": 0.0}).bars("ZERO", Interval.M1, *day(DAY)) == plain.bars(
        "ZERO", Interval.M1, *day(DAY)
    )
    now = datetime(2025, 10, 8, 15, 7, 30, tzinfo=UTC)
    assert market.quote("AAPL", now) == plain.quote("AAPL", now)


def test_known_at_aggregates_the_closed_traded_minutes(market: SimMarket) -> None:
    now = datetime(2025, 10, 8, 15, 7, 30, tzinfo=UTC)
    minutes = [m for m in market.bars("ILLQ", Interval.M1, *day(DAY)) if m.ts + timedelta(minutes=1) <= now]
    for interval in (Interval.M15, Interval.D1):
        known = market.bars_known_at("ILLQ", interval, *day(DAY), now)
        for bar in known:
            end = CAL.bar_end(bar.ts, interval)
            inside = [m for m in minutes if bar.ts <= m.ts < end]
            assert bar.values() == aggregate(inside)
            assert bar.status is (BarStatus.FINAL if end <= now else BarStatus.PROVISIONAL)
    last_traded = minutes[-1]
    assert market.last_price("ILLQ", now) == last_traded.close


def test_parse_no_trade() -> None:
    assert parse_no_trade("ILLQ=0.3,THIN=0.1") == {"ILLQ": 0.3, "THIN": 0.1}
    assert parse_no_trade(" illq = 1 , ") == {"ILLQ": 1.0}
    assert parse_no_trade("") == {}
    for bad in ("ILLQ", "=0.3", "ILLQ=x", "ILLQ=1.5", "ILLQ=-0.1", "ILLQ=nan", "A=0.1,A=0.2"):
        with pytest.raises(ConfigError) as err:
            parse_no_trade(bad)
        assert err.value.setting == "SIM_NO_TRADE"


def test_bad_probability_is_refused() -> None:
    with pytest.raises(ValueError, match="ILLQ"):
        SimMarket(no_trade={"ILLQ": 1.5})
