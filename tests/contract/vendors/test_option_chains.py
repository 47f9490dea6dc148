"""Option chains from Yahoo (crumb and cookie), Polygon (``next_url``, ns times) and Alpaca
(``next_page_token``, no open interest): real-format fixtures over a loopback replay
server, then each adapter against the sim-server's own chain.

A contract row without a strike is kept with strike 0.0 (``MISSING_STRIKE``): no listed
contract has it, so the pricing layer drops and counts it; the other fields stay as sent.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import httpx
import pytest

from mds.domain.models import Capability, OptionQuote, OptionRight
from mds.errors import AuthError, BadPayload
from mds.options.chain import validate_quotes
from mds.providers.alpaca import AlpacaProvider
from mds.providers.http import HttpProvider
from mds.providers.polygon import PolygonProvider
from mds.providers.sim.market import SimMarket
from mds.providers.sim.options import sim_option_chain
from mds.providers.yahoo import MISSING_STRIKE, YahooProvider
from tests.contract.vendors.harness import KEY, KEYS, SECRET, ReplayServer, fixture, sim_app, vendor

OPTIONS = "/v7/finance/options/AAPL"
MAR21, MAR28 = date(2025, 3, 21), date(2025, 3, 28)


def epoch(day: date) -> str:
    return str(int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()))


async def chain_of(p: HttpProvider, *args: object, **kwargs: object) -> list[OptionQuote]:
    try:
        return await p.fetch_options_chain("AAPL", *args, **kwargs)  # type: ignore[attr-defined,no-any-return]
    finally:
        await p.aclose()


# -- Yahoo -------------------------------------------------------------------------------


def yahoo_session(replay: ReplayServer, *crumbs: str) -> None:
    """The handshake: the cookie host's 404 with a cookie, then one crumb per renewal."""
    for n, _ in enumerate(crumbs, 1):
        replay.expect(
            "/",
            "Not Found",
            status=404,
            content_type="text/plain",
            headers={"set-cookie": f"A3=c{n}; Path=/"},
        )
    for crumb in crumbs:
        replay.expect("/v1/test/getcrumb", crumb, content_type="text/plain")


def paths(replay: ReplayServer) -> list[str]:
    return [r.path for r in replay.requests]


async def test_yahoo_chain_carries_cookie_and_crumb(replay: ReplayServer) -> None:
    yahoo_session(replay, "crumb-1")
    replay.expect(OPTIONS, fixture("yahoo", "options.json"))
    call, put = await chain_of(vendor(YahooProvider, replay.url), MAR21)
    assert paths(replay) == ["/", "/v1/test/getcrumb", OPTIONS]
    _, getcrumb, options = replay.requests
    assert getcrumb.headers["cookie"] == "A3=c1"
    assert options.params == {"date": epoch(MAR21), "crumb": "crumb-1"}
    assert options.headers["cookie"] == "A3=c1"
    assert (call.contract, call.right, call.strike, call.expiration, call.bid, call.ask) == (
        "AAPL250321C00230000",
        OptionRight.CALL,
        230.0,
        MAR21,
        3.1,
        3.2,
    )
    assert (call.last, call.volume, call.open_interest, call.implied_volatility) == (
        3.15,
        48211.0,
        31502.0,
        0.3625,
    )
    assert call.ts == datetime(2025, 3, 10, 19, 59, 59, tzinfo=UTC)
    assert call.underlying_price == put.underlying_price == 227.48  # quote.regularMarketPrice
    assert put.right is OptionRight.PUT and put.provider == "yahoo"


def test_yahoo_cookie_host_rule() -> None:
    # Yahoo's own host: the cookie comes from fc.yahoo.com; any other base URL serves it at its root.
    assert vendor(YahooProvider, "https://query1.finance.yahoo.com").cookie_url() == "https://fc.yahoo.com"
    assert vendor(YahooProvider, "http://127.0.0.1:9/").cookie_url() == "http://127.0.0.1:9/"


