"""Twelve Data quirks: New York wall-time ranges, full pages followed backwards, an exclusive
date-only end, clock-aligned hourly bars refused, batched quotes. The shared contract is in
``test_contract.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mds.domain.models import Interval
from mds.errors import BadPayload
from mds.providers.sim.market import ground_truth
from mds.providers.twelvedata import TwelveDataProvider
from tests.contract.vendors.harness import KEY, ReplayServer, fixture, vendor
from tests.helpers import rows, utc

TS = "/time_series"


@pytest.fixture
async def td(replay: ReplayServer) -> AsyncIterator[TwelveDataProvider]:
    provider = vendor(TwelveDataProvider, replay.url)
    yield provider
    await provider.aclose()


def serve(replay: ReplayServer, path: str, *names: str) -> None:
    for name in names:
        replay.expect(path, fixture("twelvedata", name))


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
    td.page_size = 3  # type: ignore[misc]
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


async def test_daily_end_date_is_the_day_after(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, TS, "time_series_1day.json")
    assert len(await td.fetch_bars("AAPL", Interval.D1, utc(2025, 3, 7), utc(2025, 3, 11))) == 2
    (seen,) = replay.requests
    # Date-only end_date is exclusive at the vendor: the day after the last one wanted.
    assert (seen.params["start_date"], seen.params["end_date"]) == ("2025-03-06", "2025-03-11")


async def test_clock_aligned_hourly_bars_are_refused(td: TwelveDataProvider, replay: ReplayServer) -> None:
    serve(replay, TS, "time_series_1h_clock_aligned.json")
    with pytest.raises(BadPayload):
        await td.fetch_bars("AAPL", Interval.H1, utc(2025, 3, 10), utc(2025, 3, 11))


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
    provider = vendor(TwelveDataProvider, sim_server("twelvedata").url)
    provider.page_size = 500  # type: ignore[misc]  # a week of 1m bars (1950) takes four pages
    start, end = utc(2025, 3, 3), utc(2025, 3, 8)
    try:
        bars = await provider.fetch_bars("AAPL", Interval.M1, start, end)
    finally:
        await provider.aclose()
    assert rows(bars) == rows(ground_truth("AAPL", Interval.M1, start, end))


@pytest.mark.parametrize("interval", [Interval.M15, Interval.H1, Interval.D1])
async def test_sim_month_equals_ground_truth(sim_server, interval: Interval) -> None:  # type: ignore[no-untyped-def]
    provider = vendor(TwelveDataProvider, sim_server("twelvedata").url)
    start, end = utc(2025, 3, 1), utc(2025, 4, 1)
    try:
        bars = await provider.fetch_bars("AAPL", interval, start, end)
    finally:
        await provider.aclose()
    truth = ground_truth("AAPL", interval, start, end)
    assert len(bars) == len(truth) > 0
    assert rows(bars) == rows(truth)
