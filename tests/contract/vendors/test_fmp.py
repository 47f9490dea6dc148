"""FMP quirks: intraday ranges cut into 3-day calls, the ``/stable`` paths and parameters,
clock-aligned hourly bars refused, quotes. The shared contract is in ``test_contract.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from mds.domain.models import Interval
from mds.errors import BadPayload
from mds.providers.fmp import FmpProvider
from mds.providers.sim.market import ground_truth
from tests.contract.vendors.harness import KEY, ReplayServer, fixture, vendor
from tests.helpers import rows, utc

CHART = "/stable/historical-chart/1min"
EOD = "/stable/historical-price-eod/non-split-adjusted"


@pytest.fixture
async def fmp(replay: ReplayServer) -> AsyncIterator[FmpProvider]:
    provider = vendor(FmpProvider, replay.url)
    yield provider
    await provider.aclose()


def serve(replay: ReplayServer, path: str, *names: str) -> None:
    for name in names:
        replay.expect(path, fixture("fmp", name))


async def test_intraday_ranges_are_cut_into_3_day_calls(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, CHART, "chart_1min_2025-03-07.json", "chart_1min_2025-03-10.json")
    bars = await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 7), utc(2025, 3, 11))
    # Two calls (3 local days, then the rest), both followed: every page requested.
    assert [(r.params["from"], r.params["to"]) for r in replay.requests] == [
        ("2025-03-06", "2025-03-08"),
        ("2025-03-09", "2025-03-10"),
    ]
    assert [b.ts for b in bars] == [
        utc(2025, 3, 7, 14, 30),
        utc(2025, 3, 7, 14, 31),
        utc(2025, 3, 7, 20, 59),
        utc(2025, 3, 10, 13, 30),
        utc(2025, 3, 10, 13, 31),
        utc(2025, 3, 10, 19, 59),
    ]


async def test_request_path_params_and_key(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, CHART, "chart_1min_2025-03-10.json")
    await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10, 13, 30), utc(2025, 3, 10, 20))
    (seen,) = replay.requests
    assert seen.path == CHART
    assert seen.params == {
        "symbol": "AAPL",
        "from": "2025-03-10",
        "to": "2025-03-10",
        "nonadjusted": "true",
        "apikey": KEY,
    }


async def test_daily_request_asks_raw_prices_by_local_dates(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, EOD, "eod_non_split_adjusted.json")
    assert len(await fmp.fetch_bars("AAPL", Interval.D1, utc(2025, 3, 7), utc(2025, 3, 11))) == 2
    (seen,) = replay.requests
    assert seen.path == EOD
    assert seen.params == {"symbol": "AAPL", "from": "2025-03-06", "to": "2025-03-10", "apikey": KEY}


async def test_clock_aligned_hourly_bars_are_refused(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, "/stable/historical-chart/1hour", "chart_1hour_clock_aligned.json")
    with pytest.raises(BadPayload):
        await fmp.fetch_bars("AAPL", Interval.H1, utc(2025, 3, 10), utc(2025, 3, 11))


async def test_quote(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, "/stable/quote", "quote.json")
    (quote,) = await fmp.fetch_quotes(["AAPL"])
    assert (quote.symbol, quote.last, quote.bid, quote.ask, quote.provider) == (
        "AAPL",
        232.8,
        None,
        None,
        "fmp",
    )
    assert quote.ts == datetime.fromtimestamp(1738702801, UTC)
    assert replay.requests[0].params == {"symbol": "AAPL", "apikey": KEY}


# -- against the sim-server ------------------------------------------------------------


@pytest.mark.parametrize("interval", [Interval.M5, Interval.H1])
async def test_sim_larger_intraday_bars_equal_ground_truth(sim_server, interval: Interval) -> None:  # type: ignore[no-untyped-def]
    provider = vendor(FmpProvider, sim_server("fmp").url)
    start, end = utc(2025, 3, 7), utc(2025, 3, 11)
    try:
        bars = await provider.fetch_bars("AAPL", interval, start, end)
    finally:
        await provider.aclose()
    assert rows(bars) == rows(ground_truth("AAPL", interval, start, end))