async def test_yahoo_invalid_crumb_is_renewed_once(replay: ReplayServer) -> None:
    yahoo_session(replay, "crumb-1", "crumb-2")
    replay.expect(OPTIONS, fixture("yahoo", "invalid_crumb.json"), status=401)
    replay.expect(OPTIONS, fixture("yahoo", "options.json"))
    chain = await chain_of(vendor(YahooProvider, replay.url), MAR21)
    assert len(chain) == 2
    assert paths(replay) == ["/", "/v1/test/getcrumb", OPTIONS, "/", "/v1/test/getcrumb", OPTIONS]
    refused, accepted = (r for r in replay.requests if r.path == OPTIONS)
    assert (refused.params["crumb"], accepted.params["crumb"]) == ("crumb-1", "crumb-2")
    assert accepted.headers["cookie"] == "A3=c2"  # the renewed cookie goes with the renewed crumb


async def test_yahoo_second_invalid_crumb_is_auth_error(replay: ReplayServer) -> None:
    yahoo_session(replay, "crumb-1", "crumb-2")
    replay.expect(OPTIONS, fixture("yahoo", "invalid_crumb.json"), status=401)
    with pytest.raises(AuthError) as info:
        await chain_of(vendor(YahooProvider, replay.url), MAR21)
    assert type(info.value) is AuthError  # the renewal's own error type stays inside the adapter
    assert "Invalid Crumb" in str(info.value) and info.value.code == "401"
    assert paths(replay).count("/v1/test/getcrumb") == 2 and paths(replay).count(OPTIONS) == 2


async def test_yahoo_crumb_is_kept_between_calls(replay: ReplayServer) -> None:
    yahoo_session(replay, "crumb-1")
    replay.expect(OPTIONS, fixture("yahoo", "options.json"))
    p = vendor(YahooProvider, replay.url)
    await p.fetch_options_chain("AAPL", MAR21)
    await chain_of(p, MAR21)
    assert paths(replay) == ["/", "/v1/test/getcrumb", OPTIONS, OPTIONS]


async def test_yahoo_all_expirations_follow_expiration_dates(replay: ReplayServer) -> None:
    yahoo_session(replay, "crumb-1")
    replay.expect(OPTIONS, fixture("yahoo", "options.json"))  # the nearest, and the list
    replay.expect(OPTIONS, fixture("yahoo", "options_2025-03-28.json"))
    chain = await chain_of(vendor(YahooProvider, replay.url))
    asked = [r.params.get("date") for r in replay.requests if r.path == OPTIONS]
    assert asked == [None, epoch(MAR28)]  # the nearest expiration is not asked twice
    assert [(q.contract, q.expiration) for q in chain] == [
        ("AAPL250321C00230000", MAR21),
        ("AAPL250321P00230000", MAR21),
        ("AAPL250328C00230000", MAR28),
        ("AAPL250328P00225000", MAR28),
    ]


async def test_yahoo_horizon_asks_only_for_expirations_within_it(replay: ReplayServer) -> None:
    yahoo_session(replay, "crumb-1")
    replay.expect(OPTIONS, fixture("yahoo", "options.json"))
    chain = await chain_of(vendor(YahooProvider, replay.url), until=date(2025, 3, 27))
    assert {q.expiration for q in chain} == {MAR21}
    assert paths(replay).count(OPTIONS) == 1


async def test_yahoo_expirations_beyond_max_pages_are_refused(replay: ReplayServer) -> None:
    yahoo_session(replay, "crumb-1")
    replay.expect(OPTIONS, fixture("yahoo", "options.json"))
    p = vendor(YahooProvider, replay.url)
    p.max_pages = 1  # type: ignore[misc]
    with pytest.raises(BadPayload, match="more than 1 requests"):
        await chain_of(p)
    assert paths(replay).count(OPTIONS) == 1


def test_yahoo_row_without_strike_is_kept_for_the_pricing_layer_to_drop() -> None:
    good, bad = (
        vendor(YahooProvider)
        .parse_chain(fixture("yahoo", "options_missing_strike.json"), symbol="AAPL")
        .quotes
    )
    assert good.strike == 230.0
    assert (bad.contract, bad.strike, bad.expiration, bad.open_interest) == (
        "AAPL250321C00235000",
        MISSING_STRIKE,
        MAR21,  # from the block's expirationDate
        None,
    )
    assert (bad.bid, bad.ask) == (1.5, 1.55)


