"""What a vendor format module gets to answer requests: the market, the clock and faults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime

from mds.domain.actions import CorporateAction
from mds.domain.clock import Clock
from mds.domain.models import Bar, Interval, Quote
from mds.domain.profile import CompanyProfile
from mds.providers.sim.faults import FaultInjector
from mds.providers.sim.market import SimMarket
from mds.providers.sim.profile import market_profile


@dataclass
class SimContext:
    market: SimMarket
    clock: Clock
    injector: FaultInjector
    provider: str = "sim"

    async def admit(self) -> datetime:
        """Apply latency/outage/rate/error faults; raises the typed error the format renders."""
        return await self.injector.admit(self.clock)

    def bars(
        self, symbol: str, interval: Interval, start: datetime, end: datetime, now: datetime
    ) -> list[Bar]:
        """What the vendor knows at ``now``, with missing and corrupted bars injected."""
        bars = self.market.bars_known_at(symbol, interval, start, end, now, provider=self.provider)
        return self.injector.degrade(bars)

    def quote(self, symbol: str, now: datetime) -> Quote:
        return self.market.quote(symbol, now, provider=self.provider)

    def actions(self, symbol: str, start: date, end: date, now: datetime) -> list[CorporateAction]:
        """The splits and dividends the vendor has announced by ``now``, by ex-date."""
        known = self.market.actions_known_at(symbol, start, end, now)
        return [dataclasses.replace(a, source=self.provider) for a in known]

    def profile(self, symbol: str, now: datetime) -> CompanyProfile:
        """The sim's profile of ``symbol`` at ``now``. The wire formats do not say who
        answered, so a context named after a vendor still labels it sim."""
        label = self.provider if self.provider.startswith("sim") else "sim"
        return market_profile(self.market, symbol, now, provider=label)
