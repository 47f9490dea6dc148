"""Gap runs are contiguous in the calendar's expected order, not in wall time."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from mds.calendar import MarketCalendar
from mds.domain.models import Interval
from mds.ingest.gaps import gaps_for, missing_runs


def test_no_gaps_when_everything_is_present() -> None:
    e = np.arange(0, 600, 60, dtype=np.int64)
    assert missing_runs(e, e) == []
    assert missing_runs(np.empty(0, dtype=np.int64), e) == []


def test_runs_of_missing_bars() -> None:
    e = np.arange(0, 600, 60, dtype=np.int64)  # 10 bars
    present = np.delete(e, [0, 3, 4, 9])
    assert missing_runs(e, present) == [(0, 0, 1), (180, 240, 2), (540, 540, 1)]
    assert missing_runs(e, np.empty(0, dtype=np.int64)) == [(0, 540, 10)]


def test_a_hole_across_the_night_is_one_gap() -> None:
    cal = MarketCalendar()
    start, end = datetime(2025, 10, 7, 19, 55, tzinfo=UTC), datetime(2025, 10, 8, 13, 35, tzinfo=UTC)
    expected = cal.expected_epochs(Interval.M1, start, end)
    assert expected.size == 10  # 19:55..19:59 and 13:30..13:34
    gaps = gaps_for("AAPL", Interval.M1, expected, np.empty(0, dtype=np.int64))
    assert len(gaps) == 1
    g = gaps[0]
    assert (g.start, g.end, g.missing_bars) == (start, datetime(2025, 10, 8, 13, 35, tzinfo=UTC), 10)
    assert g.as_dict() == {
        "symbol": "AAPL",
        "interval": "1m",
        "start": "2025-10-07T19:55:00Z",
        "end": "2025-10-08T13:35:00Z",
        "missing_bars": 10,
    }
