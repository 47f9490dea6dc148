"""The regular-session bar grid as a lookup table, shared by the HTTP vendor adapters.

Vendors such as Polygon and Alpaca send pre- and post-market bars with their intraday
aggregates; MDS models regular trading hours only (``mds.calendar``), so an adapter
keeps exactly the bars whose open time is on the calendar's grid. One dict lookup per
bar both filters and converts: the table maps the vendor's epoch number (seconds or
milliseconds) to the canonical aware-UTC ``datetime``, so no per-bar datetime is built.

Written by hand (no library maps vendor epochs onto an exchange grid); tables are
memoised per (interval, range), so a sweep of thousands of symbols over the same
range builds one table.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime

from mds.calendar import MarketCalendar
from mds.domain.models import Interval, ensure_utc


def session_grid(
    calendar: MarketCalendar, interval: Interval, start: datetime, end: datetime, *, scale: int = 1
) -> dict[int, datetime]:
    """``{epoch * scale: ts}`` for every regular-session bar with ``start <= ts < end``.

    Args:
        calendar: The exchange calendar.
        interval: An intraday interval (bars aligned to the session open).
        start: Range start (inclusive), aware.
        end: Range end (exclusive), aware.
        scale: 1 for epoch seconds, 1000 for the milliseconds Polygon sends.
    """
    t0 = math.ceil(ensure_utc(start).timestamp())
    t1 = math.ceil(ensure_utc(end).timestamp())
    return _grid(calendar, Interval(interval), t0, t1, scale)


@functools.lru_cache(maxsize=16)
def _grid(calendar: MarketCalendar, interval: Interval, t0: int, t1: int, scale: int) -> dict[int, datetime]:
    epochs = calendar.expected_epochs(interval, _utc(t0), _utc(t1)).tolist()
    return {e * scale: datetime.fromtimestamp(e, UTC) for e in epochs}


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


__all__ = ["session_grid"]
