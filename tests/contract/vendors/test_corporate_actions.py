"""Corporate actions: each vendor's splits and dividends parsed from real-format fixtures
(see each fixture folder's SOURCE.md) to hand-written actions, over a loopback server.

Covers the request each adapter sends, Polygon's ``next_url`` paging, Yahoo's
split-adjusted dividends put back in their own basis, the range trim, error bodies mapped
to typed errors, and bad payloads refused. The sim-server round trips are at the end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Capability
from mds.errors import AuthError, BadPayload, NoData, NotEntitled, RateLimited
from mds.providers.alphavantage import AlphaVantageProvider
from mds.providers.fmp import FmpProvider
from mds.providers.http import HttpProvider
from mds.providers.polygon import PolygonProvider
from mds.providers.sim.actions import parse_sim_actions
from mds.providers.tiingo import TiingoProvider
from mds.providers.yahoo import YahooProvider
from tests.contract.vendors.harness import KEY, ReplayServer, fixture, vendor

ALL = date(1990, 1, 1), date(2030, 12, 31)
SPLIT, DIV = ActionType.SPLIT, ActionType.DIVIDEND


async def fetch(
    cls: type[HttpProvider], url: str, symbol: str, start: date, end: date
) -> list[CorporateAction]:
    p = vendor(cls, url)
    try:
        return await p.fetch_corporate_actions(symbol, start, end)
    finally:
        await p.aclose()


def terms(actions: list[CorporateAction]) -> list[tuple[object, ...]]:
    return [
        (a.type, a.ex_date, a.value, a.currency, a.declared_date, a.record_date, a.pay_date) for a in actions
    ]


@pytest.mark.parametrize(
    "cls", [PolygonProvider, YahooProvider, TiingoProvider, FmpProvider, AlphaVantageProvider]
)
def test_declares_the_capability(cls: type[HttpProvider]) -> None:
    assert Capability.CORPORATE_ACTIONS in cls.capabilities


# -- Polygon ----------------------------------------------------------------------------


async def test_polygon_pages_splits_and_reads_dividends(replay: ReplayServer) -> None:
    replay.expect("/v3/reference/splits", fixture("polygon", "splits_page1.json"))
    replay.expect("/v3/reference/splits", fixture("polygon", "splits_page2.json"))
    replay.expect("/v3/reference/dividends", fixture("polygon", "dividends.json"))
    actions = await fetch(PolygonProvider, replay.url, "AAPL", date(2010, 1, 1), date(2024, 12, 31))
    assert terms(actions) == [
        (DIV, date(2012, 8, 9), 2.65, "USD", date(2012, 7, 24), date(2012, 8, 13), date(2012, 8, 16)),
        (DIV, date(2012, 8, 9), 1.5, "USD", date(2012, 7, 24), None, None),  # SC: special cash
        (SPLIT, date(2014, 6, 9), 7.0, None, None, None, None),
        (DIV, date(2020, 8, 7), 0.82, "USD", date(2020, 7, 30), date(2020, 8, 10), date(2020, 8, 13)),
        (SPLIT, date(2020, 8, 31), 4.0, None, None, None, None),
        (DIV, date(2024, 11, 8), 0.25, "USD", date(2024, 10, 31), date(2024, 11, 11), date(2024, 11, 14)),
    ]
    assert {a.source for a in actions} == {"polygon"} and all(a.as_of is None for a in actions)
    first, second, dividends = replay.requests
    assert first.path == "/v3/reference/splits"
    assert first.params == {
        "ticker": "AAPL",
        "execution_date.gte": "2010-01-01",
        "execution_date.lte": "2024-12-31",
        "limit": "1000",
    }
    # The next page is next_url's path and cursor, asked of the configured host, key in the header.
    assert second.path == "/v3/reference/splits" and second.params == {
        "cursor": "YWN0aXZlPXRydWUmZGF0ZT0yMDIxLTA0LTI1JmxpbWl0PTEmb3JkZXI9YXNj"
    }
    assert second.headers["authorization"] == f"Bearer {KEY}"
    assert dividends.params["ex_dividend_date.gte"] == "2010-01-01"
    assert dividends.params["ex_dividend_date.lte"] == "2024-12-31"


async def test_polygon_trims_to_the_range(replay: ReplayServer) -> None:
    replay.expect("/v3/reference/splits", fixture("polygon", "splits_page2.json"))
    replay.expect("/v3/reference/dividends", fixture("polygon", "dividends.json"))
    actions = await fetch(PolygonProvider, replay.url, "AAPL", date(2020, 1, 1), date(2020, 12, 31))
    assert terms(actions) == [
        (DIV, date(2020, 8, 7), 0.82, "USD", date(2020, 7, 30), date(2020, 8, 10), date(2020, 8, 13))
    ]


async def test_polygon_errors(replay: ReplayServer) -> None:
    replay.expect("/v3/reference/splits", fixture("polygon", "error_unknown_key.json"), status=401)
    with pytest.raises(AuthError):
        await fetch(PolygonProvider, replay.url, "AAPL", *ALL)


async def test_polygon_dividend_without_amount_is_bad(replay: ReplayServer) -> None:
    replay.expect("/v3/reference/splits", fixture("polygon", "splits_page2.json"))
    replay.expect("/v3/reference/dividends", fixture("polygon", "dividends_missing_amount.json"))
    with pytest.raises(BadPayload):
        await fetch(PolygonProvider, replay.url, "AAPL", *ALL)


# -- Yahoo ------------------------------------------------------------------------------


async def test_yahoo_puts_dividends_back_in_their_own_basis(replay: ReplayServer) -> None:
    replay.expect("/v8/finance/chart/AAPL", fixture("yahoo", "chart_events.json"))
    actions = await fetch(YahooProvider, replay.url, "AAPL", date(2020, 5, 1), date(2020, 12, 31))
    # 0.205 before the 4:1 split of 2020-08-31 was 0.82 as paid; 0.205 after it is as paid.
    assert [(a.type, a.ex_date, a.currency) for a in actions] == [
        (DIV, date(2020, 5, 8), "USD"),
        (DIV, date(2020, 8, 7), "USD"),
        (SPLIT, date(2020, 8, 31), None),
        (DIV, date(2020, 11, 6), "USD"),
    ]
    assert [a.value for a in actions] == pytest.approx([0.82, 0.82, 4.0, 0.205], rel=1e-12)
    (seen,) = replay.requests
    assert seen.params["interval"] == "1d" and seen.params["events"] == "div,splits"
    assert seen.params["period1"] == str(int(datetime(2020, 5, 1, tzinfo=UTC).timestamp()))
    # Up to now, so the splits after the range are seen too.
    assert int(seen.params["period2"]) >= int(datetime.now(UTC).timestamp()) - 60


async def test_yahoo_range_trim_keeps_the_basis_of_later_splits(replay: ReplayServer) -> None:
    replay.expect("/v8/finance/chart/AAPL", fixture("yahoo", "chart_events.json"))
    actions = await fetch(YahooProvider, replay.url, "AAPL", date(2020, 8, 1), date(2020, 8, 10))
    assert [(a.type, a.ex_date) for a in actions] == [(DIV, date(2020, 8, 7))]
    assert actions[0].value == pytest.approx(0.82, rel=1e-12)


async def test_yahoo_errors(replay: ReplayServer) -> None:
    replay.expect("/v8/finance/chart/ZZZZ", fixture("yahoo", "chart_not_found.json"), status=404)
    with pytest.raises(NoData):
        await fetch(YahooProvider, replay.url, "ZZZZ", *ALL)
    replay.expect("/v8/finance/chart/AAPL", fixture("yahoo", "chart_events_bad_split.json"))
    with pytest.raises(BadPayload):
        await fetch(YahooProvider, replay.url, "AAPL", *ALL)


async def test_yahoo_chart_without_events_has_no_actions(replay: ReplayServer) -> None:
    replay.expect("/v8/finance/chart/AAPL", fixture("yahoo", "chart_1d.json"))
    assert await fetch(YahooProvider, replay.url, "AAPL", *ALL) == []


# -- Tiingo -----------------------------------------------------------------------------


async def test_tiingo_reads_split_factor_and_div_cash(replay: ReplayServer) -> None:
    replay.expect("/tiingo/daily/AAPL/prices", fixture("tiingo", "daily_actions_2020-08.json"))
    actions = await fetch(TiingoProvider, replay.url, "AAPL", date(2020, 8, 1), date(2020, 9, 30))
    assert terms(actions) == [
        (DIV, date(2020, 8, 7), 0.82, None, None, None, None),
        (SPLIT, date(2020, 8, 31), 4.0, None, None, None, None),
    ]
    (seen,) = replay.requests
    assert seen.params == {"startDate": "2020-08-01", "endDate": "2020-09-30", "format": "json"}
    assert seen.headers["authorization"] == f"Token {KEY}"


async def test_tiingo_errors(replay: ReplayServer) -> None:
    replay.expect("/tiingo/daily/ZZZZ/prices", fixture("tiingo", "error_ticker_not_found.json"), status=404)
    with pytest.raises(NoData):
        await fetch(TiingoProvider, replay.url, "ZZZZ", *ALL)
    replay.expect("/tiingo/daily/AAPL/prices", fixture("tiingo", "iex_no_volume.json"))
    with pytest.raises(BadPayload):  # rows without divCash/splitFactor
        await fetch(TiingoProvider, replay.url, "AAPL", *ALL)


# -- FMP --------------------------------------------------------------------------------


async def test_fmp_reads_raw_dividends_not_adjusted(replay: ReplayServer) -> None:
    replay.expect("/stable/splits", fixture("fmp", "splits.json"))
    replay.expect("/stable/dividends", fixture("fmp", "dividends.json"))
    actions = await fetch(FmpProvider, replay.url, "AAPL", *ALL)
    assert terms(actions) == [
        (DIV, date(1995, 5, 26), 0.12, None, None, None, date(1995, 6, 15)),
        (SPLIT, date(2005, 2, 28), 2.0, None, None, None, None),
        (SPLIT, date(2014, 6, 9), 7.0, None, None, None, None),
        (DIV, date(2020, 8, 7), 0.82, None, date(2020, 7, 30), date(2020, 8, 10), date(2020, 8, 13)),
        (SPLIT, date(2020, 8, 31), 4.0, None, None, None, None),
        (DIV, date(2025, 2, 10), 0.25, None, date(2025, 1, 30), date(2025, 2, 10), date(2025, 2, 13)),
    ]
    assert [r.params for r in replay.requests] == [{"symbol": "AAPL", "apikey": KEY}] * 2


async def test_fmp_errors(replay: ReplayServer) -> None:
    replay.expect("/stable/splits", fixture("fmp", "invalid_key.json"), status=401)
    replay.expect("/stable/splits", fixture("fmp", "limit_reach.json"), status=429)  # the next answer
    with pytest.raises(AuthError):
        await fetch(FmpProvider, replay.url, "AAPL", *ALL)
    with pytest.raises(RateLimited):
        await fetch(FmpProvider, replay.url, "AAPL", *ALL)


async def test_fmp_malformed_is_bad(replay: ReplayServer) -> None:
    replay.expect("/stable/splits", fixture("fmp", "malformed.json"))
    with pytest.raises(BadPayload):
        await fetch(FmpProvider, replay.url, "AAPL", *ALL)


# -- Alpha Vantage ------------------------------------------------------------------------


async def test_alphavantage_reads_both_lists(replay: ReplayServer) -> None:
    # Both calls go to /query: the queue answers them in order (SPLITS first).
    replay.expect("/query", fixture("alphavantage", "splits.json"))
    replay.expect("/query", fixture("alphavantage", "dividends.json"))
    actions = await fetch(AlphaVantageProvider, replay.url, "IBM", *ALL)
    assert terms(actions) == [
        (SPLIT, date(1997, 5, 28), 2.0, None, None, None, None),
        (DIV, date(1999, 5, 6), 0.24, None, None, None, None),  # "None" dates
        (SPLIT, date(1999, 5, 27), 2.0, None, None, None, None),
        (DIV, date(2025, 2, 10), 1.67, None, date(2025, 1, 28), date(2025, 2, 10), date(2025, 3, 10)),
    ]
    assert [r.params["function"] for r in replay.requests] == ["SPLITS", "DIVIDENDS"]
    assert {r.params["symbol"] for r in replay.requests} == {"IBM"}


async def test_alphavantage_information_messages_are_typed(replay: ReplayServer) -> None:
    replay.expect("/query", fixture("alphavantage", "dividends_premium.json"))
    with pytest.raises(NotEntitled):
        await fetch(AlphaVantageProvider, replay.url, "IBM", *ALL)


@pytest.mark.parametrize(
    ("name", "error"),
    [("throttle_daily.json", RateLimited), ("invalid_key.json", AuthError), ("empty_object.json", NoData)],
)
async def test_alphavantage_errors(replay: ReplayServer, name: str, error: type[Exception]) -> None:
    replay.expect("/query", fixture("alphavantage", name))
    with pytest.raises(error):
        await fetch(AlphaVantageProvider, replay.url, "IBM", *ALL)


async def test_alphavantage_malformed_is_bad(replay: ReplayServer) -> None:
    replay.expect("/query", fixture("alphavantage", "malformed.json"))
    with pytest.raises(BadPayload):
        await fetch(AlphaVantageProvider, replay.url, "IBM", *ALL)


# -- the sim-server speaking Polygon and Yahoo ----------------------------------------------

SIM_ENV = {
    "SIM_SPLITS": "AAPL=2020-08-31:4,AAPL=2014-06-09:7",
    "SIM_DIVIDENDS": "AAPL=2020-08-07:0.82,AAPL=2020-11-06:0.205,AAPL=2014-05-08:3.29",
}


def _expected(start: date, end: date) -> list[tuple[object, ...]]:
    known = parse_sim_actions(SIM_ENV["SIM_SPLITS"], SIM_ENV["SIM_DIVIDENDS"])["AAPL"]
    return [(a.type, a.ex_date, a.value) for a in known if start <= a.ex_date <= end]


@pytest.mark.parametrize("fmt", ["polygon", "yahoo"])
async def test_sim_server_actions_round_trip(sim_server, fmt: str) -> None:  # type: ignore[no-untyped-def]
    server = sim_server(fmt, SIM_ENV)
    cls = PolygonProvider if fmt == "polygon" else YahooProvider
    actions = await fetch(cls, server.url, "AAPL", date(2014, 1, 1), date(2020, 12, 31))
    got = [(a.type, a.ex_date, a.value) for a in actions]
    assert [g[:2] for g in got] == [e[:2] for e in _expected(date(2014, 1, 1), date(2020, 12, 31))]
    assert [g[2] for g in got] == pytest.approx(
        [e[2] for e in _expected(date(2014, 1, 1), date(2020, 12, 31))]
    )
    assert {a.source for a in actions} == {fmt}
    # A range with nothing in it, and another symbol, answer nothing.
    assert await fetch(cls, server.url, "AAPL", date(2016, 1, 1), date(2016, 12, 31)) == []
    assert await fetch(cls, server.url, "MSFT", date(2014, 1, 1), date(2020, 12, 31)) == []
