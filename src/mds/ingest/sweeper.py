"""The local sweeper: turns tier cadences into live jobs (USE_RLC=false mode).

Bars are swept while the market is open and once more after each close; quotes only
while it is open; end-of-day bars once every CADENCE_T*__eod sessions, after the close.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.jobs import BarsFetchJob, QuotesFetchJob, TimeWindow
from mds.domain.models import Interval, Tier
from mds.queue.base import AnyJob, JobQueue

log = logging.getLogger(__name__)

_SYMBOLS_PER_JOB = 100
_EOD_WINDOW = timedelta(days=10)


def _slot(t: datetime, every: int) -> int:
    return int(t.timestamp() // every)


def _chunks(items: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class Sweeper:
    def __init__(
        self,
        *,
        queue: JobQueue,
        settings: Settings,
        clock: Clock,
        calendar: MarketCalendar,
        symbols_by_tier: Mapping[Tier, list[str]],
    ) -> None:
        self.queue = queue
        self.settings = settings
        self.clock = clock
        self.calendar = calendar
        self.symbols_by_tier = symbols_by_tier
        self._last: dict[tuple[Tier, str], datetime] = {}
        self._eod_close: dict[Tier, datetime] = {}

    def due(self, now: datetime) -> list[AnyJob]:
        """The jobs that are due at ``now``; marks them as swept."""
        jobs: list[AnyJob] = []
        is_open = self.calendar.is_open(now)
        prev_close = self.calendar.previous_close(now)
        for tier in Tier:
            symbols = self.symbols_by_tier.get(tier, [])
            if not symbols:
                continue
            cadence = self.settings.cadence(tier)
            if cadence.bars_1m and self._is_due(tier, "bars_1m", now, cadence.bars_1m):
                last = self._last.get((tier, "bars_1m"))
                # After the close, one more sweep picks up the session's last bars.
                if is_open or last is None or last < prev_close:
                    self._last[(tier, "bars_1m")] = now
                    jobs += self._bars_jobs(tier, symbols, now)
            if cadence.quotes_l1 and is_open and self._is_due(tier, "quotes_l1", now, cadence.quotes_l1):
                self._last[(tier, "quotes_l1")] = now
                jobs += [
                    QuotesFetchJob(symbols=chunk, priority=tier)
                    for chunk in _chunks(symbols, _SYMBOLS_PER_JOB)
                ]
            if cadence.eod and self._eod_due(tier, prev_close, cadence.eod):
                self._eod_close[tier] = prev_close
                window = TimeWindow(start=now - _EOD_WINDOW, end=now)
                jobs += [
                    BarsFetchJob(symbols=chunk, interval=Interval.D1, time_window=window, priority=tier)
                    for chunk in _chunks(symbols, _SYMBOLS_PER_JOB)
                ]
        return jobs

    async def run(self) -> None:
        while True:
            now = self.clock.now()
            jobs = self.due(now)
            for job in jobs:
                await self.queue.put(job)
            await self.clock.sleep(self._sleep_seconds(self.clock.now()))

    def _bars_jobs(self, tier: Tier, symbols: list[str], now: datetime) -> list[AnyJob]:
        end = now.replace(second=0, microsecond=0)
        window = TimeWindow(start=end - timedelta(minutes=self.settings.LIVE_MAX_WINDOW_MINUTES), end=end)
        return [
            BarsFetchJob(symbols=chunk, interval=Interval.M1, time_window=window, priority=tier)
            for chunk in _chunks(symbols, _SYMBOLS_PER_JOB)
        ]

    def _is_due(self, tier: Tier, kind: str, now: datetime, every: int) -> bool:
        """Due once per slot of the cadence grid (multiples of ``every`` since the epoch).

        On the grid, a 60 s sweep runs just after each minute closes, so the bar that just
        closed is fetched within a tick; "``every`` seconds since the last sweep" drifted
        by up to a tick per sweep and fetched it up to a cadence later.
        """
        last = self._last.get((tier, kind))
        return last is None or _slot(now, every) != _slot(last, every)

    def _eod_due(self, tier: Tier, prev_close: datetime, every_sessions: int) -> bool:
        last = self._eod_close.get(tier)
        if last is None:
            return True
        if prev_close <= last:
            return False
        passed = len(self.calendar.sessions(last, prev_close))
        return passed >= every_sessions

    def _cadences(self) -> list[int]:
        return [
            v for tier in Tier for v in self.settings.cadence(tier).model_dump(exclude={"eod"}).values() if v
        ]

    def _sleep_seconds(self, now: datetime) -> float:
        """Until the next cadence slot begins, so sweeps start on the grid; at most a
        quarter of the shortest cadence (end-of-day checks), and never spinning faster
        than 20 Hz of wall time."""
        cadences = self._cadences()
        t = now.timestamp()
        until_slot = min((every - t % every for every in cadences), default=60.0) + 0.001
        return max(min(until_slot, self._tick_seconds()), 0.05 * self.clock.speed)

    def _tick_seconds(self) -> float:
        return min(self._cadences(), default=60) / 4
