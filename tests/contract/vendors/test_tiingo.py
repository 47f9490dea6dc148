"""Tiingo adapter against canned Tiingo responses and against `mds sim-server --format tiingo`."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Capability, Interval
from mds.errors import AuthError, BadPayload, NoData, RateLimited, Unavailable
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.market import ground_truth
from mds.providers.tiingo import TiingoProvider
from tests.contract.vendors.harness import fixture

IEX = "/iex/AAPL/prices"
DAILY = "/tiingo/daily/AAPL/prices"
KEY = "test-key"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make(url: str) -> TiingoProvider:
    settings = load_settings({"TIINGO_API_KEY": KEY, "TIINGO_BASE_URL": url})
    return TiingoProvider(settings=settings, calendar=MarketCalendar(), limiter=RateLimiter())


def rows(bars):  # type: ignore[no-untyped-def]
    return [(b.ts, *b.values()) for b in bars]


async def fetch(url: str, interval: Interval, start: str, end: str):  # type: ignore[no-untyped-def]
    p = make(url)
    try:
        return await p.fetch_bars("AAPL", interval, utc(start), utc(end))
    finally:
        await p.aclose()


def test_declared_limits_and_capabilities() -> None:
    assert TiingoProvider.default_limits == ("50/hour", "1000/day")
    assert TiingoProvider.capabilities == frozenset({Capability.BARS_1M, Capability.EOD})
    assert TiingoProvider.adjusted is False


async def test_1m_first_edt_session_and_request(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(IEX, fixture("tiingo", "iex_1m_2025-03-10.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert rows(bars) == [
        (utc("2025-03-10T13:30:00"), 235.54, 236.16, 234.62, 234.88, 45058),
        (utc("2025-03-10T13:31:00"), 234.87, 235.0, 234.13, 234.25, 11304),
        (utc("2025-03-10T13:32:00"), 234.26, 234.6, 234.01, 234.5, 7530),
    ]
    assert {(b.provider, b.adjusted, b.symbol, b.interval) for b in bars} == {
        ("tiingo", False, "AAPL", Interval.M1)
    }
    seen = replay.requests[0]
    assert seen.params == {
        "startDate": "2025-03-10",
        "endDate": "2025-03-10",
        "resampleFreq": "1min",
        "columns": "open,high,low,close,volume",
        "afterHours": "false",
        "format": "json",
    }
    assert seen.headers["authorization"] == f"Token {KEY}"  # a header: never in the URL


async def test_1m_last_est_session(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(IEX, fixture("tiingo", "iex_1m_2025-03-07.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-03-07T14:30:00", "2025-03-07T21:00:00")
    assert [b.ts for b in bars] == [utc("2025-03-07T14:30:00"), utc("2025-03-07T14:31:00")]


async def test_1m_early_close(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(IEX, fixture("tiingo", "iex_1m_2025-11-28.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-11-28T14:30:00", "2025-11-28T21:00:00")
    assert [b.ts for b in bars] == [utc("2025-11-28T17:58:00"), utc("2025-11-28T17:59:00")]
    assert MarketCalendar().session_on(date(2025, 11, 28)).close == utc("2025-11-28T18:00:00")  # type: ignore[union-attr]


async def test_daily_reads_raw_fields_and_stamps_session_opens(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(DAILY, fixture("tiingo", "daily_2025-03.json"))
    bars = await fetch(replay.url, Interval.D1, "2025-03-06T00:00:00", "2025-03-11T00:00:00")
    assert rows(bars) == [  # raw open/high/low/close/volume, not the adj* fields
        (utc("2025-03-06T14:30:00"), 234.44, 237.06, 233.32, 235.33, 45170400),
        (utc("2025-03-07T14:30:00"), 235.11, 241.37, 234.76, 239.07, 46273600),
        (utc("2025-03-10T13:30:00"), 235.54, 236.16, 224.22, 227.48, 72071200),  # first EDT session
    ]
    assert replay.requests[0].params == {
        "startDate": "2025-03-05",  # 2025-03-06T00:00Z is still the 5th in New York
        "endDate": "2025-03-10",
        "resampleFreq": "daily",
        "format": "json",
    }


async def test_long_intraday_ranges_are_fetched_in_date_chunks(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(IEX, fixture("tiingo", "iex_1m_2025-02-14.json"))
    replay.expect(IEX, fixture("tiingo", "iex_1m_2025-03-10.json"))
    bars = await fetch(replay.url, Interval.M1, "2025-02-01T00:00:00", "2025-03-10T20:00:00")
    # 21 exchange-local days per request (at most ~15 sessions of 1m bars).
    assert [(r.params["startDate"], r.params["endDate"]) for r in replay.requests] == [
        ("2025-01-31", "2025-02-20"),
        ("2025-02-21", "2025-03-10"),
    ]
    assert [b.ts for b in bars] == [
        utc("2025-02-14T14:30:00"),
        utc("2025-03-10T13:30:00"),
        utc("2025-03-10T13:31:00"),
        utc("2025-03-10T13:32:00"),
    ]


async def test_empty_range_is_an_empty_list(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(IEX, fixture("tiingo", "empty.json"))
    assert await fetch(replay.url, Interval.M1, "2025-03-08T00:00:00", "2025-03-09T00:00:00") == []


async def test_unknown_ticker_is_no_data(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(DAILY, fixture("tiingo", "error_ticker_not_found.json"), status=404)
    with pytest.raises(NoData):
        await fetch(replay.url, Interval.D1, "2025-03-06T00:00:00", "2025-03-11T00:00:00")


async def test_1h_is_not_offered(replay) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoData) as info:
        await fetch(replay.url, Interval.H1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert info.value.code == "unsupported"


async def test_invalid_token_is_auth_error(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(IEX, fixture("tiingo", "error_invalid_token.json"), status=401)
    with pytest.raises(AuthError) as info:
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    ("status", "headers", "body", "wait"),
    [
        (200, {}, fixture("tiingo", "throttle_hourly.txt"), 3600.0),  # plain text with HTTP 200
        (429, {}, b'{"detail":"Request was throttled."}', 3600.0),
        (429, {"Retry-After": "30"}, b'{"detail":"Request was throttled."}', 30.0),
    ],
)
async def test_throttled(replay, status: int, headers: dict[str, str], body: bytes, wait: float) -> None:  # type: ignore[no-untyped-def]
    replay.expect(IEX, body, status=status, headers=headers, content_type="text/plain")
    with pytest.raises(RateLimited) as info:
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert info.value.retry_after == wait
    assert KEY not in str(info.value)


async def test_server_error_is_unavailable(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(IEX, '{"detail":"Server Error"}', status=503)
    with pytest.raises(Unavailable):
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")


@pytest.mark.parametrize(
    "body",
    [
        b"<html>nginx error</html>",
        b'{"unexpected": true}',
        fixture("tiingo", "iex_no_volume.json"),
        fixture("tiingo", "iex_high_below_low.json"),
        b'[{"date":"2025-03-10T13:30:00.000Z","close":null,"high":1,"low":1,"open":1,"volume":1}]',
    ],
)
async def test_malformed(replay, body: bytes) -> None:  # type: ignore[no-untyped-def]
    replay.expect(IEX, body)
    with pytest.raises(BadPayload):
        await fetch(replay.url, Interval.M1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")


# -- against the sim-server ---------------------------------------------------------------


async def test_sim_chunked_range_equals_ground_truth(sim_server) -> None:  # type: ignore[no-untyped-def]
    server = sim_server("tiingo")
    start, end = utc("2025-02-10T00:00:00"), utc("2025-03-15T00:00:00")  # two date chunks
    p = make(server.url)
    try:
        bars = await p.fetch_bars("AAPL", Interval.M1, start, end)
    finally:
        await p.aclose()
    assert rows(bars) == rows(ground_truth("AAPL", Interval.M1, start, end))
