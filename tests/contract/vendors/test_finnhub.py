"""Finnhub quirks: the key as a header, daily candles asked from midnight UTC, the rate-limit
reset header, one quote call per symbol. The shared contract is in ``test_contract.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mds.domain.models import Interval
from mds.errors import RateLimited
from mds.providers.finnhub import FinnhubProvider
from tests.contract.vendors.harness import KEY, ReplayServer, fetch_bars, fixture, vendor
from tests.helpers import utc

CANDLE = "/api/v1/stock/candle"


async def test_1m_request_and_key_header(replay: ReplayServer) -> None:
    replay.expect(CANDLE, fixture("finnhub", "candle_1m_2025-03-10.json"))
    start, end = utc("2025-03-10T13:30:00"), utc("2025-03-10T20:00:00")
    assert await fetch_bars(FinnhubProvider, replay.url, Interval.M1, start, end)
    seen = replay.requests[0]
    assert seen.params == {
        "symbol": "AAPL",
        "resolution": "1",
        "from": str(int(start.timestamp())),
        "to": str(int(end.timestamp())),
        "adjusted": "false",
    }
    assert seen.headers["x-finnhub-token"] == KEY  # the key is a header, never in the URL


async def test_daily_asked_from_midnight_utc_of_the_first_date(replay: ReplayServer) -> None:
    replay.expect(CANDLE, fixture("finnhub", "candle_1d.json"))
    bars = await fetch_bars(
        FinnhubProvider, replay.url, Interval.D1, utc("2025-03-06T00:00:00"), utc("2025-03-11T00:00:00")
    )
    assert len(bars) == 3
    # Asked from 00:00 UTC of the first exchange date, so a 00:00Z-stamped candle is in range.
    assert replay.requests[0].params["from"] == str(int(utc("2025-03-05T00:00:00").timestamp()))
    assert replay.requests[0].params["resolution"] == "D"


async def test_throttled_retry_after_from_ratelimit_reset(replay: ReplayServer) -> None:
    # Finnhub sends X-Ratelimit-Reset (epoch s), no Retry-After; the server's Date header
    # (uvicorn sets it to now) gives the wait without reading the local clock.
    reset = int(datetime.now(UTC).timestamp()) + 17
    replay.expect(
        CANDLE, fixture("finnhub", "error_limit.json"), status=429, headers={"X-Ratelimit-Reset": str(reset)}
    )
    with pytest.raises(RateLimited) as info:
        await fetch_bars(
            FinnhubProvider, replay.url, Interval.M1, utc("2025-03-10T13:30:00"), utc("2025-03-10T20:00:00")
        )
    assert 15.0 <= info.value.retry_after <= 18.0


async def test_quotes_one_call_per_symbol(replay: ReplayServer) -> None:
    replay.expect("/api/v1/quote", fixture("finnhub", "quote.json"))
    replay.expect("/api/v1/quote", fixture("finnhub", "quote_unknown.json"))
    p = vendor(FinnhubProvider, replay.url)
    try:
        quotes = await p.fetch_quotes(["AAPL", "ZZZZ"])
    finally:
        await p.aclose()
    assert [r.params for r in replay.requests] == [{"symbol": "AAPL"}, {"symbol": "ZZZZ"}]
    assert all(r.headers["x-finnhub-token"] == KEY for r in replay.requests)
    (q,) = quotes  # the unknown symbol's all-zero answer yields no quote
    assert (q.symbol, q.last, q.bid, q.ask, q.ts, q.provider) == (
        "AAPL",
        227.48,
        None,
        None,
        utc("2025-03-10T20:00:00"),
        "finnhub",
    )