# -- Polygon ------------------------------------------------------------------------------


async def test_polygon_chain_pages_by_next_url_with_ns_times(replay: ReplayServer) -> None:
    path = "/v3/snapshot/options/AAPL"
    replay.expect(path, fixture("polygon", "options_chain_page1.json"))
    replay.expect(path, fixture("polygon", "options_chain_page2.json"))
    call, put = await chain_of(vendor(PolygonProvider, replay.url))
    # The next_url (https://api.polygon.io/...) is followed on the configured host.
    assert paths(replay) == [path, path]
    assert [r.params for r in replay.requests] == [
        {"limit": "250"},
        {"cursor": "YXA9MSZhcz0mbGltaXQ9MSZzb3J0PXRpY2tlcg"},
    ]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in replay.requests)
    assert (call.contract, put.contract) == ("AAPL250321C00230000", "AAPL250321P00225000")  # no "O:"
    # last_quote.last_updated 1741636799812345678 ns, cut to microseconds exactly.
    assert call.ts == put.ts == datetime(2025, 3, 10, 19, 59, 59, 812345, tzinfo=UTC)
    assert (call.bid, call.ask, call.last, call.volume, call.open_interest) == (
        3.9,
        4.05,
        4.0,
        1532.0,
        8133.0,
    )
    assert (put.strike, put.expiration, put.implied_volatility) == (225.0, MAR21, 0.3311)
    assert call.underlying_price == put.underlying_price == 227.48


async def test_polygon_horizon_is_a_query_filter(replay: ReplayServer) -> None:
    replay.expect("/v3/snapshot/options/AAPL", fixture("polygon", "options_chain_page2.json"))
    await chain_of(vendor(PolygonProvider, replay.url), until=MAR28)
    assert replay.requests[0].params == {"limit": "250", "expiration_date.lte": "2025-03-28"}


def test_polygon_row_without_strike_is_kept_for_the_pricing_layer_to_drop() -> None:
    page = vendor(PolygonProvider).parse_options(
        fixture("polygon", "options_chain_missing_strike.json"), symbol="AAPL"
    )
    good, bad = page.items
    assert good.strike == 230.0 and page.next is None
    assert (bad.contract, bad.strike, bad.open_interest) == ("AAPL250321C00235000", 0.0, 4021.0)


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        (YahooProvider, "yahoo/options_missing_strike.json"),
        (PolygonProvider, "polygon/options_chain_missing_strike.json"),
    ],
)
def test_pricing_layer_drops_and_counts_the_row_without_strike(cls: type[HttpProvider], name: str) -> None:
    quotes = vendor(cls).parse_options(fixture(*name.split("/")), symbol="AAPL").items
    good, reasons = validate_quotes(quotes, "AAPL")
    assert [q.contract for q in good] == ["AAPL250321C00230000"]
    assert reasons == {"missing_strike": 1}


# -- Alpaca -------------------------------------------------------------------------------


def test_alpaca_offers_option_chains() -> None:
    assert Capability.OPTIONS_CHAIN in AlpacaProvider.capabilities


async def test_alpaca_chain_pages_by_token_without_open_interest(replay: ReplayServer) -> None:
    path = "/v1beta1/options/snapshots/AAPL"
    replay.expect(path, fixture("alpaca", "option_chain_page1.json"))
    replay.expect(path, fixture("alpaca", "option_chain_page2.json"))
    call, put = await chain_of(vendor(AlpacaProvider, replay.url), MAR21)
    first = {"feed": "indicative", "limit": "1000", "expiration_date": "2025-03-21"}
    # The next page is the same query with the token.
    assert [r.params for r in replay.requests] == [
        first,
        {**first, "page_token": "QUFQTDI1MDMyMVAwMDIyNTAwMA=="},
    ]
    for r in replay.requests:
        assert (r.headers["apca-api-key-id"], r.headers["apca-api-secret-key"]) == (KEY, SECRET)
    assert (call.contract, call.expiration, call.strike, call.right) == (
        "AAPL250321C00230000",
        MAR21,
        230.0,
        OptionRight.CALL,
    )
    assert (call.bid, call.ask, call.last, call.volume, call.implied_volatility) == (
        3.9,
        4.05,
        4.0,
        1532.0,
        0.3566,
    )
    assert call.ts == datetime(2025, 3, 10, 19, 59, 59, 812345, tzinfo=UTC)  # RFC-3339 ns, cut to µs
    assert (put.strike, put.right, put.last, put.volume) == (225.0, OptionRight.PUT, None, None)
    assert call.open_interest is None and put.open_interest is None  # Alpaca gives none
    assert call.underlying_price is None


