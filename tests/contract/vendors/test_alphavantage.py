"""Alpha Vantage adapter against canned vendor responses and against the sim-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.models import Interval
from mds.errors import AuthError, BadPayload, NoData, NotEntitled, RateLimited, Unavailable
from mds.providers.alphavantage import AlphaVantageProvider
from mds.providers.ratelimit import RateLimiter
from tests.contract.vendors.harness import ReplayServer, fixture

KEY = "test-key"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make(url: str) -> AlphaVantageProvider:
    # The free tier's 5/minute stays on: no test here sends more than 5 requests.
    settings = load_settings({"ALPHA_VANTAGE_API_KEY": KEY, "ALPHAVANTAGE_BASE_URL": url})
    return AlphaVantageProvider(settings=settings, calendar=MarketCalendar(), limiter=RateLimiter())


@pytest.fixture
async def av(replay: ReplayServer) -> AsyncIterator[AlphaVantageProvider]:
    provider = make(replay.url)
    yield provider
    await provider.aclose()


def serve(replay: ReplayServer, *names: str) -> None:
    for name in names:
        replay.expect("/query", fixture("alphavantage", name))


# -- bars ------------------------------------------------------------------------------


async def test_intraday_dst_change_converts_eastern_start_labels_to_utc_open(
    av: AlphaVantageProvider, replay: ReplayServer
) -> None:
    serve(replay, "intraday_1min_2025-03.json")
    bars = await av.fetch_bars("IBM", Interval.M1, utc(2025, 3, 7), utc(2025, 3, 11))
    assert [b.ts for b in bars] == [
        utc(2025, 3, 7, 14, 30),  # last EST session: 09:30 ET = 14:30Z
        utc(2025, 3, 7, 14, 31),
        utc(2025, 3, 7, 20, 59),
        utc(2025, 3, 10, 13, 30),  # first EDT session: 09:30 ET = 13:30Z
        utc(2025, 3, 10, 13, 31),
        utc(2025, 3, 10, 19, 59),
    ]
    first = bars[3]
    assert first.values() == (235.54, 236.16, 234.98, 235.51, 1934511.0)
    assert (first.provider, first.adjusted, first.symbol, first.interval) == (
        "alphavantage",
        False,
        "IBM",
        Interval.M1,
    )


async def test_request_asks_one_raw_regular_hours_month_with_key_param(
    av: AlphaVantageProvider, replay: ReplayServer
) -> None:
    serve(replay, "intraday_1min_2025-03.json")
    await av.fetch_bars("IBM", Interval.M1, utc(2025, 3, 10, 13, 30), utc(2025, 3, 10, 20))
    (seen,) = replay.requests
    assert seen.path == "/query"
    assert seen.params == {
        "function": "TIME_SERIES_INTRADAY",
        "symbol": "IBM",
        "interval": "1min",
        "month": "2025-03",
        "outputsize": "full",
        "adjusted": "false",
        "extended_hours": "false",
        "apikey": KEY,
    }


async def test_range_over_two_months_requests_each_month(
    av: AlphaVantageProvider, replay: ReplayServer
) -> None:
    serve(replay, "intraday_1min_2025-02.json", "intraday_1min_2025-03.json")
    bars = await av.fetch_bars("IBM", Interval.M1, utc(2025, 2, 28), utc(2025, 3, 8))
    assert [r.params["month"] for r in replay.requests] == ["2025-02", "2025-03"]
    assert bars[0].ts == utc(2025, 2, 28, 14, 30)
    assert bars[-1].ts == utc(2025, 3, 7, 20, 59)
    assert len(bars) == 5


async def test_early_close_last_bar_opens_at_1259_et(av: AlphaVantageProvider, replay: ReplayServer) -> None:
    serve(replay, "intraday_1min_2025-11.json")
    bars = await av.fetch_bars("IBM", Interval.M1, utc(2025, 11, 28), utc(2025, 11, 29))
    assert [b.ts for b in bars] == [utc(2025, 11, 28, 14, 30), utc(2025, 11, 28, 17, 59)]
    assert av.calendar.bar_end(bars[-1].ts, Interval.M1) == utc(2025, 11, 28, 18)


async def test_daily_dates_become_session_opens(av: AlphaVantageProvider, replay: ReplayServer) -> None:
    serve(replay, "daily_compact.json")
    bars = await av.fetch_bars("IBM", Interval.D1, utc(2025, 3, 7), utc(2025, 3, 11))
    assert [b.ts for b in bars] == [utc(2025, 3, 7, 14, 30), utc(2025, 3, 10, 13, 30)]
    assert bars[1].values() == (236.10, 239.44, 234.98, 239.07, 4521876.0)
    (seen,) = replay.requests
    assert seen.params["function"] == "TIME_SERIES_DAILY"
    assert seen.params["outputsize"] == "compact"


async def test_daily_before_compact_window_escalates_to_full(
    av: AlphaVantageProvider, replay: ReplayServer
) -> None:
    serve(replay, "daily_compact.json", "daily_full.json")
    bars = await av.fetch_bars("IBM", Interval.D1, utc(2024, 5, 31), utc(2024, 6, 4))
    assert [r.params["outputsize"] for r in replay.requests] == ["compact", "full"]
    assert [b.ts for b in bars] == [utc(2024, 5, 31, 13, 30), utc(2024, 6, 3, 13, 30)]


async def test_empty_month_is_an_empty_list(av: AlphaVantageProvider, replay: ReplayServer) -> None:
    serve(replay, "intraday_1min_empty.json")
    assert await av.fetch_bars("IBM", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11)) == []


async def test_hourly_bars_are_not_offered(av: AlphaVantageProvider) -> None:
    with pytest.raises(NoData) as caught:
        await av.fetch_bars("IBM", Interval.H1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert caught.value.code == "unsupported"


# -- failures --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["throttle_note.json", "throttle_daily.json"])
async def test_throttling_in_a_200_is_rate_limited(
    av: AlphaVantageProvider, replay: ReplayServer, name: str
) -> None:
    serve(replay, name)
    with pytest.raises(RateLimited) as caught:
        await av.fetch_bars("IBM", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert caught.value.retry_after == 60.0


async def test_invalid_key_is_auth_error_without_the_key(
    av: AlphaVantageProvider, replay: ReplayServer
) -> None:
    serve(replay, "invalid_key.json")
    with pytest.raises(AuthError) as caught:
        await av.fetch_bars("IBM", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert KEY not in str(caught.value)


async def test_invalid_api_call_is_no_data(av: AlphaVantageProvider, replay: ReplayServer) -> None:
    serve(replay, "invalid_call.json")
    with pytest.raises(NoData):
        await av.fetch_bars("NOSUCH", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))


async def test_premium_feature_is_not_entitled(av: AlphaVantageProvider, replay: ReplayServer) -> None:
    serve(replay, "daily_compact.json", "premium_full.json")
    with pytest.raises(NotEntitled):
        await av.fetch_bars("IBM", Interval.D1, utc(2020, 1, 1), utc(2020, 2, 1))


async def test_http_500_is_unavailable_without_the_key(
    av: AlphaVantageProvider, replay: ReplayServer
) -> None:
    replay.expect("/query", b"<html>bad gateway</html>", status=502, content_type="text/html")
    with pytest.raises(Unavailable) as caught:
        await av.fetch_bars("IBM", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("name", ["malformed.json", "intraday_1min_high_below_low.json"])
async def test_bad_bodies_are_bad_payload(av: AlphaVantageProvider, replay: ReplayServer, name: str) -> None:
    serve(replay, name)
    with pytest.raises(BadPayload):
        await av.fetch_bars("IBM", Interval.M1, utc(2025, 3, 10), utc(2025, 3, 11))


# -- quotes ----------------------------------------------------------------------------


async def test_global_quote(av: AlphaVantageProvider, replay: ReplayServer) -> None:
    serve(replay, "global_quote.json")
    (quote,) = await av.fetch_quotes(["IBM"])
    assert (quote.symbol, quote.last, quote.bid, quote.ask) == ("IBM", 239.07, None, None)
    assert quote.ts == utc(2025, 3, 10, 20)  # the trading day's close: the vendor gives no time
    assert replay.requests[0].params == {"function": "GLOBAL_QUOTE", "symbol": "IBM", "apikey": KEY}


async def test_unknown_symbol_quote_is_skipped(av: AlphaVantageProvider, replay: ReplayServer) -> None:
    serve(replay, "global_quote_empty.json")
    assert await av.fetch_quotes(["NOSUCH"]) == []


# -- against the sim-server ------------------------------------------------------------
