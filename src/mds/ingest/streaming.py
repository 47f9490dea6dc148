"""Stream what a bar write changed: each new or revised recent 1m bar, and its 5m bucket.

Only bars a client could still be watching are streamed: those at or after the oldest bar
of a snapshot (``WS_REPLAY_MAX_BARS`` 1m bars back). A backfill of last year writes no
stream messages; a backfilled gap of ten minutes ago does, so a live client gets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mds.calendar import MarketCalendar
from mds.domain.models import Bar, Interval
from mds.services.rollup import bucket_start, rollup
from mds.services.stream_snapshot import window_start
from mds.storage.base import BarStore
from mds.stream.messages import bar_message
from mds.stream.publisher import StreamPublisher


class BarStreamer:
    def __init__(
        self, *, publisher: StreamPublisher, store: BarStore, calendar: MarketCalendar, max_bars: int
    ) -> None:
        self.publisher = publisher
        self.store = store
        self.calendar = calendar
        self.max_bars = max_bars

    def horizon(self, interval: Interval, now: datetime) -> datetime | None:
        """The oldest bar time worth streaming for a write of ``interval``; None: not streamed."""
        if interval is not Interval.M1:
            return None
        return window_start(self.calendar, Interval.M1, now, self.max_bars + 1)

    async def written(
        self, bars: Sequence[Bar], changed: Sequence[tuple[str, str, datetime]], now: datetime
    ) -> None:
        """Publish the ``changed`` bars of a write stamped ``now``, then their 5m buckets."""
        by_key = {(b.symbol, b.interval.value, b.ts): b for b in bars}  # the last of a key won
        buckets: dict[tuple[str, datetime], None] = {}
        for key in changed:
            bar = by_key.get(key)
            if bar is None or bar.interval is not Interval.M1:
                continue
            await self.publisher.publish(bar_message(bar.with_(as_of=now)))
            session = self.calendar.session_for(bar.ts)
            if session is not None:
                buckets[(bar.symbol, bucket_start(bar.ts, Interval.M5, session.open))] = None
        for symbol, start in buckets:
            minutes = await self.store.read_bars(symbol, Interval.M1, start, start + Interval.M5.delta)
            for rolled in rollup(minutes, Interval.M5, self.calendar, now):
                await self.publisher.publish(bar_message(rolled))
