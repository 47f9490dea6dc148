"""Alpha Vantage quirks: one request per exchange-local month, compact daily history that
escalates to full, a premium answer inside a 200, quotes stamped with a trading day. The
shared contract is in ``test_contract.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mds.domain.models import Interval
from mds.errors import NotEntitled
from mds.providers.alphavantage import AlphaVantageProvider
from tests.contract.vendors.harness import KEY, ReplayServer, fixture, vendor
from tests.helpers import utc


@pytest.fixture
async def av(replay: ReplayServer) -> AsyncIterator[AlphaVantageProvider]:
    # The free tier's 5/minute stays on: no test here sends more than 5 requests.
    provider = vendor(AlphaVantageProvider, replay.url)
    yield provider
    await provider.aclose()


def serve(replay: ReplayServer, *names: str) -> None:
    for name in names:
        replay.expect("/query", fixture("alphavantage", name))


# -- bars ------------------------------------------------------------------------------


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


async def test_daily_asks_compact_history_first(av: AlphaVantageProvider, replay: ReplayServer) -> None:
    serve(replay, "daily_compact.json")
    assert len(await av.fetch_bars("IBM", Interval.D1, utc(2025, 3, 7), utc(2025, 3, 11))) == 2
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


async def test_premium_feature_is_not_entitled(av: AlphaVantageProvider, replay: ReplayServer) -> None:
    serve(replay, "daily_compact.json", "premium_full.json")
    with pytest.raises(NotEntitled):
        await av.fetch_bars("IBM", Interval.D1, utc(2020, 1, 1), utc(2020, 2, 1))


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