async def test_alpaca_horizon_is_a_query_filter(replay: ReplayServer) -> None:
    replay.expect("/v1beta1/options/snapshots/AAPL", fixture("alpaca", "option_chain_page2.json"))
    await chain_of(vendor(AlpacaProvider, replay.url), until=MAR28)
    assert replay.requests[0].params == {
        "feed": "indicative",
        "limit": "1000",
        "expiration_date_lte": "2025-03-28",
    }


def test_alpaca_key_that_is_no_occ_symbol_is_bad_payload() -> None:
    with pytest.raises(BadPayload, match="not an OCC option symbol"):
        vendor(AlpacaProvider).parse_options(fixture("alpaca", "option_chain_bad_symbol.json"), symbol="AAPL")


# -- keys stay out of URLs and errors -------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "path"),
    [(PolygonProvider, "/v3/snapshot/options/AAPL"), (AlpacaProvider, "/v1beta1/options/snapshots/AAPL")],
)
async def test_refused_chain_is_auth_error_without_the_keys(
    replay: ReplayServer, cls: type[HttpProvider], path: str
) -> None:
    secrets = list(KEYS[cls.name].values())
    replay.expect(path, f'{{"message": "invalid key {" / ".join(secrets)}"}}', status=401)
    with pytest.raises(AuthError) as info:
        await chain_of(vendor(cls, replay.url))
    for secret in secrets:
        assert secret not in str(info.value)
        assert all(secret not in r.path and secret not in str(r.params) for r in replay.requests)


# -- against the sim-server ---------------------------------------------------------------

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)  # a Monday session


def terms(chain: list[OptionQuote]) -> list[tuple[object, ...]]:
    return sorted((q.contract, q.expiration, q.strike, q.right.value, q.bid, q.ask) for q in chain)


@pytest.mark.parametrize("cls", [YahooProvider, PolygonProvider, AlpacaProvider], ids=lambda c: c.name)
async def test_sim_roundtrip_gives_the_sim_chain(cls: type[HttpProvider]) -> None:
    until = date(2025, 4, 30)  # weeklies and the April monthly: several expirations, several pages
    truth = [q for q in sim_option_chain(SimMarket(seed=42), "AAPL", NOW) if q.expiration <= until]
    with sim_app(cls.name, NOW) as url:
        p = vendor(cls, url)
        p.limits = []  # the sim-server does not throttle; Polygon's 5/minute would take minutes
        chain = await chain_of(p, until=until)
    assert len({q.expiration for q in truth}) > 2 and len(truth) > 250  # more than one Polygon page
    assert terms(chain) == terms(truth)
    assert {q.provider for q in chain} == {cls.name}
    spot = truth[0].underlying_price
    assert {q.underlying_price for q in chain} == ({None} if cls is AlpacaProvider else {spot})


async def test_sim_yahoo_renews_an_expired_crumb_once_for_concurrent_calls() -> None:
    with sim_app("yahoo", NOW) as url:
        p = vendor(YahooProvider, url)
        try:
            first = await p.fetch_options_chain("AAPL", MAR21)
            async with httpx.AsyncClient() as admin:
                issued = (await admin.post(f"{url}/__sim__/yahoo/expire-crumb")).json()["issued"]
                chains = await asyncio.gather(*(p.fetch_options_chain("AAPL", MAR21) for _ in range(3)))
                after = (await admin.post(f"{url}/__sim__/yahoo/expire-crumb")).json()["issued"]
        finally:
            await p.aclose()
    assert issued == 1 and after == 2  # one renewal for the three calls refused together
    assert all(terms(c) == terms(first) for c in chains) and first
