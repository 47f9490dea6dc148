"""Alpaca quirks: the key-id/secret header pair, RFC-3339 ranges from midnight ET for daily
bars, ``next_page_token`` paging, the rate-limit reset header, snapshots as quotes. The
shared contract is in ``test_contract.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mds.domain.models import Interval
from mds.errors import RateLimited
from mds.providers.alpaca import AlpacaProvider
from mds.providers.sim.market import ground_truth
from tests.contract.vendors.harness import KEY, SECRET, ReplayServer, fetch_bars, fixture, vendor
from tests.helpers import rows, utc

BARS = "/v2/stocks/AAPL/bars"


def test_declared_limits_and_capabilities() -> None:
    assert AlpacaProvider.default_limits == ("200/minute",)
    assert AlpacaProvider.adjusted is False
    assert AlpacaProvider.default_base_url == "https://data.alpaca.markets"
    assert vendor(AlpacaProvider).configured


async def test_1m_request_and_key_headers(replay: ReplayServer) -> None:
    replay.expect(BARS, fixture("alpaca", "bars_1m_2025-03-10.json"))
    start, end = utc("2025-03-10T13:00:00"), utc("2025-03-10T20:00:00")
    assert len(await fetch_bars(AlpacaProvider, replay.url, Interval.M1, start, end)) == 3
    seen = replay.requests[0]
    assert seen.params == {
        "timeframe": "1Min",
        "start": "2025-03-10T13:00:00Z",
        "end": "2025-03-10T20:00:00Z",
        "limit": "10000",
        "adjustment": "raw",
        "feed": "iex",
        "sort": "asc",
    }
    assert (seen.headers["apca-api-key-id"], seen.headers["apca-api-secret-key"]) == (KEY, SECRET)


async def test_daily_asked_from_midnight_et(replay: ReplayServer) -> None:
    replay.expect(BARS, fixture("alpaca", "bars_1d_2025-03.json"))
    bars = await fetch_bars(
        AlpacaProvider, replay.url, Interval.D1, utc("2025-03-06T14:00:00"), utc("2025-03-11T00:00:00")
    )
    assert len(bars) == 3
    params = replay.requests[0].params
    # Asked from midnight ET of the first date, so the midnight-stamped bar is in range.
    assert (params["timeframe"], params["start"], params["end"]) == (
        "1Day",
        "2025-03-06T05:00:00Z",
        "2025-03-11T00:00:00Z",
    )


async def test_follows_next_page_token(replay: ReplayServer) -> None:
    replay.expect(BARS, fixture("alpaca", "bars_1m_page1.json"))
    replay.expect(BARS, fixture("alpaca", "bars_1m_page2.json"))
    bars = await fetch_bars(
        AlpacaProvider, replay.url, Interval.M1, utc("2025-03-10T13:30:00"), utc("2025-03-10T20:00:00")
    )
    assert [b.ts for b in bars] == [
        utc("2025-03-10T13:30:00"),
        utc("2025-03-10T13:31:00"),
        utc("2025-03-10T13:32:00"),
    ]
    first, second = replay.requests
    assert "page_token" not in first.params
    assert second.params == {
        **first.params,
        "page_token": "QUFQTHxNfDIwMjUtMDMtMTBUMTM6MzI6MDAuMDAwMDAwMDAwWg==",
    }
    assert second.headers["apca-api-key-id"] == KEY


async def test_throttled_retry_after_from_ratelimit_reset(replay: ReplayServer) -> None:
    reset = int(datetime.now(UTC).timestamp()) + 20
    replay.expect(
        BARS,
        fixture("alpaca", "error_rate_limit.json"),
        status=429,
        headers={"X-RateLimit-Reset": str(reset)},
    )
    with pytest.raises(RateLimited) as info:
        await fetch_bars(
            AlpacaProvider, replay.url, Interval.M1, utc("2025-03-10T13:30:00"), utc("2025-03-10T20:00:00")
        )
    assert 15.0 <= info.value.retry_after <= 21.0


async def test_quotes_from_snapshots(replay: ReplayServer) -> None:
    replay.expect("/v2/stocks/snapshots", fixture("alpaca", "snapshots.json"))
    p = vendor(AlpacaProvider, replay.url)
    try:
        quotes = await p.fetch_quotes(["AAPL", "MSFT", "ZZZZ"])
    finally:
        await p.aclose()
    (seen,) = replay.requests
    assert seen.params == {"symbols": "AAPL,MSFT,ZZZZ", "feed": "iex"}
    aapl, msft = quotes  # ZZZZ is not in the answer
    assert (aapl.symbol, aapl.bid, aapl.ask, aapl.last, aapl.bid_size, aapl.ask_size, aapl.provider) == (
        "AAPL",
        227.46,
        227.5,
        227.48,
        5.0,
        3.0,
        "alpaca",
    )
    assert aapl.ts == datetime(2025, 3, 10, 19, 59, 59, 851613, tzinfo=UTC)  # nanoseconds cut
    assert (msft.symbol, msft.last, msft.bid) == ("MSFT", 380.16, 380.1)


# -- against the sim-server ---------------------------------------------------------------


async def test_sim_pages_long_ranges(sim_server) -> None:  # type: ignore[no-untyped-def]
    server = sim_server("alpaca")
    start, end = utc("2025-02-24T00:00:00"), utc("2025-03-15T00:00:00")  # 15 sessions > one page
    bars = await fetch_bars(AlpacaProvider, server.url, Interval.M1, start, end)
    assert len(bars) == 15 * 390
    assert rows(bars) == rows(ground_truth("AAPL", Interval.M1, start, end))
