"""What a stream client gets first: the recent bars from the store and the latest quote.

The snapshot is read from the store, the record, not from the replay log: after a restart
or a Redis flush the log is empty, but the last ``WS_REPLAY_MAX_BARS`` bars are still known.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mds.calendar import MarketCalendar
from mds.corporate.adjust import Adjust
from mds.domain.clock import Clock
from mds.domain.models import Bar, Interval
from mds.providers.timeconv import local_date
from mds.serialize import bar_json, quote_json
from mds.services.adjustments import Adjustments
from mds.services.rollup import rollup
from mds.storage.base import BarStore
from mds.stream.messages import QUOTES

_DAY = timedelta(days=1)
#: Calendar days searched back for enough closed bars (a long weekend plus holidays fit in 7).
_LOOKBACKS_DAYS = (4, 10, 40)


def window_start(calendar: MarketCalendar, interval: Interval, now: datetime, bars: int) -> datetime:
    """Open time of the oldest of the last ``bars`` bars of ``interval`` that opened before ``now``.

    Whole days bound the calendar query, so every call in a day shares one cached answer.
    """
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    cut = int(now.timestamp())
    for days in _LOOKBACKS_DAYS:
        opened = calendar.expected_epochs(interval, today - days * _DAY, today + _DAY)
        opened = opened[opened < cut]
        if len(opened) >= bars:
            return datetime.fromtimestamp(int(opened[-bars]), UTC)
    return today - _LOOKBACKS_DAYS[-1] * _DAY


class Snapshots:
    def __init__(
        self,
        *,
        store: BarStore,
        calendar: MarketCalendar,
        clock: Clock,
        max_bars: int,
        adjustments: Adjustments | None = None,
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self.max_bars = max_bars
        self.adjustments = adjustments

    async def take(
        self, symbol: str, interval: str, channels: frozenset[str], adjust: str = "raw"
    ) -> dict[str, Any]:
        """``interval``, ``bars`` (the last ``max_bars`` closed bars, then the open one if any;
        5m rolled up from 1m, adjusted by ``adjust``), ``adjustment`` when asked for, and
        ``quote`` (the newest stored, or None), as message fields."""
        now = self.clock.now()
        iv = Interval(interval)
        start = window_start(self.calendar, iv, now, self.max_bars + 1)
        minutes = await self.store.read_bars(symbol, Interval.M1, start, now + Interval.M1.delta)
        bars = rollup(minutes, iv, self.calendar, now)
        closed = [b for b in bars if self._closed(b, now)][-self.max_bars :]
        opened = [b for b in bars if not self._closed(b, now)][-1:]
        quote = await self.store.latest_quote(symbol) if QUOTES in channels else None
        out: dict[str, Any] = {"interval": iv.value}
        bars = [*closed, *opened]
        if adjust != Adjust.RAW.value and self.adjustments is not None:
            adjustment = await self.adjustments.plan(
                symbol, Adjust(adjust), as_of=None, through=local_date(now)
            )
            bars = adjustment.apply(bars)
            out["adjustment"] = adjustment.describe()
        out["bars"] = [bar_json(b) for b in bars]
        out["quote"] = quote_json(quote) if quote is not None else None
        return out

    def _closed(self, bar: Bar, now: datetime) -> bool:
        return self.calendar.bar_end(bar.ts, bar.interval) <= now
