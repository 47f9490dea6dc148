"""Finnhub adapter against canned Finnhub responses and against `mds sim-server --format finnhub`."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Interval
from mds.errors import AuthError, BadPayload, NoData, NotEntitled, ProviderError, RateLimited
from mds.providers.finnhub import FinnhubProvider
from mds.providers.ratelimit import RateLimiter
from tests.contract.vendors.harness import fixture

CANDLE = "/api/v1/stock/candle"
KEY = "test-key"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make(url: str) -> FinnhubProvider:
    settings = load_settings({"FINNHUB_API_KEY": KEY, "FINNHUB_BASE_URL": url})
    return FinnhubProvider(settings=settings, calendar=MarketCalendar(), limiter=RateLimiter())


def rows(bars):  # type: ignore[no-untyped-def]
    return [(b.ts, *b.values()) for b in bars]


async def fetch(url: str, interval: Interval, start: str, end: str):  # type: ignore[no-untyped-def]
    p = make(url)
    try:
        return await p.fetch_bars("AAPL", interval, utc(start), utc(end))
    finally:
        await p.aclose()


async def test_1m_first_edt_session_and_request(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CANDLE, fixture("finnhub", "candle_1m_2025-03-10.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert rows(bars) == [
        (utc("2025-03-10T13:30:00"), 235.54, 236.16, 234.62, 234.88, 1802355),
        (utc("2025-03-10T13:31:00"), 234.87, 235.0, 234.13, 234.25, 452183),
    ]
    assert {(b.provider, b.adjusted) for b in bars} == {("finnhub", False)}
    seen = replay.requests[0]
    assert seen.params == {
        "symbol": "AAPL",
        "resolution": "1",
        "from": str(int(utc("2025-03-10T13:30:00").timestamp())),
        "to": str(int(utc("2025-03-10T20:00:00").timestamp())),
        "adjusted": "false",
    }
    assert seen.headers["x-finnhub-token"] == KEY  # the key is a header, never in the URL


async def test_1m_last_est_session(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CANDLE, fixture("finnhub", "candle_1m_2025-03-07.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-03-07T14:30:00", "2025-03-07T21:00:00")
    assert [b.ts for b in bars] == [utc("2025-03-07T14:30:00"), utc("2025-03-07T14:31:00")]


async def test_1m_early_close(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CANDLE, fixture("finnhub", "candle_1m_2025-11-28.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-11-28T14:30:00", "2025-11-28T21:00:00")
    assert [b.ts for b in bars] == [utc("2025-11-28T17:58:00"), utc("2025-11-28T17:59:00")]
    assert MarketCalendar().session_on(date(2025, 11, 28)).close == utc("2025-11-28T18:00:00")  # type: ignore[union-attr]


async def test_daily_midnight_utc_stamps_become_session_opens(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CANDLE, fixture("finnhub", "candle_1d.json"))
    bars = await fetch(replay.url, Interval.D1, "2025-03-06T00:00:00", "2025-03-11T00:00:00")
    assert rows(bars) == [
        (utc("2025-03-06T14:30:00"), 234.44, 237.06, 233.32, 235.33, 45170400),
        (utc("2025-03-07T14:30:00"), 235.11, 241.37, 234.76, 239.07, 46273600),
        (utc("2025-03-10T13:30:00"), 235.54, 236.16, 224.22, 227.48, 72071200),
    ]
    # Asked from 00:00 UTC of the first exchange date, so a 00:00Z-stamped candle is in range.
    assert replay.requests[0].params["from"] == str(int(utc("2025-03-05T00:00:00").timestamp()))
    assert replay.requests[0].params["resolution"] == "D"


async def test_no_data(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CANDLE, fixture("finnhub", "no_data.json"))
    with pytest.raises(NoData):
        await fetch(replay.url, Interval.M1, "2025-03-08T00:00:00", "2025-03-09T00:00:00")


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        ("error_invalid_key.json", 401, AuthError),
        ("error_no_access.json", 403, NotEntitled),
        ("error_limit.json", 429, RateLimited),
    ],
)
async def test_error_statuses(replay, name: str, status: int, error: type[ProviderError]) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CANDLE, fixture("finnhub", name), status=status)
    with pytest.raises(error) as info:
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert KEY not in str(info.value)
    assert info.value.counts_as_failure is (error is AuthError)


async def test_throttled_retry_after_from_ratelimit_reset(replay) -> None:  # type: ignore[no-untyped-def]
    # Finnhub sends X-Ratelimit-Reset (epoch s), no Retry-After; the server's Date header
    # (uvicorn sets it to now) gives the wait without reading the local clock.
    reset = int(datetime.now(UTC).timestamp()) + 17
    replay.expect(
        CANDLE, fixture("finnhub", "error_limit.json"), status=429, headers={"X-Ratelimit-Reset": str(reset)}
    )
    with pytest.raises(RateLimited) as info:
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert 15.0 <= info.value.retry_after <= 18.0


async def test_throttled_retry_after_header(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CANDLE, fixture("finnhub", "error_limit.json"), status=429, headers={"Retry-After": "5"})
    with pytest.raises(RateLimited) as info:
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert info.value.retry_after == 5.0


@pytest.mark.parametrize(
    "body", [b"not json", b'{"s":"ok","t":[1741613400]}', fixture("finnhub", "candle_high_below_low.json")]
)
async def test_malformed(replay, body: bytes) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CANDLE, body)
    with pytest.raises(BadPayload):
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")


async def test_quotes_one_call_per_symbol(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect("/api/v1/quote", fixture("finnhub", "quote.json"))
    replay.expect("/api/v1/quote", fixture("finnhub", "quote_unknown.json"))
    p = make(replay.url)
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


# -- against the sim-server ---------------------------------------------------------------
