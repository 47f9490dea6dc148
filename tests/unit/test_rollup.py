"""1m bars roll up to the sim's own 5m/15m/1h bars, aligned to the session open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mds.calendar import MarketCalendar
from mds.domain.models import BarStatus, Interval
from mds.providers.sim.market import ground_truth
from mds.services.rollup import rollup
from tests.helpers import rows as _values

CAL = MarketCalendar()


@pytest.mark.parametrize("interval", [Interval.M5, Interval.M15, Interval.H1])
@pytest.mark.parametrize(
    "day",
    [
        datetime(2025, 10, 8, tzinfo=UTC),  # a normal EDT session
        datetime(2025, 11, 28, tzinfo=UTC),  # early close at 13:00 ET: the last hour is 30 minutes
        datetime(2025, 1, 15, tzinfo=UTC),  # EST
    ],
)
def test_rollup_equals_sim_bars(interval: Interval, day: datetime) -> None:
    start, end = day, day + timedelta(days=1)
    ones = ground_truth("MSFT", Interval.M1, start, end)
    rolled = rollup(ones, interval, CAL, now=end + timedelta(days=1))
    assert _values(rolled) == _values(ground_truth("MSFT", interval, start, end))
    assert all(b.status is BarStatus.FINAL for b in rolled)


def test_open_bucket_is_provisional_and_providers_are_joined() -> None:
    start = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
    ones = ground_truth("AAPL", Interval.M1, start, start + timedelta(minutes=7))
    ones = [b.with_(provider="sim" if i % 2 else "sim_backup") for i, b in enumerate(ones)]
    rolled = rollup(ones, Interval.M5, CAL, now=start + timedelta(minutes=7))
    assert [b.status for b in rolled] == [BarStatus.FINAL, BarStatus.PROVISIONAL]
    assert rolled[0].provider == "sim+sim_backup"


def test_1m_is_returned_untouched() -> None:
    start = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
    ones = ground_truth("AAPL", Interval.M1, start, start + timedelta(minutes=3))
    assert rollup(ones, Interval.M1, CAL, now=start) is ones
