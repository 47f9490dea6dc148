"""Company profiles (market cap, shares outstanding) from FMP ``/stable/profile``, Finnhub
``stock/profile2`` and Polygon ``/v3/reference/tickers/{ticker}`` (Ticker Details v3):
real-format fixtures (see each fixture folder's SOURCE.md) over a loopback replay server,
then each adapter against the sim-server's own profile routes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from mds.domain.models import Capability
from mds.domain.profile import CompanyProfile
from mds.errors import AuthError, BadPayload, NoData, RateLimited
from mds.providers.finnhub import FinnhubProvider
from mds.providers.fmp import FmpProvider
from mds.providers.http import HttpProvider
from mds.providers.polygon import PolygonProvider
from mds.providers.sim.actions import parse_sim_actions
from mds.providers.sim.market import SimMarket
from mds.providers.sim.profile import sim_shares_outstanding
from tests.contract.vendors.harness import KEY, ReplayServer, fixture, sim_app, vendor

FMP_PATH = "/stable/profile"
FINNHUB_PATH = "/api/v1/stock/profile2"
POLYGON_PATH = "/v3/reference/tickers/AAPL"


async def profile_of(cls: type[HttpProvider], url: str, symbol: str = "AAPL") -> CompanyProfile:
    p = vendor(cls, url)
    try:
        return await p.fetch_profile(symbol)
    finally:
        await p.aclose()


#: vendor -> where its decoded answer holds the one profile row (edited in place).
ROW: dict[str, Callable[[Any], dict[str, Any]]] = {
    "fmp": lambda doc: doc[0],  # a one-row array
    "finnhub": lambda doc: doc,  # the object itself
    "polygon": lambda doc: doc["results"],  # the object's `results`
}
#: vendor -> its decoded answer in a shape it never sends.
WRONG_SHAPE: dict[str, Callable[[Any], Any]] = {
    "fmp": lambda doc: doc[0],  # the row object where an array belongs
    "finnhub": lambda doc: [doc],  # an array where the object belongs
    "polygon": lambda doc: {**doc, "results": [doc["results"]]},  # results not an object
}


def edited(name: str, body: bytes, **changes: object) -> bytes:
    """``body``, vendor ``name``'s answer, with fields of its profile row replaced."""
    doc = orjson.loads(body)
    ROW[name](doc).update(changes)
    return orjson.dumps(doc)


@pytest.mark.parametrize("cls", [FmpProvider, FinnhubProvider, PolygonProvider], ids=lambda c: c.name)
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
    replay.expect(FMP_PATH, edited("fmp", fixture("fmp", "profile.json"), marketCap=None))
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
    body = edited("finnhub", fixture("finnhub", "profile2.json"), marketCapitalization=0, shareOutstanding=0)
    replay.expect(FINNHUB_PATH, body)
    profile = await profile_of(FinnhubProvider, replay.url)
    assert (profile.market_cap, profile.shares_outstanding, profile.name) == (None, None, "Apple Inc")


# -- Polygon ------------------------------------------------------------------------------


async def test_polygon_ticker_details_translated(replay: ReplayServer) -> None:
    replay.expect(POLYGON_PATH, fixture("polygon", "ticker_details.json"))
    profile = await profile_of(PolygonProvider, replay.url)
    assert profile == CompanyProfile(
        symbol="AAPL",
        provider="polygon",
        market_cap=3_497_808_000_000.0,  # whole dollars, as sent
        shares_outstanding=14_935_826_000.0,  # weighted: the count market_cap is priced on
        currency="USD",
        name="Apple Inc.",
        sector="",  # Polygon gives none
        industry="ELECTRONIC COMPUTERS",  # sic_description
        exchange="XNAS",  # the MIC, as sent
    )
    (seen,) = replay.requests
    assert seen.path == POLYGON_PATH
    assert seen.params == {}  # the key is in the header, never the URL
    assert seen.headers["authorization"] == f"Bearer {KEY}"


async def test_polygon_etf_without_market_cap(replay: ReplayServer) -> None:
    replay.expect("/v3/reference/tickers/SPY", fixture("polygon", "ticker_details_etf.json"))
    profile = await profile_of(PolygonProvider, replay.url, "SPY")
    # share_class_shares_outstanding is sent, but it is not the weighted count: none is taken.
    assert (profile.symbol, profile.market_cap, profile.shares_outstanding) == ("SPY", None, None)
    assert (profile.name, profile.exchange, profile.industry) == ("SPDR S&P 500 ETF Trust", "ARCX", "")


async def test_polygon_null_market_cap_is_unknown(replay: ReplayServer) -> None:
    body = edited("polygon", fixture("polygon", "ticker_details.json"), market_cap=None)
    replay.expect(POLYGON_PATH, body)
    profile = await profile_of(PolygonProvider, replay.url)
    assert profile.market_cap is None and profile.shares_outstanding == 14_935_826_000.0


