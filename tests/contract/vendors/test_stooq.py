"""Stooq adapter against canned Stooq responses and against `mds sim-server --format stooq`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Interval
from mds.errors import AuthError, BadPayload, NoData, RateLimited
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.market import ground_truth
from mds.providers.stooq import StooqProvider, stooq_symbol
from tests.contract.vendors.harness import fixture

PATH = "/q/d/l/"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make(url: str) -> StooqProvider:
    settings = load_settings({"STOOQ_BASE_URL": url})
    return StooqProvider(settings=settings, calendar=MarketCalendar(), limiter=RateLimiter())


def rows(bars):  # type: ignore[no-untyped-def]
    return [(b.ts, *b.values()) for b in bars]


async def fetch(url: str, start: str, end: str, interval: Interval = Interval.D1):  # type: ignore[no-untyped-def]
    p = make(url)
    try:
        return await p.fetch_bars("AAPL", interval, utc(start), utc(end))
    finally:
        await p.aclose()


async def test_daily_dates_become_session_opens_across_dst(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(PATH, fixture("stooq", "aapl_d.csv"), content_type="text/csv")
    bars = await fetch(replay.url, "2025-03-06T00:00:00", "2025-03-11T00:00:00")
    assert rows(bars) == [
        (utc("2025-03-06T14:30:00"), 234.44, 237.06, 233.32, 235.33, 45170400),
        (utc("2025-03-07T14:30:00"), 235.11, 241.37, 234.76, 239.07, 46273600),  # last EST session
        (utc("2025-03-10T13:30:00"), 235.54, 236.16, 224.22, 227.48, 72071200),  # first EDT session
    ]
    assert {(b.provider, b.adjusted) for b in bars} == {("stooq", True)}
    # 00:00Z on the 6th is still the 5th in New York; the 11th 00:00Z end is exclusive.
    assert replay.requests[0].params == {"s": "aapl.us", "i": "d", "d1": "20250305", "d2": "20250310"}


async def test_early_close_day(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(PATH, fixture("stooq", "aapl_d_2025-11.csv"), content_type="text/csv")
    bars = await fetch(replay.url, "2025-11-26T00:00:00", "2025-11-29T00:00:00")
    assert [b.ts for b in bars] == [utc("2025-11-26T14:30:00"), utc("2025-11-28T14:30:00")]


async def test_no_data(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(PATH, fixture("stooq", "no_data.txt"), content_type="text/plain")
    with pytest.raises(NoData):
        await fetch(replay.url, "2025-03-08T00:00:00", "2025-03-09T00:00:00")


async def test_hits_limit_is_rate_limited(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(PATH, fixture("stooq", "hits_limit.txt"), content_type="text/plain")
    with pytest.raises(RateLimited) as info:
        await fetch(replay.url, "2025-03-06T00:00:00", "2025-03-11T00:00:00")
    assert info.value.retry_after == 3600.0


async def test_http_429_is_rate_limited(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(PATH, "slow down", status=429, headers={"Retry-After": "30"}, content_type="text/plain")
    with pytest.raises(RateLimited) as info:
        await fetch(replay.url, "2025-03-06T00:00:00", "2025-03-11T00:00:00")
    assert info.value.retry_after == 30.0


async def test_apikey_page_is_auth_error(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(PATH, fixture("stooq", "apikey_page.html"), content_type="text/html")
    with pytest.raises(AuthError):
        await fetch(replay.url, "2025-03-06T00:00:00", "2025-03-11T00:00:00")


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>checking your browser</body></html>",
        b"Date,Open,High,Low,Close,Volume\n2025-03-10,235.54,,224.22,227.48,72071200\n",
        b"Date,Open,High\n2025-03-10,1,2\n",
        fixture("stooq", "high_below_low.csv"),
    ],
)
async def test_malformed(replay, body: bytes) -> None:  # type: ignore[no-untyped-def]
    replay.expect(PATH, body, content_type="text/csv")
    with pytest.raises(BadPayload):
        await fetch(replay.url, "2025-03-06T00:00:00", "2025-03-11T00:00:00")


async def test_intraday_is_unsupported_without_a_call(replay) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoData) as info:
        await fetch(replay.url, "2025-03-10T13:30:00", "2025-03-10T20:00:00", Interval.M1)
    assert info.value.code == "unsupported" and replay.requests == []


def test_symbols() -> None:
    assert stooq_symbol("AAPL") == "aapl.us" and stooq_symbol("BRK.B") == "brk-b.us"


# -- against the sim-server ---------------------------------------------------------------


async def test_sim_early_close_month(sim_server) -> None:  # type: ignore[no-untyped-def]
    server = sim_server("stooq")
    start, end = utc("2025-11-01T00:00:00"), utc("2025-12-01T00:00:00")
    bars = await fetch(server.url, "2025-11-01T00:00:00", "2025-12-01T00:00:00")
    assert rows(bars) == rows(ground_truth("AAPL", Interval.D1, start, end))
