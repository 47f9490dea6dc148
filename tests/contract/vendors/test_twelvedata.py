"""Twelve Data adapter against canned vendor responses and against the sim-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Interval
from mds.errors import AuthError, BadPayload, NoData, NotEntitled, RateLimited, Unavailable
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.market import ground_truth
from mds.providers.twelvedata import TwelveDataProvider
from tests.contract.vendors.harness import ReplayServer, fixture

KEY = "test-key"
TS = "/time_series"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make(url: str) -> TwelveDataProvider:
    settings = load_settings({"TWELVE_DATA_API_KEY": KEY, "TWELVEDATA_BASE_URL": url})
    return TwelveDataProvider(settings=settings, calendar=MarketCalendar(), limiter=RateLimiter())


@pytest.fixture
async def td(replay: ReplayServer) -> AsyncIterator[TwelveDataProvider]:
    provider = make(replay.url)
    yield provider
    await provider.aclose()


def serve(replay: ReplayServer, path: str, *names: str, status: int = 200) -> None:
    for name in names:
        replay.expect(path, fixture("twelvedata", name), status=status)


# -- bars ------------------------------------------------------------------------------


async def test_dst_change_new_york_wall_times_become_utc_opens(
    td: TwelveDataProvider, replay: ReplayServer
) -> None:
    serve(replay, TS, "time_series_1min_dst.json")
    bars = await td.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 7), utc(2025, 3, 11))
    assert [b.ts for b in bars] == [
        utc(2025, 3, 7, 14, 30),  # last EST session: 09:30 ET = 14:30Z
        utc(2025, 3, 7, 14, 31),
        utc(2025, 3, 7, 20, 59),
        utc(2025, 3, 10, 13, 30),  # first EDT session: 09:30 ET = 13:30Z
        utc(2025, 3, 10, 13, 31),
        utc(2025, 3, 10, 19, 59),
    ]
    assert bars[3].values() == (235.54, 236.16, 234.98, 235.51, 1934511.0)
    assert (bars[3].provider, bars[3].adjusted, bars[3].symbol) == ("twelvedata", False, "AAPL")


async def test_request_params_and_auth_header(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, TS, "time_series_1min_dst.json")
    await td.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10, 13, 30), utc(2025, 3, 10, 20))
    (seen,) = replay.requests
    assert seen.path == TS
    assert seen.params == {
        "symbol": "AAPL",
        "interval": "1min",
        "start_date": "2025-03-10 09:30:00",
        "end_date": "2025-03-10 15:59:59",
        "timezone": "America/New_York",
        "order": "ASC",
        "outputsize": "5000",
        "adjust": "none",
    }
    assert seen.headers["authorization"] == f"apikey {KEY}"


async def test_full_pages_are_followed_backwards(td: TwelveDataProvider, replay: ReplayServer) -> None:
    td.page_size = 3
    serve(
        replay, TS, "time_series_1min_page_latest.json", "time_series_1min_page_earlier.json", "no_data.json"
    )
    bars = await td.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 7), utc(2025, 3, 11))
    assert [r.params["end_date"] for r in replay.requests] == [
        "2025-03-10 19:59:59",
        "2025-03-10 09:29:59",
        "2025-03-07 09:29:59",
    ]
    assert {r.params["start_date"] for r in replay.requests} == {"2025-03-06 19:00:00"}
    assert len(bars) == 6
    assert bars[0].ts == utc(2025, 3, 7, 14, 30)


async def test_early_close(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, TS, "time_series_1min_early_close.json")
    bars = await td.fetch_bars("AAPL", Interval.M1, utc(2025, 11, 28, 14, 30), utc(2025, 11, 28, 18))
    assert [b.ts for b in bars] == [utc(2025, 11, 28, 14, 30), utc(2025, 11, 28, 17, 59)]
    assert td.calendar.bar_end(bars[-1].ts, Interval.M1) == utc(2025, 11, 28, 18)


async def test_daily_dates_become_session_opens(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, TS, "time_series_1day.json")
    bars = await td.fetch_bars("AAPL", Interval.D1, utc(2025, 3, 7), utc(2025, 3, 11))
    assert [b.ts for b in bars] == [utc(2025, 3, 7, 14, 30), utc(2025, 3, 10, 13, 30)]
    assert bars[1].values() == (235.54, 236.16, 224.22, 227.48, 72071199.0)
    (seen,) = replay.requests
    # Date-only end_date is exclusive at the vendor: the day after the last one wanted.
    assert (seen.params["start_date"], seen.params["end_date"]) == ("2025-03-06", "2025-03-11")


async def test_no_data_on_dates_is_an_empty_list(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, TS, "no_data.json")
    assert await td.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 8), utc(2025, 3, 10)) == []


async def test_clock_aligned_hourly_bars_are_refused(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, TS, "time_series_1h_clock_aligned.json")
    with pytest.raises(BadPayload):
        await td.fetch_bars("AAPL", Interval.H1, utc(2025, 3, 10), utc(2025, 3, 11))


# -- failures --------------------------------------------------------------------------


async def test_out_of_credits_in_a_200_is_rate_limited(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, TS, "out_of_credits.json")
    with pytest.raises(RateLimited) as caught:
        await td.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert caught.value.retry_after == 60.0


async def test_http_429_with_retry_after(td: TwelveDataProvider, replay: ReplayServer) -> None:
    replay.expect(TS, fixture("twelvedata", "out_of_credits.json"), status=429, headers={"Retry-After": "12"})
    with pytest.raises(RateLimited) as caught:
        await td.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert caught.value.retry_after == 12.0


async def test_invalid_key_is_auth_error_without_the_key(
    td: TwelveDataProvider, replay: ReplayServer
) -> None:
    serve(replay, TS, "invalid_key.json")
    with pytest.raises(AuthError) as caught:
        await td.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert KEY not in str(caught.value)


async def test_not_on_plan_is_not_entitled(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, TS, "not_on_plan.json")
    with pytest.raises(NotEntitled):
        await td.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))


async def test_unknown_symbol_is_no_data(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, TS, "symbol_not_found.json")
    with pytest.raises(NoData):
        await td.fetch_bars("NOSUCH", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))


async def test_server_error_is_unavailable(td: TwelveDataProvider, replay: ReplayServer) -> None:
    replay.expect(TS, b"<html>502 Bad Gateway</html>", status=502, content_type="text/html")
    with pytest.raises(Unavailable):
        await td.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))


@pytest.mark.parametrize("name", ["malformed.json", "time_series_high_below_low.json"])
async def test_bad_bodies_are_bad_payload(td: TwelveDataProvider, replay: ReplayServer, name: str) -> None:
    serve(replay, TS, name)
    with pytest.raises(BadPayload):
        await td.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))


# -- quotes ----------------------------------------------------------------------------


async def test_quote(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, "/quote", "quote.json")
    (quote,) = await td.fetch_quotes(["AAPL"])
    assert (quote.symbol, quote.last, quote.bid, quote.ask) == ("AAPL", 227.48, None, None)
    assert quote.ts == utc(2025, 3, 10, 20)
    assert replay.requests[0].params == {"symbol": "AAPL"}


async def test_batch_quote_skips_unknown_symbols(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, "/quote", "quote_batch.json")
    quotes = await td.fetch_quotes(["AAPL", "NOSUCH"])
    assert [q.symbol for q in quotes] == ["AAPL"]
    assert replay.requests[0].params == {"symbol": "AAPL,NOSUCH"}


# -- against the sim-server ------------------------------------------------------------


async def test_sim_paging_over_a_week_equals_ground_truth(sim_server) -> None:  # type: ignore[no-untyped-def]
    provider = make(sim_server("twelvedata").url)
    provider.page_size = 500  # a week of 1m bars (1950) takes four pages
    start, end = utc(2025, 3, 3), utc(2025, 3, 8)
    try:
        bars = await provider.fetch_bars("AAPL", Interval.M1, start, end)
    finally:
        await provider.aclose()
    truth = ground_truth("AAPL", Interval.M1, start, end)
    assert [(b.ts, b.values()) for b in bars] == [(t.ts, t.values()) for t in truth]


@pytest.mark.parametrize("interval", [Interval.M15, Interval.H1, Interval.D1])
async def test_sim_month_equals_ground_truth(sim_server, interval: Interval) -> None:  # type: ignore[no-untyped-def]
    provider = make(sim_server("twelvedata").url)
    start, end = utc(2025, 3, 1), utc(2025, 4, 1)
    try:
        bars = await provider.fetch_bars("AAPL", interval, start, end)
    finally:
        await provider.aclose()
    truth = ground_truth("AAPL", interval, start, end)
    assert len(bars) == len(truth) > 0
    assert [(b.ts, b.values()) for b in bars] == [(t.ts, t.values()) for t in truth]
