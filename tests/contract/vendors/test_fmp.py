"""FMP adapter against canned ``/stable`` responses and against the sim-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Interval
from mds.errors import AuthError, BadPayload, NotEntitled, RateLimited, Unavailable
from mds.providers.fmp import FmpProvider
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.market import ground_truth
from tests.contract.vendors.harness import ReplayServer, fixture

KEY = "test-key"
CHART = "/stable/historical-chart/1min"
EOD = "/stable/historical-price-eod/non-split-adjusted"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make(url: str) -> FmpProvider:
    settings = load_settings({"FMP_API_KEY": KEY, "FMP_BASE_URL": url})
    return FmpProvider(settings=settings, calendar=MarketCalendar(), limiter=RateLimiter())


@pytest.fixture
async def fmp(replay: ReplayServer) -> AsyncIterator[FmpProvider]:
    provider = make(replay.url)
    yield provider
    await provider.aclose()


def serve(replay: ReplayServer, path: str, *names: str, status: int = 200) -> None:
    for name in names:
        ctype = "text/plain" if name.endswith(".txt") else "application/json"
        replay.expect(path, fixture("fmp", name), status=status, content_type=ctype)


# -- bars ------------------------------------------------------------------------------


async def test_dst_change_chunks_and_converts_eastern_start_labels(
    fmp: FmpProvider, replay: ReplayServer
) -> None:
    serve(replay, CHART, "chart_1min_2025-03-07.json", "chart_1min_2025-03-10.json")
    bars = await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 7), utc(2025, 3, 11))
    # Two calls (3 local days, then the rest), both followed: every page requested.
    assert [(r.params["from"], r.params["to"]) for r in replay.requests] == [
        ("2025-03-06", "2025-03-08"),
        ("2025-03-09", "2025-03-10"),
    ]
    assert [b.ts for b in bars] == [
        utc(2025, 3, 7, 14, 30),  # last EST session: 09:30 ET = 14:30Z
        utc(2025, 3, 7, 14, 31),
        utc(2025, 3, 7, 20, 59),
        utc(2025, 3, 10, 13, 30),  # first EDT session: 09:30 ET = 13:30Z
        utc(2025, 3, 10, 13, 31),
        utc(2025, 3, 10, 19, 59),
    ]
    assert bars[3].values() == (235.54, 236.16, 234.98, 235.51, 1934511.0)
    assert (bars[3].provider, bars[3].adjusted) == ("fmp", False)


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


async def test_early_close(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, CHART, "chart_1min_2025-11-28.json")
    bars = await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 11, 28, 14, 30), utc(2025, 11, 28, 18))
    assert [b.ts for b in bars] == [utc(2025, 11, 28, 14, 30), utc(2025, 11, 28, 17, 59)]
    assert fmp.calendar.bar_end(bars[-1].ts, Interval.M1) == utc(2025, 11, 28, 18)


async def test_daily_raw_prices_at_session_open(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, EOD, "eod_non_split_adjusted.json")
    bars = await fmp.fetch_bars("AAPL", Interval.D1, utc(2025, 3, 7), utc(2025, 3, 11))
    assert [b.ts for b in bars] == [utc(2025, 3, 7, 14, 30), utc(2025, 3, 10, 13, 30)]
    assert bars[0].values() == (235.105, 241.37, 234.76, 239.07, 46273565.0)
    (seen,) = replay.requests
    assert seen.params == {"symbol": "AAPL", "from": "2025-03-06", "to": "2025-03-10", "apikey": KEY}


async def test_empty_array_is_an_empty_list(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, CHART, "empty.json")
    assert await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11)) == []


async def test_clock_aligned_hourly_bars_are_refused(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, "/stable/historical-chart/1hour", "chart_1hour_clock_aligned.json")
    with pytest.raises(BadPayload):
        await fmp.fetch_bars("AAPL", Interval.H1, utc(2025, 3, 10), utc(2025, 3, 11))


# -- failures --------------------------------------------------------------------------


async def test_limit_reach_is_rate_limited(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, CHART, "limit_reach.json", status=429)
    with pytest.raises(RateLimited) as caught:
        await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert caught.value.retry_after == 60.0


async def test_retry_after_header_is_honoured(fmp: FmpProvider, replay: ReplayServer) -> None:
    replay.expect(CHART, fixture("fmp", "limit_reach.json"), status=429, headers={"Retry-After": "17"})
    with pytest.raises(RateLimited) as caught:
        await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert caught.value.retry_after == 17.0


async def test_invalid_key_is_auth_error_without_the_key(fmp: FmpProvider, replay: ReplayServer) -> None:
    serve(replay, CHART, "invalid_key.json", status=401)
    with pytest.raises(AuthError) as caught:
        await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "status"), [("restricted_endpoint.txt", 402), ("legacy_endpoint.json", 403)]
)
async def test_plan_limits_are_not_entitled(
    fmp: FmpProvider, replay: ReplayServer, name: str, status: int
) -> None:
    serve(replay, CHART, name, status=status)
    with pytest.raises(NotEntitled) as caught:
        await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert KEY not in str(caught.value)


async def test_server_error_is_unavailable(fmp: FmpProvider, replay: ReplayServer) -> None:
    replay.expect(CHART, b"upstream timeout", status=504, content_type="text/plain")
    with pytest.raises(Unavailable):
        await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))


@pytest.mark.parametrize("name", ["malformed.json", "chart_1min_high_below_low.json", "invalid_key.json"])
async def test_bad_bodies_are_bad_payload_or_no_data(
    fmp: FmpProvider, replay: ReplayServer, name: str
) -> None:
    serve(replay, CHART, name)  # invalid_key.json with HTTP 200: still a key problem
    expected = AuthError if name == "invalid_key.json" else BadPayload
    with pytest.raises(expected):
        await fmp.fetch_bars("AAPL", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))


# -- quotes ----------------------------------------------------------------------------


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
    provider = make(sim_server("fmp").url)
    start, end = utc(2025, 3, 7), utc(2025, 3, 11)
    try:
        bars = await provider.fetch_bars("AAPL", interval, start, end)
    finally:
        await provider.aclose()
    truth = ground_truth("AAPL", interval, start, end)
    assert [(b.ts, b.values()) for b in bars] == [(t.ts, t.values()) for t in truth]
