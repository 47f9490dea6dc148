"""One suite for every vendor format: the real adapter against `mds sim-server --format X`.

Each vendor's own test file keeps what is particular to it (paging, windowing, chunking);
what every adapter must do the same way is here, once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mds.domain.models import Interval
from mds.errors import RateLimited, Unavailable
from mds.providers.http import HttpProvider
from mds.providers.registry import VENDORS, vendor_class
from mds.providers.sim.market import ground_truth
from tests.contract.vendors.harness import CALENDAR as CAL
from tests.contract.vendors.harness import vendor
from tests.helpers import rows

BAR_VENDORS = [v for v in VENDORS if v != "fred"]  # FRED serves macro series, not bars
INTRADAY = [v for v in BAR_VENDORS if v != "stooq"]  # Stooq serves daily bars only


def provider(fmt: str, url: str) -> HttpProvider:
    return vendor(vendor_class(fmt), url)


@pytest.mark.parametrize("fmt", INTRADAY)
@pytest.mark.parametrize(
    "day",
    [date(2025, 3, 7), date(2025, 3, 10), date(2025, 11, 28)],  # last EST, first EDT, early close
    ids=["last-est", "first-edt", "early-close"],
)
async def test_1m_session_equals_ground_truth(sim_server, fmt: str, day: date) -> None:  # type: ignore[no-untyped-def]
    server = sim_server(fmt)
    session = CAL.session_on(day)
    assert session is not None
    p = provider(fmt, server.url)
    try:
        bars = await p.fetch_bars("AAPL", Interval.M1, session.open, session.close)
    finally:
        await p.aclose()
    assert bars and rows(bars) == rows(ground_truth("AAPL", Interval.M1, session.open, session.close))
    assert {b.provider for b in bars} == {fmt}


@pytest.mark.parametrize("fmt", BAR_VENDORS)
async def test_daily_month_equals_ground_truth(sim_server, fmt: str) -> None:  # type: ignore[no-untyped-def]
    server = sim_server(fmt)
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    p = provider(fmt, server.url)
    try:
        bars = await p.fetch_bars("MSFT", Interval.D1, start, end)
    finally:
        await p.aclose()
    assert len(bars) == 21  # March 2025's sessions, the DST change among them
    assert rows(bars) == rows(ground_truth("MSFT", Interval.D1, start, end))


@pytest.mark.parametrize("fmt", BAR_VENDORS)
async def test_server_errors_are_unavailable(sim_server, fmt: str) -> None:  # type: ignore[no-untyped-def]
    server = sim_server(fmt, {"SIM_ERROR_RATE": "1"})
    p = provider(fmt, server.url)
    try:
        with pytest.raises(Unavailable):
            await p.fetch_bars(
                "AAPL", Interval.D1, datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
            )
    finally:
        await p.aclose()


@pytest.mark.parametrize("fmt", BAR_VENDORS)
async def test_throttling_is_rate_limited(sim_server, fmt: str) -> None:  # type: ignore[no-untyped-def]
    server = sim_server(fmt, {"SIM_RATE_LIMIT_PER_MIN": "1"})
    p = provider(fmt, server.url)
    # A recent week (the sim-server runs on the real clock): one call for every adapter,
    # including Alpha Vantage, whose compact daily answer covers the last 100 sessions.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    window = (today - timedelta(days=14), today - timedelta(days=7))
    try:
        await p.fetch_bars("AAPL", Interval.D1, *window)
        with pytest.raises(RateLimited) as info:
            await p.fetch_bars("AAPL", Interval.D1, *window)
    finally:
        await p.aclose()
    assert info.value.retry_after > 0
