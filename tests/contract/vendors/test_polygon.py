"""Polygon quirks: millisecond and exchange-date ranges in the path, a Bearer header,
``next_url`` paging kept on the configured host, snapshots as quotes, option chains. The
shared contract is in ``test_contract.py``."""

from __future__ import annotations

from datetime import UTC, date, datetime

from mds.domain.models import Interval, OptionRight
from mds.providers.polygon import PolygonProvider
from mds.providers.sim.market import ground_truth
from tests.contract.vendors.harness import KEY, ReplayServer, fetch_bars, fixture, vendor
from tests.helpers import rows, utc


def ms(text: str) -> int:
    return int(utc(text).timestamp() * 1000)


def aggs_path(span: str, lo: object, hi: object) -> str:
    return f"/v2/aggs/ticker/AAPL/range/{span}/{lo}/{hi}"


def m1_path(start: str, end: str) -> str:
    return aggs_path("1/minute", ms(start), ms(end) - 1)


def test_declared_limits_and_capabilities() -> None:
    assert PolygonProvider.default_limits == ("5/minute",)
    assert PolygonProvider.adjusted is False
    assert PolygonProvider.default_base_url == "https://api.polygon.io"


async def test_1m_request_by_milliseconds_with_bearer_key(replay: ReplayServer) -> None:
    start, end = "2025-03-10T13:00:00", "2025-03-10T20:00:00"
    replay.expect(m1_path(start, end), fixture("polygon", "aggs_1m_2025-03-10.json"))
    assert len(await fetch_bars(PolygonProvider, replay.url, Interval.M1, utc(start), utc(end))) == 3
    seen = replay.requests[0]
    assert seen.path == m1_path(start, end)  # inclusive millisecond bounds
    assert seen.params == {"adjusted": "false", "sort": "asc", "limit": "50000"}
    assert seen.headers["authorization"] == f"Bearer {KEY}"  # a header: the key is never in a URL


async def test_daily_request_by_exchange_dates(replay: ReplayServer) -> None:
    path = aggs_path("1/day", "2025-03-05", "2025-03-10")
    replay.expect(path, fixture("polygon", "aggs_1d_2025-03.json"))
    bars = await fetch_bars(
        PolygonProvider, replay.url, Interval.D1, utc("2025-03-06T00:00:00"), utc("2025-03-11T00:00:00")
    )
    assert len(bars) == 3 and replay.requests[0].path == path


async def test_follows_next_url_on_the_configured_host(replay: ReplayServer) -> None:
    start, end = "2025-03-10T13:30:00", "2025-03-10T20:00:00"
    replay.expect(m1_path(start, end), fixture("polygon", "aggs_1m_page1.json"))
    page2 = aggs_path("1/minute", ms("2025-03-10T13:32:00"), ms(end) - 1)
    replay.expect(page2, fixture("polygon", "aggs_1m_page2.json"))
    bars = await fetch_bars(PolygonProvider, replay.url, Interval.M1, utc(start), utc(end))
    assert [b.ts for b in bars] == [
        utc("2025-03-10T13:30:00"),
        utc("2025-03-10T13:31:00"),
        utc("2025-03-10T13:32:00"),
    ]
    assert [r.path for r in replay.requests] == [m1_path(start, end), page2]
    # The next_url's cursor is kept, and the key goes along again (as a header).
    assert replay.requests[1].params == {"cursor": "bGltaXQ9MiZzb3J0PWFzYw"}
    assert replay.requests[1].headers["authorization"] == f"Bearer {KEY}"


async def test_quotes_from_the_snapshot(replay: ReplayServer) -> None:
    replay.expect(
        "/v2/snapshot/locale/us/markets/stocks/tickers", fixture("polygon", "snapshot_tickers.json")
    )
    p = vendor(PolygonProvider, replay.url)
    try:
        quotes = await p.fetch_quotes(["AAPL", "MSFT"])
    finally:
        await p.aclose()
    (seen,) = replay.requests
    assert seen.params == {"tickers": "AAPL,MSFT"}
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    aapl, msft = quotes  # ZZZZ was not asked for
    assert (aapl.symbol, aapl.bid, aapl.ask, aapl.last, aapl.bid_size, aapl.ask_size, aapl.provider) == (
        "AAPL",
        227.46,
        227.5,
        227.48,
        5.0,
        3.0,
        "polygon",
    )
    assert aapl.ts == datetime(2025, 3, 10, 20, 0, 0, 123456, tzinfo=UTC)
    assert (msft.symbol, msft.last) == ("MSFT", 380.16)


async def test_option_chain_follows_pages(replay: ReplayServer) -> None:
    replay.expect("/v3/snapshot/options/AAPL", fixture("polygon", "options_chain_page1.json"))
    replay.expect("/v3/snapshot/options/AAPL", fixture("polygon", "options_chain_page2.json"))
    p = vendor(PolygonProvider, replay.url)
    try:
        chain = await p.fetch_options_chain("AAPL", date(2025, 3, 21))
    finally:
        await p.aclose()
    assert [r.params for r in replay.requests] == [
        {"limit": "250", "expiration_date": "2025-03-21"},
        {"cursor": "YXA9MSZhcz0mbGltaXQ9MSZzb3J0PXRpY2tlcg"},
    ]
    call, put = chain
    assert (call.contract, call.expiration, call.strike, call.right) == (
        "AAPL250321C00230000",
        date(2025, 3, 21),
        230.0,
        OptionRight.CALL,
    )
    assert (call.bid, call.ask, call.last, call.volume, call.open_interest, call.implied_volatility) == (
        3.9,
        4.05,
        4.0,
        1532.0,
        8133.0,
        0.357,
    )
    assert call.ts == datetime(2025, 3, 10, 19, 59, 59, 812345, tzinfo=UTC)
    assert (put.contract, put.right, put.underlying, put.provider) == (
        "AAPL250321P00225000",
        OptionRight.PUT,
        "AAPL",
        "polygon",
    )


# -- against the sim-server ---------------------------------------------------------------


async def test_sim_pages_long_ranges(sim_server) -> None:  # type: ignore[no-untyped-def]
    server = sim_server("polygon")
    start, end = utc("2025-02-24T00:00:00"), utc("2025-03-15T00:00:00")  # 15 sessions > one page
    bars = await fetch_bars(PolygonProvider, server.url, Interval.M1, start, end)
    assert len(bars) == 15 * 390
    assert rows(bars) == rows(ground_truth("AAPL", Interval.M1, start, end))
