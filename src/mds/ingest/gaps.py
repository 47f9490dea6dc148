"""Gap logic: which expected bars are missing, as contiguous ranges.

Hand-written (no library knows MDS's calendar-relative notion of a hole): a gap is a
maximal run of consecutive *expected* bar times (per the exchange calendar) that the
store does not hold, so a run that spans a night or a weekend is still one gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from mds.domain.models import Interval


@dataclass(frozen=True, slots=True)
class Gap:
    symbol: str
    interval: Interval
    start: datetime  # first missing bar's ts
    end: datetime  # exclusive: last missing bar's ts + interval
    missing_bars: int

    def as_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "interval": self.interval.value,
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "end": self.end.isoformat().replace("+00:00", "Z"),
            "missing_bars": self.missing_bars,
        }


def missing_runs(expected: np.ndarray, present: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of ``expected`` epochs absent from ``present``: (first_epoch, last_epoch, count).

    Both arrays hold int64 epoch seconds; ``expected`` ascending and unique.
    """
    if expected.size == 0:
        return []
    have = np.isin(expected, present, assume_unique=False)
    if have.all():
        return []
    miss = ~have
    # Run boundaries: where the missing flag switches on and off along expected order.
    edges = np.diff(np.concatenate(([False], miss, [False])).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # exclusive index
    return [(int(expected[a]), int(expected[b - 1]), int(b - a)) for a, b in zip(starts, stops, strict=True)]


def gaps_for(symbol: str, interval: Interval, expected: np.ndarray, present: np.ndarray) -> list[Gap]:
    step = interval.seconds
    return [
        Gap(
            symbol=symbol,
            interval=interval,
            start=datetime.fromtimestamp(first, UTC),
            end=datetime.fromtimestamp(last + step, UTC),
            missing_bars=count,
        )
        for first, last, count in missing_runs(expected, present)
    ]
