"""Tiingo quirks: the token header, the IEX and EOD endpoints' parameters, long intraday
ranges fetched in date chunks. The shared contract is in ``test_contract.py``."""

from __future__ import annotations

from mds.domain.models import Capability, Interval
from mds.providers.sim.market import ground_truth
from mds.providers.tiingo import TiingoProvider
from tests.contract.vendors.harness import KEY, ReplayServer, fetch_bars, fixture
from tests.helpers import rows, utc

IEX = "/iex/AAPL/prices"
DAILY = "/tiingo/daily/AAPL/prices"


def test_declared_limits_and_capabilities() -> None:
    assert TiingoProvider.default_limits == ("50/hour", "1000/day")
    assert TiingoProvider.capabilities == frozenset(
        {Capability.BARS_1M, Capability.EOD, Capability.CORPORATE_ACTIONS}
    )
    assert TiingoProvider.adjusted is False


async def test_1m_request_and_token_header(replay: ReplayServer) -> None:
    replay.expect(IEX, fixture("tiingo", "iex_1m_2025-03-10.json"))
    bars = await fetch_bars(
        TiingoProvider, replay.url, Interval.M1, utc("2025-03-10T13:30:00"), utc("2025-03-10T20:00:00")
    )
    assert len(bars) == 3
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


async def test_daily_request(replay: ReplayServer) -> None:
    replay.expect(DAILY, fixture("tiingo", "daily_2025-03.json"))
    bars = await fetch_bars(
        TiingoProvider, replay.url, Interval.D1, utc("2025-03-06T00:00:00"), utc("2025-03-11T00:00:00")
    )
    assert len(bars) == 3
    assert replay.requests[0].params == {
        "startDate": "2025-03-05",  # 2025-03-06T00:00Z is still the 5th in New York
        "endDate": "2025-03-10",
        "resampleFreq": "daily",
        "format": "json",
    }


async def test_long_intraday_ranges_are_fetched_in_date_chunks(replay: ReplayServer) -> None:
    replay.expect(IEX, fixture("tiingo", "iex_1m_2025-02-14.json"))
    replay.expect(IEX, fixture("tiingo", "iex_1m_2025-03-10.json"))
    bars = await fetch_bars(
        TiingoProvider, replay.url, Interval.M1, utc("2025-02-01T00:00:00"), utc("2025-03-10T20:00:00")
    )
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


# -- against the sim-server ---------------------------------------------------------------


async def test_sim_chunked_range_equals_ground_truth(sim_server) -> None:  # type: ignore[no-untyped-def]
    server = sim_server("tiingo")
    start, end = utc("2025-02-10T00:00:00"), utc("2025-03-15T00:00:00")  # two date chunks
    bars = await fetch_bars(TiingoProvider, server.url, Interval.M1, start, end)
    assert rows(bars) == rows(ground_truth("AAPL", Interval.M1, start, end))
