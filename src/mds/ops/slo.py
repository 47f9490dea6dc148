"""SLO monitor: samples symbols per tier and sets slo_gap_violation_rate{tier,interval}.

Hand-written. A sampled symbol violates the continuity SLO when more expected, closed
bars are missing behind its cursor than the tier's cadence allows: twice the larger of
the bar interval and the sweep cadence (seed: "gap <= 2x interval"; a T1 symbol swept
every 300 s is not in violation just because its 1m bars arrive five at a time).

Every tier is sampled for every interval it collects: 1m where it has a ``bars_1m``
cadence, and daily bars wherever it has an ``eod`` cadence (T0 and T1 collect both, so a
T0 symbol whose 1m series is current but whose daily bars stopped is still found). A daily
series may trail by twice its eod cadence, in sessions; one with no daily bar at all is
counted from the sessions of the last ``_D1_LOOKBACK``.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Interval, Tier
from mds.ingest.ingestor import AUTO_SOURCE
from mds.observability.metrics import Metrics
from mds.storage.base import UniverseStore

log = logging.getLogger(__name__)

SAMPLE_SIZE = 200
#: How far back a daily series with no cursor yet is counted as behind (several sessions,
#: so it always exceeds the allowance and is a violation).
_D1_LOOKBACK = timedelta(days=14)


@dataclass(frozen=True)
class SloSample:
    tier: Tier
    interval: Interval
    sampled: int
    violations: int

    @property
    def rate(self) -> float:
        return self.violations / self.sampled if self.sampled else 0.0


class SloMonitor:
    def __init__(
        self,
        *,
        store: UniverseStore,
        calendar: MarketCalendar,
        clock: Clock,
        settings: Settings,
        metrics: Metrics,
        symbols_by_tier: Mapping[Tier, list[str]],
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self.settings = settings
        self.metrics = metrics
        self.symbols_by_tier = symbols_by_tier
        self._rng = rng or random.Random()

    def plans(self) -> list[tuple[Tier, Interval, int]]:
        """(tier, interval, bars allowed behind) for what each tier collects."""
        out = []
        for tier in Tier:
            c = self.settings.cadence(tier)
            if c.bars_1m:
                out.append((tier, Interval.M1, 2 * max(1, math.ceil(c.bars_1m / 60))))
            if c.eod:
                out.append((tier, Interval.D1, 2 * c.eod))
        return out

    async def sample_once(self) -> list[SloSample]:
        now = self.clock.now()
        samples = []
        for tier, interval, allowed in self.plans():
            symbols = self.symbols_by_tier.get(tier, [])
            if not symbols:
                continue
            picked = self._rng.sample(symbols, k=min(SAMPLE_SIZE, len(symbols)))
            violations = 0
            for symbol in picked:
                if await self.bars_behind(symbol, interval, now) > allowed:
                    violations += 1
            sample = SloSample(tier, interval, len(picked), violations)
            self.metrics.slo_gap_violation_rate.labels(tier=tier.value, interval=interval.value).set(
                sample.rate
            )
            if sample.rate > 0.005:
                log.warning("SLO: %s %s violation rate %.1f%%", tier.value, interval.value, sample.rate * 100)
            samples.append(sample)
        return samples

    async def bars_behind(self, symbol: str, interval: Interval, now: datetime) -> int:
        """Closed, expected bars newer than the symbol's cursor.

        Without a cursor: all of today's (intraday), or of the last ``_D1_LOOKBACK`` (daily).
        """
        cursor = await self.store.get_cursor(symbol, interval, AUTO_SOURCE)
        if cursor is not None:
            start = cursor.last_ts + interval.delta
        else:
            since = now - _D1_LOOKBACK if interval is Interval.D1 else now
            sessions = self.calendar.sessions(since.replace(hour=0, minute=0, second=0, microsecond=0), now)
            start = sessions[0].open if sessions else now
        if start >= now:
            return 0
        expected = self.calendar.expected_epochs(interval, start, now)
        closed = [
            t
            for t in expected.tolist()
            if self.calendar.bar_end(datetime.fromtimestamp(t, now.tzinfo), interval) <= now
        ]
        return len(closed)

    async def run(self) -> None:
        while True:
            try:
                await self.sample_once()
            except Exception:  # the monitor must outlive a bad sample
                log.exception("SLO sample failed")
            await self.clock.sleep(self.settings.SLO_SAMPLE_INTERVAL_SEC)
