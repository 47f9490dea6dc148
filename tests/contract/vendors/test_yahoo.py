"""Yahoo adapter against canned Yahoo responses and against `mds sim-server --format yahoo`."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Interval, OptionRight
from mds.errors import AuthError, BadPayload, NoData, RateLimited
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.market import ground_truth
from mds.providers.yahoo import YahooProvider
from tests.contract.vendors.harness import fixture

CHART = "/v8/finance/chart/AAPL"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make(url: str) -> YahooProvider:
    settings = load_settings({"YAHOO_BASE_URL": url})
    return YahooProvider(settings=settings, calendar=MarketCalendar(), limiter=RateLimiter())


def rows(bars):  # type: ignore[no-untyped-def]
    return [(b.ts, *b.values()) for b in bars]


async def test_1m_first_edt_session_skips_null_minutes(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CHART, fixture("yahoo", "chart_1m_2025-03-10.json"))
    p = make(replay.url)
    try:
        bars = await p.fetch_bars("AAPL", Interval.M1, utc("2025-03-10T13:30:00"), utc("2025-03-10T20:00:00"))
    finally:
        await p.aclose()
    assert [b.ts for b in bars] == [
        utc("2025-03-10T13:30:00"),
        utc("2025-03-10T13:31:00"),
        utc("2025-03-10T13:33:00"),
    ]
    first = bars[0]
    assert first.values() == (
        235.5399932861328,
        236.16000366210938,
        234.6199951171875,
        234.8800048828125,
        1802355,
    )
    assert (first.provider, first.adjusted, first.interval) == ("yahoo", False, Interval.M1)


async def test_1m_last_est_session_opens_1430z(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CHART, fixture("yahoo", "chart_1m_2025-03-07.json"))
    p = make(replay.url)
    try:
        bars = await p.fetch_bars("AAPL", Interval.M1, utc("2025-03-07T14:30:00"), utc("2025-03-07T21:00:00"))
    finally:
        await p.aclose()
    assert rows(bars) == [
        (
            utc("2025-03-07T14:30:00"),
            235.10000610351562,
            236.1999969482422,
            234.8000030517578,
            236.0,
            1520784,
        ),
        (utc("2025-03-07T14:31:00"), 236.0, 236.4199981689453, 235.5, 236.22999572753906, 390411),
    ]


async def test_1m_early_close_ends_before_1800z(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CHART, fixture("yahoo", "chart_1m_2025-11-28.json"))
    cal = MarketCalendar()
    p = make(replay.url)
    try:
        bars = await p.fetch_bars("AAPL", Interval.M1, utc("2025-11-28T14:30:00"), utc("2025-11-28T21:00:00"))
    finally:
        await p.aclose()
    session = cal.session_on(date(2025, 11, 28))
    assert session is not None and session.close == utc("2025-11-28T18:00:00")
    assert [b.ts for b in bars] == [utc("2025-11-28T17:58:00"), utc("2025-11-28T17:59:00")]


async def test_daily_bars_at_session_open_across_dst(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CHART, fixture("yahoo", "chart_1d.json"))
    p = make(replay.url)
    try:
        bars = await p.fetch_bars("AAPL", Interval.D1, utc("2025-03-06T00:00:00"), utc("2025-03-11T00:00:00"))
    finally:
        await p.aclose()
    assert [b.ts for b in bars] == [
        utc("2025-03-06T14:30:00"),
        utc("2025-03-07T14:30:00"),
        utc("2025-03-10T13:30:00"),
    ]
    # Raw quote arrays, not adjclose.
    assert bars[-1].close == 227.47999572753906 and not bars[-1].adjusted
    seen = replay.requests[0]
    assert seen.path == CHART
    assert seen.params == {
        "period1": str(int(utc("2025-03-05T00:00:00").timestamp())),  # NY date of start, 00:00Z
        "period2": str(int(utc("2025-03-11T00:00:00").timestamp())),
        "interval": "1d",
        "includePrePost": "false",
        "events": "div,splits",
    }


async def test_1m_range_over_7_days_is_windowed(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CHART, fixture("yahoo", "chart_1m_2025-03-07.json"))
    replay.expect(CHART, fixture("yahoo", "chart_1m_2025-03-14.json"))
    start, end = utc("2025-03-07T00:00:00"), utc("2025-03-15T00:00:00")
    p = make(replay.url)
    try:
        bars = await p.fetch_bars("AAPL", Interval.M1, start, end)
    finally:
        await p.aclose()
    assert [b.ts for b in bars] == [
        utc("2025-03-07T14:30:00"),
        utc("2025-03-07T14:31:00"),
        utc("2025-03-14T13:30:00"),
    ]
    windows = [(r.params["period1"], r.params["period2"]) for r in replay.requests]
    mid = str(int(utc("2025-03-14T00:00:00").timestamp()))
    assert windows == [(str(int(start.timestamp())), mid), (mid, str(int(end.timestamp())))]
    assert all(r.params["interval"] == "1m" for r in replay.requests)


async def test_empty_range_is_an_empty_list(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CHART, fixture("yahoo", "chart_empty.json"))
    p = make(replay.url)
    try:
        assert (
            await p.fetch_bars("AAPL", Interval.M1, utc("2025-03-08T00:00:00"), utc("2025-03-09T00:00:00"))
            == []
        )
    finally:
        await p.aclose()


@pytest.mark.parametrize(
    ("name", "status"),
    [("chart_not_found.json", 404), ("chart_1m_too_old.json", 422), ("chart_not_found.json", 200)],
)
async def test_chart_error_is_no_data(replay, name: str, status: int) -> None:  # type: ignore[no-untyped-def]
    replay.expect("/v8/finance/chart/ZZZZ", fixture("yahoo", name), status=status)
    p = make(replay.url)
    try:
        with pytest.raises(NoData):
            await p.fetch_bars("ZZZZ", Interval.M1, utc("2025-03-10T13:30:00"), utc("2025-03-10T20:00:00"))
    finally:
        await p.aclose()


@pytest.mark.parametrize(("headers", "expected"), [({}, 60.0), ({"Retry-After": "7"}, 7.0)])
async def test_throttled(replay, headers: dict[str, str], expected: float) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CHART, "Too Many Requests\r\n", status=429, headers=headers, content_type="text/plain")
    p = make(replay.url)
    try:
        with pytest.raises(RateLimited) as info:
            await p.fetch_bars("AAPL", Interval.M1, utc("2025-03-10T13:30:00"), utc("2025-03-10T20:00:00"))
    finally:
        await p.aclose()
    assert info.value.retry_after == expected


async def test_invalid_crumb_is_auth_error(replay) -> None:  # type: ignore[no-untyped-def]
    body = '{"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid Crumb"}}}'
    replay.expect("/v7/finance/quote", body, status=401)
    p = make(replay.url)
    try:
        with pytest.raises(AuthError):
            await p.fetch_quotes(["AAPL"])
    finally:
        await p.aclose()


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        fixture("yahoo", "chart_high_below_low.json"),
        fixture("yahoo", "chart_partial_null.json"),
    ],
)
async def test_malformed_is_bad_payload(replay, body: bytes) -> None:  # type: ignore[no-untyped-def]
    replay.expect(CHART, body)
    p = make(replay.url)
    try:
        with pytest.raises(BadPayload):
            await p.fetch_bars("AAPL", Interval.M1, utc("2025-03-10T13:30:00"), utc("2025-03-10T20:00:00"))
    finally:
        await p.aclose()


async def test_quotes(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect("/v7/finance/quote", fixture("yahoo", "quote.json"))
    p = make(replay.url)
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


async def test_options(replay) -> None:  # type: ignore[no-untyped-def]
    replay.expect("/v7/finance/options/AAPL", fixture("yahoo", "options.json"))
    p = make(replay.url)
    try:
        chain = await p.fetch_options_chain("AAPL", date(2025, 3, 21))
    finally:
        await p.aclose()
    assert replay.requests[0].params == {"date": str(int(utc("2025-03-21T00:00:00").timestamp()))}
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
    p = make(server.url)
    try:
        bars = await p.fetch_bars("AAPL", Interval.M1, start, end)
    finally:
        await p.aclose()
    assert rows(bars) == rows(ground_truth("AAPL", Interval.M1, start, end))
