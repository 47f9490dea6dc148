"""Stooq quirks: the CSV request by exchange-local dates and its ``.us`` symbols. The shared
contract (sessions, throttling and key pages in a 200, malformed CSV) is in
``test_contract.py``."""

from __future__ import annotations

from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from mds.providers.stooq import StooqProvider, stooq_symbol
from tests.contract.vendors.harness import ReplayServer, fetch_bars, fixture
from tests.helpers import rows, utc

PATH = "/q/d/l/"


async def test_request_by_exchange_local_dates(replay: ReplayServer) -> None:
    replay.expect(PATH, fixture("stooq", "aapl_d.csv"), content_type="text/csv")
    bars = await fetch_bars(
        StooqProvider, replay.url, Interval.D1, utc("2025-03-06T00:00:00"), utc("2025-03-11T00:00:00")
    )
    assert len(bars) == 3
    # 00:00Z on the 6th is still the 5th in New York; the 11th 00:00Z end is exclusive.
    assert replay.requests[0].params == {"s": "aapl.us", "i": "d", "d1": "20250305", "d2": "20250310"}


def test_symbols() -> None:
    assert stooq_symbol("AAPL") == "aapl.us" and stooq_symbol("BRK.B") == "brk-b.us"


# -- against the sim-server ---------------------------------------------------------------


async def test_sim_early_close_month(sim_server) -> None:  # type: ignore[no-untyped-def]
    server = sim_server("stooq")
    start, end = utc("2025-11-01T00:00:00"), utc("2025-12-01T00:00:00")
    bars = await fetch_bars(StooqProvider, server.url, Interval.D1, start, end)
    assert rows(bars) == rows(ground_truth("AAPL", Interval.D1, start, end))
