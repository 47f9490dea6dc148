"""Polygon adapter against canned Polygon responses and against `mds sim-server --format polygon`."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Interval, OptionRight
from mds.errors import AuthError, BadPayload, NoData, NotEntitled, ProviderError, RateLimited, Unavailable
from mds.providers.polygon import PolygonProvider
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.market import ground_truth
from tests.contract.vendors.harness import fixture

KEY = "test-key"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ms(text: str) -> int:
    return int(utc(text).timestamp() * 1000)


def aggs_path(span: str, lo: object, hi: object) -> str:
    return f"/v2/aggs/ticker/AAPL/range/{span}/{lo}/{hi}"


def m1_path(start: str, end: str) -> str:
    return aggs_path("1/minute", ms(start), ms(end) - 1)


def make(url: str) -> PolygonProvider:
    # Each test makes at most three calls, within the free tier's 5/minute.
    settings = load_settings({"POLYGON_API_KEY": KEY, "POLYGON_BASE_URL": url})
    return PolygonProvider(settings=settings, calendar=MarketCalendar(), limiter=RateLimiter())


def rows(bars):  # type: ignore[no-untyped-def]
    return [(b.ts, *b.values()) for b in bars]


async def fetch(url: str, interval: Interval, start: str, end: str):  # type: ignore[no-untyped-def]
    p = make(url)
    try:
        return await p.fetch_bars("AAPL", interval, utc(start), utc(end))
    finally:
        await p.aclose()


def test_declared_limits_and_capabilities() -> None:
    assert PolygonProvider.default_limits == ("5/minute",)
    assert PolygonProvider.adjusted is False
    assert PolygonProvider.default_base_url == "https://api.polygon.io"


async def test_1m_first_edt_session_drops_premarket_and_builds_request(replay) -> None:  # type: ignore[no-untyped-def]
    start, end = "2025-03-10T13:00:00", "2025-03-10T20:00:00"
    replay.expect(m1_path(start, end), fixture("polygon", "aggs_1m_2025-03-10.json"))
    bars = await fetch(replay.url, Interval.M1, start, end)
    # 13:29Z (09:29 EDT) is a pre-market bar: not on the regular-session grid.
    assert rows(bars) == [
        (utc("2025-03-10T13:30:00"), 235.54, 236.16, 234.62, 234.88, 1802355),
        (utc("2025-03-10T13:31:00"), 234.87, 235.0, 234.13, 234.25, 452183),
        (utc("2025-03-10T13:32:00"), 234.26, 234.6, 234.01, 234.5, 301224),
    ]
    assert {(b.provider, b.adjusted, b.symbol, b.interval) for b in bars} == {
        ("polygon", False, "AAPL", Interval.M1)
    }
    seen = replay.requests[0]
    assert seen.params == {"adjusted": "false", "sort": "asc", "limit": "50000"}
    assert seen.headers["authorization"] == f"Bearer {KEY}"  # a header: the key is never in a URL


async def test_1m_last_est_session(replay) -> None:  # type: ignore[no-untyped-def]
    start, end = "2025-03-07T14:30:00", "2025-03-07T21:00:00"
    replay.expect(m1_path(start, end), fixture("polygon", "aggs_1m_2025-03-07.json"))
    bars = await fetch(replay.url, Interval.M1, start, end)
    assert [b.ts for b in bars] == [utc("2025-03-07T14:30:00"), utc("2025-03-07T14:31:00")]


async def test_1m_early_close_drops_after_close(replay) -> None:  # type: ignore[no-untyped-def]
    start, end = "2025-11-28T14:30:00", "2025-11-28T21:00:00"
    replay.expect(m1_path(start, end), fixture("polygon", "aggs_1m_2025-11-28.json"))
    bars = await fetch(replay.url, Interval.M1, start, end)
    # The 18:00Z bar is after the 13:00 ET early close (post-market).
    assert [b.ts for b in bars] == [utc("2025-11-28T17:58:00"), utc("2025-11-28T17:59:00")]
    assert MarketCalendar().session_on(date(2025, 11, 28)).close == utc("2025-11-28T18:00:00")  # type: ignore[union-attr]


async def test_daily_midnight_et_stamps_become_session_opens(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(aggs_path("1/day", "2025-03-05", "2025-03-10"), fixture("polygon", "aggs_1d_2025-03.json"))
    bars = await fetch(replay.url, Interval.D1, "2025-03-06T00:00:00", "2025-03-11T00:00:00")
    assert rows(bars) == [
        (utc("2025-03-06T14:30:00"), 234.44, 237.06, 233.32, 235.33, 45170400),
        (utc("2025-03-07T14:30:00"), 235.11, 241.37, 234.76, 239.07, 46273600),
        (utc("2025-03-10T13:30:00"), 235.54, 236.16, 224.22, 227.48, 72071200),  # first EDT session
    ]
    assert {b.interval for b in bars} == {Interval.D1}


async def test_follows_next_url_on_the_configured_host(replay) -> None:  # type: ignore[no-untyped-def]
    start, end = "2025-03-10T13:30:00", "2025-03-10T20:00:00"
    replay.expect(m1_path(start, end), fixture("polygon", "aggs_1m_page1.json"))
    page2 = aggs_path("1/minute", ms("2025-03-10T13:32:00"), ms(end) - 1)
    replay.expect(page2, fixture("polygon", "aggs_1m_page2.json"))
    bars = await fetch(replay.url, Interval.M1, start, end)
    assert [b.ts for b in bars] == [
        utc("2025-03-10T13:30:00"),
        utc("2025-03-10T13:31:00"),
        utc("2025-03-10T13:32:00"),
    ]
    assert [r.path for r in replay.requests] == [m1_path(start, end), page2]
    # The next_url's cursor is kept, and the key goes along again (as a header).
    assert replay.requests[1].params == {"cursor": "bGltaXQ9MiZzb3J0PWFzYw"}
    assert replay.requests[1].headers["authorization"] == f"Bearer {KEY}"


async def test_empty_range_is_an_empty_list(replay) -> None:  # type: ignore[no-untyped-def]
    start, end = "2025-03-08T00:00:00", "2025-03-09T00:00:00"
    replay.expect(m1_path(start, end), fixture("polygon", "aggs_empty.json"))
    assert await fetch(replay.url, Interval.M1, start, end) == []


async def test_1h_is_not_offered(replay) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoData) as info:
        await fetch(replay.url, Interval.H1, "2025-03-10T13:30:00", "2025-03-10T20:00:00")
    assert info.value.code == "unsupported"
    assert replay.requests == []


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        ("error_unknown_key.json", 401, AuthError),
        ("error_not_authorized.json", 403, NotEntitled),
        ("error_rate_limit.json", 429, RateLimited),
    ],
)
async def test_error_statuses(replay, name: str, status: int, error: type[ProviderError]) -> None:  # type: ignore[no-untyped-def]
    start, end = "2025-03-10T13:30:00", "2025-03-10T20:00:00"
    replay.expect(m1_path(start, end), fixture("polygon", name), status=status)
    with pytest.raises(error) as info:
        await fetch(replay.url, Interval.M1, start, end)
    assert KEY not in str(info.value)
    if error is RateLimited:
        assert info.value.retry_after == 60.0  # type: ignore[attr-defined]


async def test_throttled_retry_after_header(replay) -> None:  # type: ignore[no-untyped-def]
    start, end = "2025-03-10T13:30:00", "2025-03-10T20:00:00"
    replay.expect(
        m1_path(start, end),
        fixture("polygon", "error_rate_limit.json"),
        status=429,
        headers={"Retry-After": "12"},
    )
    with pytest.raises(RateLimited) as info:
        await fetch(replay.url, Interval.M1, start, end)
    assert info.value.retry_after == 12.0


async def test_server_error_is_unavailable(replay) -> None:  # type: ignore[no-untyped-def]
    start, end = "2025-03-10T13:30:00", "2025-03-10T20:00:00"
    replay.expect(m1_path(start, end), '{"status":"ERROR","error":"Internal"}', status=502)
    with pytest.raises(Unavailable):
        await fetch(replay.url, Interval.M1, start, end)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"status":"OK","results":[{"t":1741613400000,"o":1.0}]}',
        fixture("polygon", "aggs_high_below_low.json"),
        fixture("polygon", "aggs_null_close.json"),
    ],
)
async def test_malformed(replay, body: bytes) -> None:  # type: ignore[no-untyped-def]
    start, end = "2025-03-10T13:30:00", "2025-03-10T20:00:00"
    replay.expect(m1_path(start, end), body)
    with pytest.raises(BadPayload) as info:
        await fetch(replay.url, Interval.M1, start, end)
    assert KEY not in str(info.value)


async def test_quotes_from_the_snapshot(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(
        "/v2/snapshot/locale/us/markets/stocks/tickers", fixture("polygon", "snapshot_tickers.json")
    )
    p = make(replay.url)
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


async def test_option_chain_follows_pages(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect("/v3/snapshot/options/AAPL", fixture("polygon", "options_chain_page1.json"))
    replay.expect("/v3/snapshot/options/AAPL", fixture("polygon", "options_chain_page2.json"))
    p = make(replay.url)
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
    p = make(server.url)
    try:
        bars = await p.fetch_bars("AAPL", Interval.M1, start, end)
    finally:
        await p.aclose()
    assert len(bars) == 15 * 390
    assert rows(bars) == rows(ground_truth("AAPL", Interval.M1, start, end))
