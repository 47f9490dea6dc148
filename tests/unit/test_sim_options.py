"""The sim's option chains: listings, OCC symbols, prices from the surface, determinism, the provider."""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pytest

from mds.calendar import get_calendar
from mds.domain.clock import ManualClock
from mds.domain.models import Capability, OptionRight
from mds.errors import Unavailable
from mds.options.chain import expiry_close, year_fraction
from mds.options.pricing import black_price, discount, forward
from mds.providers.base import OptionsProvider
from mds.providers.sim import SimFaults, SimMarket, SimProvider
from mds.providers.sim.options import (
    SimSurface,
    listed_expirations,
    listed_strikes,
    occ_symbol,
    sim_option_chain,
    sim_surface_vol,
)
from tests.helpers import utc

NOW = utc(2025, 10, 15, 15, 0)  # Wednesday, mid-session
CAL = get_calendar("XNYS")
OCC = re.compile(r"^([A-Z]+)(\d{6})([CP])(\d{8})$")


@pytest.fixture(scope="module")
def market() -> SimMarket:
    return SimMarket(seed=42)


def test_occ_symbols() -> None:
    assert occ_symbol("AAPL", date(2025, 1, 17), OptionRight.CALL, 150) == "AAPL250117C00150000"
    assert occ_symbol("SPY", date(2026, 3, 20), OptionRight.PUT, 402.5) == "SPY260320P00402500"
    assert occ_symbol("F", date(2025, 12, 19), OptionRight.PUT, 12.5) == "F251219P00012500"


def test_expirations_are_six_weeklies_and_the_monthlies_of_a_year() -> None:
    days = listed_expirations(NOW, CAL)
    assert days[:6] == [date(2025, 10, 17) + timedelta(weeks=w) for w in range(6)]
    monthlies = days[6:]
    # Third Fridays; Juneteenth 2026 is the third Friday of June, so that one is Thursday the 18th.
    assert all(15 <= d.day <= 21 and d.weekday() == 4 for d in monthlies if d != date(2026, 6, 18))
    assert date(2026, 6, 18) in monthlies and CAL.session_on(date(2026, 6, 19)) is None
    assert monthlies[0] == date(2025, 12, 19) and monthlies[-1] <= NOW.date() + timedelta(days=366)
    assert len(monthlies) == 11 and days == sorted(set(days))
    # Good Friday 2025 (April 18) is a holiday: its options expire on Thursday the 17th.
    assert listed_expirations(utc(2025, 4, 14, 15), CAL)[0] == date(2025, 4, 17)
    # A Friday's own options are listed until that session closes, then gone.
    assert listed_expirations(utc(2025, 10, 17, 19, 59), CAL)[0] == date(2025, 10, 17)
    assert listed_expirations(utc(2025, 10, 17, 20, 0), CAL)[0] == date(2025, 10, 24)


def test_strikes_bracket_spot_on_a_round_step() -> None:
    for spot in (8.37, 57.66, 175.34, 612.0):
        strikes = listed_strikes(spot)
        step = strikes[1] - strikes[0]
        assert step in (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0)
        assert np.allclose(np.diff(strikes), step) and np.allclose(strikes / step, np.round(strikes / step))
        assert strikes[0] < spot < strikes[-1]
        assert strikes[0] >= spot * 0.6 - 1e-9 and strikes[-1] <= spot * 1.4 + 1e-9
        if spot > 30:
            assert 40 <= strikes.size <= 100


def test_a_chain_is_priced_from_the_surface(market: SimMarket) -> None:
    quotes = sim_option_chain(market, "SPY", NOW, rate=0.04)
    spot = market.quote("SPY", NOW).last
    assert {q.underlying_price for q in quotes} == {spot}
    assert {q.ts for q in quotes} == {NOW} and {q.provider for q in quotes} == {"sim"}
    assert len(quotes) == 2 * len(listed_strikes(spot)) * len(listed_expirations(NOW, CAL))
    surface = SimSurface.for_symbol(42, "SPY")
    assert 0.18 <= surface.base <= 0.45 and surface.skew < 0 < surface.curvature
    for q in quotes:
        m = OCC.match(q.contract)
        assert m is not None and m.group(1) == "SPY"
        assert m.group(2) == q.expiration.strftime("%y%m%d") and m.group(3) == q.right.value[0].upper()
        assert int(m.group(4)) == round(q.strike * 1000)
        assert q.bid is not None and q.ask is not None and 0 <= q.bid <= q.ask
        t = year_fraction(NOW, expiry_close(q.expiration, CAL))
        f, d = float(forward(spot, 0.04, t)), float(discount(0.04, t))
        # The vendor IV is the surface's; the mid is the model price on its tick.
        sigma = float(sim_surface_vol("SPY", q.strike, f, t))
        assert q.implied_volatility == pytest.approx(sigma)
        model = float(black_price(f, q.strike, t, sigma, d, q.right is OptionRight.CALL))
        tick = 0.01 if model < 3 else 0.05
        intrinsic = d * max(f - q.strike, 0.0) if q.right is OptionRight.CALL else d * max(q.strike - f, 0.0)
        if q.bid > 0:
            mid = (q.bid + q.ask) / 2
            assert mid >= intrinsic - 1e-9  # never below the forward intrinsic value
            assert abs(mid - model) <= tick / 2 + 1e-9 or mid - intrinsic < tick
            assert round(q.bid / tick, 6).is_integer() and round(q.ask / tick, 6).is_integer()
        else:
            assert model < 0.015  # only options quoted within a tick of zero lack a bid
        assert q.volume is not None and q.volume >= 0 and q.open_interest is not None and q.open_interest > 0


def test_puts_are_richer_than_calls_across_the_forward(market: SimMarket) -> None:
    surface = SimSurface.for_symbol(42, "MSFT")
    t = 30 / 365
    f = 100.0
    assert float(surface.vol(90, f, t)) > float(surface.vol(f, f, t)) - 1e-12
    assert float(surface.vol(90, f, t)) > float(surface.vol(110, f, t))
    assert float(surface.vol(f, f, t)) == pytest.approx(float(surface.atm(t)))
    assert float(surface.atm(1.0)) > float(surface.atm(7 / 365))  # upward term structure


def test_chains_are_deterministic(market: SimMarket) -> None:
    a = sim_option_chain(market, "TSLA", NOW)
    b = sim_option_chain(SimMarket(seed=42), "TSLA", NOW)
    assert a == b
    other_seed = sim_option_chain(SimMarket(seed=7), "TSLA", NOW)
    assert [q.bid for q in other_seed] != [q.bid for q in a]


def test_one_expiration_or_none(market: SimMarket) -> None:
    one = sim_option_chain(market, "QQQ", NOW, expiration=date(2025, 11, 21))
    assert one and {q.expiration for q in one} == {date(2025, 11, 21)}
    assert sim_option_chain(market, "QQQ", NOW, expiration=date(2025, 11, 20)) == []


async def test_the_sim_provider_serves_chains_with_its_faults(market: SimMarket) -> None:
    provider = SimProvider("sim_backup", market, ManualClock(NOW), SimFaults(), rng_seed=1)
    as_protocol: OptionsProvider = provider
    assert Capability.OPTIONS_CHAIN in as_protocol.capabilities
    chain = await provider.fetch_options_chain("SPY", date(2025, 12, 19))
    assert chain == sim_option_chain(market, "SPY", NOW, expiration=date(2025, 12, 19), provider="sim_backup")
    down = SimProvider("sim", market, ManualClock(NOW), SimFaults(error_rate=1.0), rng_seed=1)
    with pytest.raises(Unavailable):
        await down.fetch_options_chain("SPY")
