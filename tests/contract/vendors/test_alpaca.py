"""Alpaca adapter against canned Alpaca responses and against `mds sim-server --format alpaca`."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Interval
from mds.errors import AuthError, BadPayload, NoData, NotEntitled, ProviderError, RateLimited, Unavailable
from mds.providers.alpaca import AlpacaProvider
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.market import ground_truth
from tests.contract.vendors.harness import fixture

BARS = "/v2/stocks/AAPL/bars"
KEY_ID, SECRET = "test-key", "test-secret"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make(url: str) -> AlpacaProvider:
    settings = load_settings(
        {"ALPACA_API_KEY_ID": KEY_ID, "ALPACA_API_SECRET_KEY": SECRET, "ALPACA_BASE_URL": url}
    )
    return AlpacaProvider(settings=settings, calendar=MarketCalendar(), limiter=RateLimiter())


def rows(bars):  # type: ignore[no-untyped-def]
    return [(b.ts, *b.values()) for b in bars]


async def fetch(url: str, interval: Interval, start: str, end: str):  # type: ignore[no-untyped-def]
    p = make(url)
    try:
        return await p.fetch_bars("AAPL", interval, utc(start), utc(end))
    finally:
        await p.aclose()


def test_declared_limits_and_capabilities() -> None:
    assert AlpacaProvider.default_limits == ("200/minute",)
    assert AlpacaProvider.adjusted is False
    assert AlpacaProvider.default_base_url == "https://data.alpaca.markets"
    assert make("http://127.0.0.1:1").configured


async def test_1m_first_edt_session_drops_premarket_and_builds_request(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(BARS, fixture("alpaca", "bars_1m_2025-03-10.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-03-10T13:00:00", "2025-03-10T20:00:00")
    # 13:29Z (09:29 EDT) is a pre-market IEX bar: not on the regular-session grid.
    assert rows(bars) == [
        (utc("2025-03-10T13:30:00"), 235.54, 236.16, 234.62, 234.88, 1802355),
        (utc("2025-03-10T13:31:00"), 234.87, 235.0, 234.13, 234.25, 452183),
        (utc("2025-03-10T13:32:00"), 234.26, 234.6, 234.01, 234.5, 301224),
    ]
    assert {(b.provider, b.adjusted, b.symbol, b.interval) for b in bars} == {
        ("alpaca", False, "AAPL", Interval.M1)
    }
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
    assert (seen.headers["apca-api-key-id"], seen.headers["apca-api-secret-key"]) == (KEY_ID, SECRET)


async def test_1m_last_est_session(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(BARS, fixture("alpaca", "bars_1m_2025-03-07.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-03-07T14:30:00", "2025-03-07T21:00:00")
    assert [b.ts for b in bars] == [utc("2025-03-07T14:30:00"), utc("2025-03-07T14:31:00")]


async def test_1m_early_close_drops_after_close(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(BARS, fixture("alpaca", "bars_1m_2025-11-28.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-11-28T14:30:00", "2025-11-28T21:00:00")
    assert [b.ts for b in bars] == [utc("2025-11-28T17:58:00"), utc("2025-11-28T17:59:00")]
    assert MarketCalendar().session_on(date(2025, 11, 28)).close == utc("2025-11-28T18:00:00")  # type: ignore[union-attr]


async def test_daily_midnight_et_stamps_become_session_opens(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(BARS, fixture("alpaca", "bars_1d_2025-03.json"))
    bars = await fetch(replay.url, Interval.D1, "2025-03-06T14:00:00", "2025-03-11T00:00:00")
    assert rows(bars) == [
        (utc("2025-03-06T14:30:00"), 234.44, 237.06, 233.32, 235.33, 45170400),
        (utc("2025-03-07T14:30:00"), 235.11, 241.37, 234.76, 239.07, 46273600),
        (utc("2025-03-10T13:30:00"), 235.54, 236.16, 224.22, 227.48, 72071200),  # first EDT session
    ]
    params = replay.requests[0].params
    # Asked from midnight ET of the first date, so the midnight-stamped bar is in range.
    assert (params["timeframe"], params["start"], params["end"]) == (
        "1Day",
        "2025-03-06T05:00:00Z",
        "2025-03-11T00:00:00Z",
    )


async def test_follows_next_page_token(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(BARS, fixture("alpaca", "bars_1m_page1.json"))
    replay.expect(BARS, fixture("alpaca", "bars_1m_page2.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
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
    assert second.headers["apca-api-key-id"] == KEY_ID


async def test_null_bars_is_an_empty_list(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(BARS, fixture("alpaca", "bars_empty.json"))
    assert await fetch(replay.url, Interval.M1, "2025-03-08T00:00:00", "2025-03-09T00:00:00") == []


async def test_1h_is_not_offered(replay) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoData) as info:
        await fetch(replay.url, Interval.H1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert info.value.code == "unsupported"


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        ("error_unauthorized.json", 401, AuthError),
        ("error_forbidden.json", 403, AuthError),
        ("error_sip_subscription.json", 403, NotEntitled),
        ("error_rate_limit.json", 429, RateLimited),
    ],
)
async def test_error_statuses(replay, name: str, status: int, error: type[ProviderError]) -> None:  # type: ignore[no-untyped-def]
    replay.expect(BARS, fixture("alpaca", name), status=status)
    with pytest.raises(error) as info:
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert KEY_ID not in str(info.value) and SECRET not in str(info.value)
    if error is RateLimited:
        assert info.value.retry_after == 60.0  # type: ignore[attr-defined]


async def test_throttled_retry_after_from_ratelimit_reset(replay) -> None:  # type: ignore[no-untyped-def]
    reset = int(datetime.now(UTC).timestamp()) + 20
    replay.expect(
        BARS,
        fixture("alpaca", "error_rate_limit.json"),
        status=429,
        headers={"X-RateLimit-Reset": str(reset)},
    )
    with pytest.raises(RateLimited) as info:
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert 15.0 <= info.value.retry_after <= 21.0


async def test_server_error_is_unavailable(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(BARS, '{"message":"internal server error"}', status=500)
    with pytest.raises(Unavailable):
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")


@pytest.mark.parametrize(
    "body",
    [
        b"<html>upstream connect error</html>",
        b'{"bars":[{"t":"2025-03-10T13:30:00Z","o":1.0}],"next_page_token":null}',
        b'{"bars":[{"t":"2025-03-10T13:30:00Z","o":1.0,"h":1.0,"l":1.0,"c":null,"v":1}]}',
        fixture("alpaca", "bars_high_below_low.json"),
    ],
)
async def test_malformed(replay, body: bytes) -> None:  # type: ignore[no-untyped-def]
    replay.expect(BARS, body)
    with pytest.raises(BadPayload):
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")


async def test_quotes_from_snapshots(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect("/v2/stocks/snapshots", fixture("alpaca", "snapshots.json"))
    p = make(replay.url)
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
    p = make(server.url)
    try:
        bars = await p.fetch_bars("AAPL", Interval.M1, start, end)
    finally:
        await p.aclose()
    assert len(bars) == 15 * 390
    assert rows(bars) == rows(ground_truth("AAPL", Interval.M1, start, end))
