"""Yahoo quirks: daily asked by whole exchange dates, 1m ranges cut into 7-day windows,
quotes with 0 bid/ask, option chains. The shared contract is in ``test_contract.py``."""

from __future__ import annotations

from datetime import UTC, date, datetime

from mds.domain.models import Interval, OptionRight
from mds.providers.sim.market import ground_truth
from mds.providers.yahoo import YahooProvider
from tests.contract.vendors.harness import ReplayServer, fetch_bars, fixture, vendor
from tests.helpers import rows, utc

CHART = "/v8/finance/chart/AAPL"


async def test_daily_request_selects_whole_exchange_dates(replay: ReplayServer) -> None:
    replay.expect(CHART, fixture("yahoo", "chart_1d.json"))
    bars = await fetch_bars(
        YahooProvider, replay.url, Interval.D1, utc("2025-03-06T00:00:00"), utc("2025-03-11T00:00:00")
    )
    assert len(bars) == 3
    seen = replay.requests[0]
    assert seen.path == CHART
    assert seen.params == {
        "period1": str(int(utc("2025-03-05T00:00:00").timestamp())),  # NY date of start, 00:00Z
        "period2": str(int(utc("2025-03-11T00:00:00").timestamp())),
        "interval": "1d",
        "includePrePost": "false",
        "events": "div,splits",
    }


async def test_1m_range_over_7_days_is_windowed(replay: ReplayServer) -> None:
    replay.expect(CHART, fixture("yahoo", "chart_1m_2025-03-07.json"))
    replay.expect(CHART, fixture("yahoo", "chart_1m_2025-03-14.json"))
    start, end = utc("2025-03-07T00:00:00"), utc("2025-03-15T00:00:00")
    bars = await fetch_bars(YahooProvider, replay.url, Interval.M1, start, end)
    assert [b.ts for b in bars] == [
        utc("2025-03-07T14:30:00"),
        utc("2025-03-07T14:31:00"),
        utc("2025-03-14T13:30:00"),
    ]
    windows = [(r.params["period1"], r.params["period2"]) for r in replay.requests]
    mid = str(int(utc("2025-03-14T00:00:00").timestamp()))
    assert windows == [(str(int(start.timestamp())), mid), (mid, str(int(end.timestamp())))]
    assert all(r.params["interval"] == "1m" for r in replay.requests)


async def test_quotes(replay: ReplayServer) -> None:
    replay.expect("/v7/finance/quote", fixture("yahoo", "quote.json"))
    p = vendor(YahooProvider, replay.url)
    try:
        quotes = await p.fetch_quotes(["AAPL", "MSFT"])
    finally:
        await p.aclose()
    assert replay.requests[0].params == {"symbols": "AAPL,MSFT"}
    aapl, msft = quotes
    assert (aapl.symbol, aapl.bid, aapl.ask, aapl.last, aapl.bid_size, aapl.ask_size) == (
        "AAPL",
        227.4,
        227.55,
        227.48,
        3.0,
        4.0,
    )
    assert aapl.ts == utc("2025-03-10T20:00:00") and aapl.provider == "yahoo"
    assert (msft.bid, msft.ask, msft.last) == (None, None, 380.16)  # 0 bid/ask: no book


async def test_options(replay: ReplayServer) -> None:
    # The session handshake comes first (see test_option_chains.py for the crumb's rules).
    replay.expect("/", "", status=404, headers={"set-cookie": "A3=abc; Path=/"})
    replay.expect("/v1/test/getcrumb", "crumb-1", content_type="text/plain")
    replay.expect("/v7/finance/options/AAPL", fixture("yahoo", "options.json"))
    p = vendor(YahooProvider, replay.url)
    try:
        chain = await p.fetch_options_chain("AAPL", date(2025, 3, 21))
    finally:
        await p.aclose()
    assert replay.requests[-1].params == {
        "date": str(int(utc("2025-03-21T00:00:00").timestamp())),
        "crumb": "crumb-1",
    }
    call, put = chain
    assert (call.contract, call.right, call.strike, call.expiration) == (
        "AAPL250321C00230000",
        OptionRight.CALL,
        230.0,
        date(2025, 3, 21),
    )
    assert (call.bid, call.ask, call.last, call.volume, call.open_interest, call.implied_volatility) == (
        3.1,
        3.2,
        3.15,
        48211.0,
        31502.0,
        0.3625,
    )
    assert put.right is OptionRight.PUT and put.ts == datetime.fromtimestamp(1741636798, UTC)


# -- against the sim-server ---------------------------------------------------------------


async def test_sim_1m_over_8_days_is_windowed(sim_server) -> None:  # type: ignore[no-untyped-def]
    server = sim_server("yahoo")  # refuses 1m windows over 8 days, like Yahoo
    start, end = utc("2025-03-03T00:00:00"), utc("2025-03-15T00:00:00")
    bars = await fetch_bars(YahooProvider, server.url, Interval.M1, start, end)
    assert rows(bars) == rows(ground_truth("AAPL", Interval.M1, start, end))