async def test_polygon_unknown_ticker_is_no_data(replay: ReplayServer) -> None:
    replay.expect("/v3/reference/tickers/ZZZZ", fixture("polygon", "ticker_details_unknown.json"), status=404)
    with pytest.raises(NoData) as info:
        await profile_of(PolygonProvider, replay.url, "ZZZZ")
    assert info.value.code == "404"
    assert "Ticker not found" in str(info.value)


@pytest.mark.parametrize(
    "shape",
    [
        lambda doc: [doc],  # an array where the object belongs
        lambda doc: {**doc, "results": "AAPL"},  # results not an object
    ],
    ids=["array", "results-text"],
)
async def test_polygon_wrong_shape_is_bad_payload(replay: ReplayServer, shape: Callable[[Any], Any]) -> None:
    replay.expect(POLYGON_PATH, orjson.dumps(shape(orjson.loads(fixture("polygon", "ticker_details.json")))))
    with pytest.raises(BadPayload):
        await profile_of(PolygonProvider, replay.url)


# -- every vendor: bad payloads and error answers ------------------------------------------

CASES = {
    "fmp": (FmpProvider, FMP_PATH, "profile.json", "marketCap", "symbol"),
    "finnhub": (FinnhubProvider, FINNHUB_PATH, "profile2.json", "marketCapitalization", "ticker"),
    "polygon": (PolygonProvider, POLYGON_PATH, "ticker_details.json", "market_cap", "ticker"),
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
    replay.expect(path, orjson.dumps(WRONG_SHAPE[name](orjson.loads(fixture(name, good)))))
    with pytest.raises(BadPayload):
        await profile_of(cls, replay.url)


@BOTH
async def test_negative_market_cap_is_bad_payload(replay: ReplayServer, name: str) -> None:
    cls, path, good, cap_field, _ = CASES[name]
    replay.expect(path, edited(name, fixture(name, good), **{cap_field: -5}))
    with pytest.raises(BadPayload, match="market_cap"):
        await profile_of(cls, replay.url)


@BOTH
async def test_text_market_cap_is_bad_payload(replay: ReplayServer, name: str) -> None:
    cls, path, good, cap_field, _ = CASES[name]
    replay.expect(path, edited(name, fixture(name, good), **{cap_field: "3.4T"}))
    with pytest.raises(BadPayload):
        await profile_of(cls, replay.url)


@BOTH
async def test_profile_of_another_symbol_is_bad_payload(replay: ReplayServer, name: str) -> None:
    cls, path, good, _, symbol_field = CASES[name]
    replay.expect(path, edited(name, fixture(name, good), **{symbol_field: "MSFT"}))
    with pytest.raises(BadPayload, match="MSFT"):
        await profile_of(cls, replay.url)


@BOTH
async def test_missing_symbol_is_bad_payload(replay: ReplayServer, name: str) -> None:
    cls, path, good, _, symbol_field = CASES[name]
    doc = orjson.loads(fixture(name, good))
    del ROW[name](doc)[symbol_field]
    replay.expect(path, orjson.dumps(doc))
    with pytest.raises(BadPayload):
        await profile_of(cls, replay.url)


#: vendor -> (bad-key answer, limit answer, the bad-key answer's message field, what it says)
ERRORS = {
    "fmp": ("invalid_key.json", "limit_reach.json", "Error Message", "invalid api key"),
    "finnhub": ("error_invalid_key.json", "error_limit.json", "error", "invalid api key"),
    "polygon": ("error_unknown_key.json", "error_rate_limit.json", "error", "unknown api key"),
}


@BOTH
@pytest.mark.parametrize("echo", [False, True], ids=["as-sent", "echoing-key"])
async def test_invalid_key_is_auth_error_without_the_key(replay: ReplayServer, name: str, echo: bool) -> None:
    cls, path, _, _, _ = CASES[name]
    key_answer, _, field, says = ERRORS[name]
    body = fixture(name, key_answer)
    if echo:  # a body quoting the request back must not carry the key into the error
        doc = orjson.loads(body)
        doc[field] = f"{doc[field]} (apikey={KEY})"
        body = orjson.dumps(doc)
    replay.expect(path, body, status=401)
    with pytest.raises(AuthError) as info:
        await profile_of(cls, replay.url)
    assert KEY not in str(info.value) and KEY not in info.value.message
    assert says in str(info.value).lower()


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


@pytest.mark.parametrize("cls", [FmpProvider, FinnhubProvider, PolygonProvider], ids=lambda c: c.name)
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
    if cls is FmpProvider:
        assert profile.shares_outstanding is None  # FMP sends none, the adapter derives none
    else:
        assert profile.shares_outstanding == pytest.approx(shares, abs=1.0)
    assert profile.currency == "USD" and profile.name


@pytest.mark.parametrize("cls", [FmpProvider, FinnhubProvider, PolygonProvider], ids=lambda c: c.name)
async def test_sim_roundtrip_etf_has_no_market_cap(cls: type[HttpProvider]) -> None:
    with sim_app(cls.name, NOW) as url:
        profile = await profile_of(cls, url, "SPY")
    assert (profile.provider, profile.market_cap, profile.shares_outstanding) == (cls.name, None, None)
    assert profile.name == "SPDR S&P 500 ETF Trust"
