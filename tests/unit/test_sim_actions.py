"""The sim market's splits and dividends: SIM_SPLITS/SIM_DIVIDENDS parsing, raw bars that
change across actions as real ones do, and the sim provider announcing them.

The central check: adjusting the sim's raw daily bars with hand-computed factors (split:
divide prices and multiply volume by the ratio; dividend: CRSP's 1 - D / previous raw close)
gives back the continuous series, the market without actions, to 1e-9 relative.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.actions import ActionType, CorporateAction
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Capability, Interval
from mds.errors import ConfigError, Unavailable
from mds.providers.registry import build_providers
from mds.providers.sim import SimFaults, SimMarket, SimProvider
from mds.providers.sim.actions import DECLARED_DAYS_BEFORE, parse_sim_actions, sim_actions_from_env
from mds.providers.sim.market import ground_truth
from tests.helpers import utc

SPLIT_DAY = date(2025, 6, 9)  # a Monday
DIV_BEFORE, DIV_AFTER = date(2025, 5, 12), date(2025, 8, 11)
D1, D2 = 0.26, 0.27
ENV = {
    "SIM_SPLITS": f"AAPL={SPLIT_DAY}:4",
    "SIM_DIVIDENDS": f"AAPL={DIV_BEFORE}:{D1},aapl={DIV_AFTER}:{D2}",
}
START, END = utc(2025, 4, 1), utc(2025, 10, 1)


@pytest.fixture(scope="module")
def plain() -> SimMarket:
    return SimMarket(seed=42)


@pytest.fixture(scope="module")
def acting() -> SimMarket:
    return SimMarket(seed=42, actions=sim_actions_from_env(ENV))


# -- settings ------------------------------------------------------------------------------


def test_parse_settings() -> None:
    actions = parse_sim_actions("AAPL=2025-06-09:4, MSFT=2024-01-08:0.5", "AAPL=2025-08-11:0.26")
    assert sorted(actions) == ["AAPL", "MSFT"]
    split, dividend = actions["AAPL"]
    assert (split.type, split.ex_date, split.ratio) == (ActionType.SPLIT, date(2025, 6, 9), 4.0)
    assert (dividend.type, dividend.ex_date, dividend.amount) == (
        ActionType.DIVIDEND,
        date(2025, 8, 11),
        0.26,
    )
    assert dividend.declared_date == date(2025, 8, 11) - timedelta(days=DECLARED_DAYS_BEFORE)
    assert dividend.currency == "USD" and split.source == "sim"
    assert actions["MSFT"][0].ratio == 0.5  # a 1-for-2 reverse split
    assert parse_sim_actions("", " , ") == {}
    assert sim_actions_from_env({}) == {}


@pytest.mark.parametrize(
    ("splits", "dividends", "setting", "words"),
    [
        ("AAPL", "", "SIM_SPLITS", "SYMBOL=YYYY-MM-DD:value"),
        ("AAPL=2025-06-09", "", "SIM_SPLITS", "SYMBOL=YYYY-MM-DD:value"),
        ("AAPL=2025-13-09:4", "", "SIM_SPLITS", "not a YYYY-MM-DD date"),
        ("AAPL=2025-06-09:four", "", "SIM_SPLITS", "not a number"),
        ("AAPL=2025-06-09:0", "", "SIM_SPLITS", "not a positive number"),
        ("", "AAPL=2025-06-09:-1", "SIM_DIVIDENDS", "not a positive number"),
        ("", "AAPL=2025-06-09:nan", "SIM_DIVIDENDS", "not a positive number"),
        ("AAPL=2025-06-09:4,AAPL=2025-06-09:2", "", "SIM_SPLITS", "given twice"),
        ("AAPL=2025-06-09:4", "AAPL=2025-06-09:0.1", "SIM_DIVIDENDS", "also has a split"),
    ],
)
def test_bad_settings_name_the_setting(splits: str, dividends: str, setting: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        parse_sim_actions(splits, dividends)
    assert info.value.setting == setting


# -- raw bars ------------------------------------------------------------------------------


def test_without_actions_nothing_changes(plain: SimMarket, acting: SimMarket) -> None:
    assert SimMarket(seed=42, actions={}).bars("AAPL", Interval.D1, START, END) == plain.bars(
        "AAPL", Interval.D1, START, END
    )
    # Symbols without actions are untouched in a market that has some.
    for interval in (Interval.D1, Interval.M5):
        end = END if interval is Interval.D1 else utc(2025, 6, 10)
        assert acting.bars("MSFT", interval, utc(2025, 6, 5), end) == plain.bars(
            "MSFT", interval, utc(2025, 6, 5), end
        )
    # On and after the latest ex-date the raw bars are the continuous ones.
    after = utc(2025, 8, 11)
    assert acting.bars("AAPL", Interval.D1, after, END) == plain.bars("AAPL", Interval.D1, after, END)


def _adjusted(raw: list[Bar], actions: list[CorporateAction]) -> list[tuple[float, ...]]:
    """Split- and dividend-adjust raw daily bars with the hand-written rules (CRSP style)."""
    days = [b.ts.date() for b in raw]
    out = []
    for i, bar in enumerate(raw):
        price, volume = 1.0, 1.0
        for a in actions:
            if a.ex_date <= days[i]:
                continue  # only actions after the bar adjust it
            if a.type is ActionType.SPLIT:
                price, volume = price / a.value, volume * a.value
            else:
                before = max(j for j, d in enumerate(days) if d < a.ex_date)
                price *= 1.0 - a.value / raw[before].close
        out.append(
            (bar.open * price, bar.high * price, bar.low * price, bar.close * price, bar.volume * volume)
        )
    return out


def test_adjusting_raw_bars_gives_back_the_continuous_series(plain: SimMarket, acting: SimMarket) -> None:
    raw = acting.bars("AAPL", Interval.D1, START, END)
    cont = plain.bars("AAPL", Interval.D1, START, END)
    assert [b.ts for b in raw] == [b.ts for b in cont] and len(raw) > 100
    adjusted = _adjusted(raw, list(acting.actions["AAPL"]))
    for got, want in zip(adjusted, cont, strict=True):
        assert got == pytest.approx(want.values(), rel=1e-9)


def test_split_and_dividend_show_in_raw_prices(acting: SimMarket) -> None:
    raw = {b.ts.date(): b for b in acting.bars("AAPL", Interval.D1, START, END)}
    before_split = raw[date(2025, 6, 6)]  # the Friday before the Monday ex-date
    on_split = raw[SPLIT_DAY]
    # A 4:1 split: the price drops to about a quarter overnight, the volume rises about 4x.
    assert 3.7 < before_split.close / on_split.open < 4.3
    assert before_split.volume < on_split.volume
    # Before the split the raw price is 4x the continuous one, times the later dividend's
    # factor (the sim's AAPL trades near $18, so 0.27 is about 1.5%).
    cont = {b.ts.date(): b for b in SimMarket(seed=42).bars("AAPL", Interval.D1, START, END)}
    assert 4.0 < before_split.close / cont[date(2025, 6, 6)].close < 4.0 * 1.05
    # The raw close before a dividend's ex-date exceeds the continuous close (in that
    # basis) by exactly the dividend.
    friday = raw[date(2025, 8, 8)]
    assert friday.close == pytest.approx(cont[date(2025, 8, 8)].close + D2, rel=1e-12)


def test_intraday_and_quotes_use_the_sessions_multiplier(plain: SimMarket, acting: SimMarket) -> None:
    day = date(2025, 6, 6)  # before the split and the August dividend, after May's
    lo, hi = utc(2025, 6, 6, 13, 30), utc(2025, 6, 6, 20)
    (daily,) = acting.bars("AAPL", Interval.D1, lo, hi)
    scale = acting.raw_scale("AAPL", day)
    assert scale is not None
    m, v = scale
    assert v == 4.0 and m > 4.0  # the split, and the August dividend's factor on top
    raw, cont = acting.bars("AAPL", Interval.M1, lo, hi), plain.bars("AAPL", Interval.M1, lo, hi)
    assert len(raw) == 390
    for r, c in zip(raw, cont, strict=True):
        assert (r.open, r.high, r.low, r.close) == pytest.approx(
            (c.open * m, c.high * m, c.low * m, c.close * m)
        )
        assert r.volume == pytest.approx(c.volume / 4)
    # The daily bar is still the aggregate of its minutes.
    assert daily.open == raw[0].open and daily.close == raw[-1].close
    assert daily.high == max(b.high for b in raw) and daily.low == min(b.low for b in raw)
    assert daily.volume == pytest.approx(sum(b.volume for b in raw))
    now = utc(2025, 6, 6, 15, 0)
    assert acting.quote("AAPL", now).last == pytest.approx(plain.quote("AAPL", now).last * m)
    assert acting.raw_scale("MSFT", day) is None


def test_provisional_bars_and_sparse_symbols_are_scaled_too() -> None:
    actions = sim_actions_from_env({"SIM_SPLITS": "ILLQ=2025-06-09:2"})
    sparse = SimMarket(seed=42, no_trade={"ILLQ": 0.5}, actions=actions)
    base = SimMarket(seed=42, no_trade={"ILLQ": 0.5})
    lo, now = utc(2025, 6, 6, 13, 30), utc(2025, 6, 6, 15, 7)
    raw = sparse.bars_known_at("ILLQ", Interval.M5, lo, utc(2025, 6, 7), now)
    cont = base.bars_known_at("ILLQ", Interval.M5, lo, utc(2025, 6, 7), now)
    assert [b.ts for b in raw] == [b.ts for b in cont] and raw[-1].status == cont[-1].status
    assert [b.close for b in raw] == pytest.approx([b.close * 2 for b in cont])
    day = sparse.bars_known_at("ILLQ", Interval.D1, lo, utc(2025, 6, 7), now)
    assert day[0].close == pytest.approx(
        base.bars_known_at("ILLQ", Interval.D1, lo, utc(2025, 6, 7), now)[0].close * 2
    )


def test_ground_truth_takes_the_actions() -> None:
    actions = sim_actions_from_env(ENV)
    raw = ground_truth("AAPL", Interval.D1, START, END, actions=actions)
    assert raw == SimMarket(seed=42, actions=actions).bars("AAPL", Interval.D1, START, END)
    assert raw != ground_truth("AAPL", Interval.D1, START, END)


# -- the sim provider ------------------------------------------------------------------------


async def test_provider_announces_actions_from_their_declared_date(acting: SimMarket) -> None:
    clock = ManualClock(datetime(2025, 7, 1, tzinfo=UTC))
    provider = SimProvider("sim_backup", acting, clock, SimFaults(), rng_seed=1)
    assert Capability.CORPORATE_ACTIONS in provider.capabilities
    got = await provider.fetch_corporate_actions("AAPL", date(2025, 1, 1), date(2025, 12, 31))
    # August's dividend is declared on 2025-07-28: not known on 2025-07-01.
    assert [(a.type, a.ex_date, a.value, a.source) for a in got] == [
        (ActionType.DIVIDEND, DIV_BEFORE, D1, "sim_backup"),
        (ActionType.SPLIT, SPLIT_DAY, 4.0, "sim_backup"),
    ]
    clock.set(datetime(2025, 7, 28, 4, 0, tzinfo=UTC))  # 00:00 in New York: the declared date
    got = await provider.fetch_corporate_actions("AAPL", date(2025, 6, 1), date(2025, 12, 31))
    assert [a.ex_date for a in got] == [SPLIT_DAY, DIV_AFTER]
    assert await provider.fetch_corporate_actions("MSFT", date(2025, 1, 1), date(2025, 12, 31)) == []


async def test_provider_faults_apply(acting: SimMarket) -> None:
    now = datetime(2025, 7, 1, tzinfo=UTC)
    faults = SimFaults(outages=((now - timedelta(hours=1), now + timedelta(hours=1)),))
    provider = SimProvider("sim", acting, ManualClock(now), faults, rng_seed=1)
    with pytest.raises(Unavailable):
        await provider.fetch_corporate_actions("AAPL", date(2025, 1, 1), date(2025, 12, 31))


def test_registry_reads_the_settings() -> None:
    env = {"POLICY_EOD": "sim", **ENV}
    providers = build_providers(load_settings(env), ManualClock(utc(2025, 7, 1)), MarketCalendar(), env)
    sim = providers["sim"]
    assert isinstance(sim, SimProvider)
    assert [a.ex_date for a in sim.market.actions["AAPL"]] == [DIV_BEFORE, SPLIT_DAY, DIV_AFTER]
    bad = {"POLICY_EOD": "sim", "SIM_SPLITS": "AAPL=June:4"}
    with pytest.raises(ConfigError) as info:
        build_providers(
            load_settings({"POLICY_EOD": "sim"}), ManualClock(utc(2025, 7, 1)), MarketCalendar(), bad
        )
    assert info.value.setting == "SIM_SPLITS"
