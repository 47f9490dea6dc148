"""Company profiles (market cap, shares outstanding) from FMP ``/stable/profile`` and Finnhub
``stock/profile2``: real-format fixtures (see each fixture folder's SOURCE.md) over a
loopback replay server, then each adapter against the sim-server's own profile routes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from mds.domain.models import Capability
from mds.domain.profile import CompanyProfile
from mds.errors import AuthError, BadPayload, NoData, RateLimited
from mds.providers.finnhub import FinnhubProvider
from mds.providers.fmp import FmpProvider
from mds.providers.http import HttpProvider
from mds.providers.sim.actions import parse_sim_actions
from mds.providers.sim.market import SimMarket
from mds.providers.sim.profile import sim_shares_outstanding
from tests.contract.vendors.harness import KEY, ReplayServer, fixture, sim_app, vendor

FMP_PATH = "/stable/profile"
FINNHUB_PATH = "/api/v1/stock/profile2"


async def profile_of(cls: type[HttpProvider], url: str, symbol: str = "AAPL") -> CompanyProfile:
    p = vendor(cls, url)
    try:
        return await p.fetch_profile(symbol)
    finally:
        await p.aclose()


def edited(body: bytes, **changes: object) -> bytes:
    """``body`` (an FMP one-row array or a Finnhub object) with fields replaced."""
    doc = orjson.loads(body)
    row = doc[0] if isinstance(doc, list) else doc
    row.update(changes)
    return orjson.dumps(doc)


@pytest.mark.parametrize("cls", [FmpProvider, FinnhubProvider], ids=lambda c: c.name)
def test_declares_the_capability(cls: type[HttpProvider]) -> None:
    assert Capability.PROFILE in cls.capabilities


# -- FMP ----------------------------------------------------------------------------------


async def test_fmp_profile_translated(replay: ReplayServer) -> None:
    replay.expect(FMP_PATH, fixture("fmp", "profile.json"))
    profile = await profile_of(FmpProvider, replay.url)
    assert profile == CompanyProfile(
        symbol="AAPL",
        provider="fmp",
        market_cap=3_497_808_000_000.0,  # whole dollars, as sent
        shares_outstanding=None,  # FMP's profile has no share count; none is derived
        currency="USD",
        name="Apple Inc.",
        sector="Technology",
        industry="Consumer Electronics",
        exchange="NASDAQ",
    )
    (seen,) = replay.requests
    assert seen.path == FMP_PATH
    assert seen.params == {"symbol": "AAPL", "apikey": KEY}


async def test_fmp_etf_without_market_cap(replay: ReplayServer) -> None:
    replay.expect(FMP_PATH, fixture("fmp", "profile_etf.json"))
    profile = await profile_of(FmpProvider, replay.url, "SPY")
    assert (profile.symbol, profile.market_cap, profile.shares_outstanding) == ("SPY", None, None)
    assert profile.name == "SPDR S&P 500 ETF Trust"


async def test_fmp_null_market_cap_is_unknown(replay: ReplayServer) -> None:
    replay.expect(FMP_PATH, edited(fixture("fmp", "profile.json"), marketCap=None))
    profile = await profile_of(FmpProvider, replay.url)
    assert profile.market_cap is None and profile.name == "Apple Inc."


async def test_fmp_unknown_symbol_is_no_data(replay: ReplayServer) -> None:
    replay.expect(FMP_PATH, fixture("fmp", "empty.json"))
    with pytest.raises(NoData) as info:
        await profile_of(FmpProvider, replay.url, "ZZZZ")
    assert info.value.code == "empty"


# -- Finnhub ------------------------------------------------------------------------------


async def test_finnhub_profile_translated_from_millions(replay: ReplayServer) -> None:
    replay.expect(FINNHUB_PATH, fixture("finnhub", "profile2.json"))
    profile = await profile_of(FinnhubProvider, replay.url)
    assert profile.market_cap == pytest.approx(3_497_808_250_000.0, rel=1e-12)
    assert profile.shares_outstanding == pytest.approx(15_022_070_000.0, rel=1e-12)
    assert (
        profile.symbol,
        profile.provider,
        profile.currency,
        profile.name,
        profile.industry,
        profile.exchange,
    ) == ("AAPL", "finnhub", "USD", "Apple Inc", "Technology", "NASDAQ NMS - GLOBAL MARKET")
    (seen,) = replay.requests
    assert seen.path == FINNHUB_PATH
    assert seen.params == {"symbol": "AAPL"}  # the key is in the header, never the URL
    assert seen.headers["x-finnhub-token"] == KEY


async def test_finnhub_unknown_symbol_is_no_data(replay: ReplayServer) -> None:
    replay.expect(FINNHUB_PATH, fixture("finnhub", "profile2_unknown.json"))
    with pytest.raises(NoData) as info:
        await profile_of(FinnhubProvider, replay.url, "ZZZZ")
    assert info.value.code == "empty"


async def test_finnhub_zero_figures_are_unknown(replay: ReplayServer) -> None:
    body = edited(fixture("finnhub", "profile2.json"), marketCapitalization=0, shareOutstanding=0)
    replay.expect(FINNHUB_PATH, body)
    profile = await profile_of(FinnhubProvider, replay.url)
    assert (profile.market_cap, profile.shares_outstanding, profile.name) == (None, None, "Apple Inc")


# -- both: bad payloads and error answers -------------------------------------------------

CASES = {
    "fmp": (FmpProvider, FMP_PATH, "profile.json", "marketCap", "symbol"),
    "finnhub": (FinnhubProvider, FINNHUB_PATH, "profile2.json", "marketCapitalization", "ticker"),
}
BOTH = pytest.mark.parametrize("name", list(CASES))


@BOTH
async def test_malformed_body_is_bad_payload(replay: ReplayServer, name: str) -> None:
    cls, path, good, _, _ = CASES[name]
    replay.expect(path, fixture(name, good)[:60])  # cut mid-transfer
    with pytest.raises(BadPayload):
        await profile_of(cls, replay.url)


@BOTH
async def test_wrong_json_shape_is_bad_payload(replay: ReplayServer, name: str) -> None:
    cls, path, good, _, _ = CASES[name]
    doc = orjson.loads(fixture(name, good))
    # FMP answers an array, Finnhub an object: each gets the other's shape.
    replay.expect(path, orjson.dumps(doc[0] if isinstance(doc, list) else [doc]))
    with pytest.raises(BadPayload):
        await profile_of(cls, replay.url)


@BOTH
async def test_negative_market_cap_is_bad_payload(replay: ReplayServer, name: str) -> None:
    cls, path, good, cap_field, _ = CASES[name]
    replay.expect(path, edited(fixture(name, good), **{cap_field: -5}))
    with pytest.raises(BadPayload, match="market_cap"):
        await profile_of(cls, replay.url)


@BOTH
async def test_text_market_cap_is_bad_payload(replay: ReplayServer, name: str) -> None:
    cls, path, good, cap_field, _ = CASES[name]
    replay.expect(path, edited(fixture(name, good), **{cap_field: "3.4T"}))
    with pytest.raises(BadPayload):
        await profile_of(cls, replay.url)


@BOTH
async def test_profile_of_another_symbol_is_bad_payload(replay: ReplayServer, name: str) -> None:
    cls, path, good, _, symbol_field = CASES[name]
    replay.expect(path, edited(fixture(name, good), **{symbol_field: "MSFT"}))
    with pytest.raises(BadPayload, match="MSFT"):
        await profile_of(cls, replay.url)


@BOTH
async def test_missing_symbol_is_bad_payload(replay: ReplayServer, name: str) -> None:
    cls, path, good, _, symbol_field = CASES[name]
    doc = orjson.loads(fixture(name, good))
    row = doc[0] if isinstance(doc, list) else doc
    del row[symbol_field]
    replay.expect(path, orjson.dumps(doc))
    with pytest.raises(BadPayload):
        await profile_of(cls, replay.url)


ERRORS = {
    "fmp": ("invalid_key.json", "limit_reach.json"),
    "finnhub": ("error_invalid_key.json", "error_limit.json"),
}


@BOTH
@pytest.mark.parametrize("echo", [False, True], ids=["as-sent", "echoing-key"])
async def test_invalid_key_is_auth_error_without_the_key(replay: ReplayServer, name: str, echo: bool) -> None:
    cls, path, _, _, _ = CASES[name]
    body = fixture(name, ERRORS[name][0])
    if echo:  # a body quoting the request back must not carry the key into the error
        doc = orjson.loads(body)
        field = "Error Message" if name == "fmp" else "error"
        doc[field] = f"{doc[field]} (apikey={KEY})"
        body = orjson.dumps(doc)
    replay.expect(path, body, status=401)
    with pytest.raises(AuthError) as info:
        await profile_of(cls, replay.url)
    assert KEY not in str(info.value) and KEY not in info.value.message
    assert "invalid api key" in str(info.value).lower()


@BOTH
async def test_limit_is_rate_limited(replay: ReplayServer, name: str) -> None:
    cls, path, _, _, _ = CASES[name]
    replay.expect(path, fixture(name, ERRORS[name][1]), status=429, headers={"Retry-After": "7"})
    with pytest.raises(RateLimited) as info:
        await profile_of(cls, replay.url)
    assert info.value.retry_after == 7


# -- against the sim-server ---------------------------------------------------------------

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)  # a Monday session
#: A split still to come at NOW: raw prices are 4x the continuous ones, shares a quarter.
SPLIT_LATER = "NVDA=2025-06-09:4"


@pytest.mark.parametrize("cls", [FmpProvider, FinnhubProvider], ids=lambda c: c.name)
@pytest.mark.parametrize(("symbol", "split"), [("AAPL", 1.0), ("NVDA", 4.0)], ids=["plain", "split-later"])
async def test_sim_roundtrip_market_cap_is_shares_times_price(
    cls: type[HttpProvider], symbol: str, split: float
) -> None:
    market = SimMarket(seed=42, actions=parse_sim_actions(SPLIT_LATER, ""))
    price = market.quote(symbol, NOW).last  # raw, as traded at NOW
    shares = round(sim_shares_outstanding(symbol) / split)  # in NOW's (pre-split) shares
    with sim_app(cls.name, NOW, market) as url:
        profile = await profile_of(cls, url, symbol)
    assert profile.provider == cls.name and profile.symbol == symbol
    assert profile.market_cap == pytest.approx(shares * price, rel=1e-9, abs=1.0)
    # The continuous (split-adjusted) value: a split to come changes price and shares, not the cap.
    assert profile.market_cap == pytest.approx(sim_shares_outstanding(symbol) * price / split, rel=1e-6)
    if cls is FinnhubProvider:
        assert profile.shares_outstanding == pytest.approx(shares, abs=1.0)
    else:
        assert profile.shares_outstanding is None  # FMP sends none, the adapter derives none
    assert profile.currency == "USD" and profile.name


@pytest.mark.parametrize("cls", [FmpProvider, FinnhubProvider], ids=lambda c: c.name)
async def test_sim_roundtrip_etf_has_no_market_cap(cls: type[HttpProvider]) -> None:
    with sim_app(cls.name, NOW) as url:
        profile = await profile_of(cls, url, "SPY")
    assert (profile.provider, profile.market_cap, profile.shares_outstanding) == (cls.name, None, None)
    assert profile.name == "SPDR S&P 500 ETF Trust"
