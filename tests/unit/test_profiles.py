"""Company profiles: what makes one unfit to store, how a market cap is shown, and the sim's
profiles (deterministic, labelled sim, and unmoved by a split)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.domain.clock import ManualClock
from mds.domain.profile import CompanyProfile, format_market_cap
from mds.errors import BadPayload
from mds.providers.base import validate_profile
from mds.providers.sim.faults import SimFaults
from mds.providers.sim.market import SimMarket
from mds.providers.sim.profile import sim_profile, sim_shares_outstanding
from mds.providers.sim.provider import SimProvider


@pytest.mark.parametrize(
    ("profile", "problem"),
    [
        (CompanyProfile("AAPL", "fmp", market_cap=-1.0), "market_cap -1.0"),
        (CompanyProfile("AAPL", "fmp", market_cap=math.nan), "market_cap nan"),
        (CompanyProfile("AAPL", "fmp", shares_outstanding=math.inf), "shares_outstanding inf"),
        (CompanyProfile("", "fmp", market_cap=1e9), "no symbol"),
        (CompanyProfile("AAPL", "fmp"), "says nothing"),
    ],
)
def test_unfit_profiles_say_why(profile: CompanyProfile, problem: str) -> None:
    assert any(problem in p for p in profile.problems())


def test_fit_profiles_have_no_problems() -> None:
    assert CompanyProfile("AAPL", "fmp", market_cap=3.1e12, currency="USD").problems() == []
    assert CompanyProfile("SPY", "fmp", name="SPDR S&P 500 ETF Trust").problems() == []  # no cap: fine
    assert CompanyProfile("X", "fmp", market_cap=0.0).problems() == []


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (2_951_234_000_000.0, "USD", "2.95T USD"),
        (812_400_000_000.0, "", "812B"),
        (45_120_000.0, "EUR", "45.1M EUR"),
        (1_000_000_000.0, "", "1B"),
        (999.0, "", "999"),
        (12_500.0, "", "12.5K"),
    ],
)
def test_market_caps_are_shown_in_three_figures(value: float, currency: str, text: str) -> None:
    assert format_market_cap(value, currency) == text


def test_sim_share_counts_are_deterministic_and_in_range() -> None:
    counts = {s: sim_shares_outstanding(s) for s in ("AAPL", "MSFT", "SIMAA", "ZZZZ")}
    assert counts == {s: sim_shares_outstanding(s.lower()) for s in counts}
    assert all(5e7 <= c <= 1.6e10 for c in counts.values()) and len(set(counts.values())) == 4


def test_sim_profiles_are_labelled_sim_and_a_split_keeps_the_cap() -> None:
    p = sim_profile("AAPL", 200.0)
    assert p.provider == "sim" and p.currency == "USD" and p.sector == "Information Technology"
    assert p.market_cap == pytest.approx(200.0 * sim_shares_outstanding("AAPL"), rel=1e-9)
    # Before a 4:1 split the raw price is 4x and the share count a quarter: the same cap.
    pre = sim_profile("AAPL", 800.0, raw_factor=4.0)
    assert pre.market_cap == pytest.approx(p.market_cap, rel=1e-6)
    assert pre.shares_outstanding == pytest.approx(p.shares_outstanding / 4, rel=1e-6)  # type: ignore[operator]
    assert sim_profile("SPY", 500.0).market_cap is None
    with pytest.raises(ValueError, match="labelled sim"):
        sim_profile("AAPL", 1.0, provider="fmp")


async def test_the_sim_provider_prices_the_cap_at_its_own_last_trade() -> None:
    now = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
    market = SimMarket(seed=42, calendar=MarketCalendar("XNYS"))
    provider = SimProvider("sim_backup", market, ManualClock(now), SimFaults())
    profile = await provider.fetch_profile("MSFT")
    assert profile.provider == "sim_backup" and profile.problems() == []
    assert profile.market_cap == pytest.approx(
        market.last_price("MSFT", now) * sim_shares_outstanding("MSFT"), rel=1e-6
    )


def test_validate_profile_labels_the_provider_and_refuses_unfit_ones() -> None:
    fine = validate_profile("finnhub", CompanyProfile("AAPL", "", market_cap=3e12), symbol="AAPL")
    assert fine.provider == "finnhub" and fine.market_cap == 3e12
    with pytest.raises(BadPayload, match="profile for 'MSFT', asked AAPL"):
        validate_profile("fmp", CompanyProfile("MSFT", "fmp", market_cap=3e12), symbol="AAPL")
    with pytest.raises(BadPayload, match="market_cap -5.0") as caught:
        validate_profile("fmp", CompanyProfile("AAPL", "fmp", market_cap=-5.0), symbol="AAPL")
    assert caught.value.provider == "fmp"
