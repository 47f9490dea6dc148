"""The ``sim`` provider: the deterministic SimMarket behind a vendor-like interface.

It behaves like a real adapter, faults included: it answers what a vendor would know
at the clock's ``now`` (provisional bar for the open interval, nothing from the
future), and ``SimFaults`` make it slow, down, throttled, lossy or corrupt on demand.
Several instances (``sim``, ``sim_backup``) share one SimMarket, so they agree on the
ground truth and differ only in how they fail. Like a vendor, it has nothing for a symbol
before its listing (:data:`~mds.providers.sim.market.SIM_LISTINGS`): an empty answer.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import date, datetime

from mds.domain import work
from mds.domain.actions import CorporateAction
from mds.domain.clock import Clock
from mds.domain.macro import MacroObservation
from mds.domain.models import Bar, Capability, Interval, OptionQuote, Quote, ensure_utc
from mds.domain.profile import CompanyProfile
from mds.providers.base import validate_bars, validate_profile
from mds.providers.sim.faults import FaultInjector, SimFaults
from mds.providers.sim.macro import SIM_MACRO_EPOCH, sim_macro_observations
from mds.providers.sim.market import SIM_LISTINGS, SimMarket, listing_open
from mds.providers.sim.options import sim_option_chain
from mds.providers.sim.profile import market_profile
from mds.providers.timeconv import NEW_YORK
from mds.routing.timing import transport

__all__ = ["SimProvider"]


class SimProvider:
    """A synthetic provider with injectable faults.

    Args:
        name: Provider name; must start with ``"sim"`` so synthetic data is always labelled.
        market: The shared ground truth.
        clock: Decides what "now" is for outages, rate limits and what the vendor knows.
        faults: How this instance misbehaves.
        rng_seed: Seed of this instance's fault draws (None: fresh each process); successive
            responses still draw differently.
        listings: Symbol -> first trading day; no bar of a symbol is served before it.
    """

    capabilities = frozenset(
        {
            Capability.BARS_1M,
            Capability.BARS_5M,
            Capability.EOD,
            Capability.QUOTES_L1,
            Capability.OPTIONS_CHAIN,
            Capability.MACRO,
            Capability.CORPORATE_ACTIONS,
            Capability.PROFILE,
        }
    )
    #: The simulated exchange (latency, faults) is wrapped in ``transport()``.
    times_transport = True

    def __init__(
        self,
        name: str,
        market: SimMarket,
        clock: Clock,
        faults: SimFaults,
        *,
        rng_seed: int | None = None,
        respect_limit: bool = False,
        live_reserved_share: float = 0.0,
        listings: Mapping[str, date] = SIM_LISTINGS,
    ) -> None:
        if not name.startswith("sim"):
            raise ValueError(f"a sim provider's name must start with 'sim' (got {name!r})")
        self.name = name
        self.market = market
        self.listings = listings
        self.clock = clock
        self.faults = faults
        self.injector = FaultInjector(name, faults, rng_seed=rng_seed)
        # Like a vendor adapter's client-side limiter, but in clock time (the sim counts its
        # limit on the clock); 98% of the limit leaves room for calls still in flight.
        # Backfills also take a slot of their own, smaller window, so live calls keep
        # ``live_reserved_share`` of the budget (LIVE_RESERVED_RATE_SHARE).
        limit = faults.rate_limit_per_min
        self._budget = ClockWindow(clock, max(1, int(limit * 0.98))) if respect_limit and limit else None
        self._backfill_budget = (
            ClockWindow(clock, max(1, int(limit * 0.98 * (1.0 - live_reserved_share))))
            if self._budget is not None and limit and live_reserved_share > 0
            else None
        )

    @property
    def configured(self) -> bool:
        """Always True: the sim needs no key."""
        return True

    async def fetch_bars(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
        """Bars with ``start <= ts < end`` as known at the clock's now, in time order.

        Raises:
            Unavailable: inside an outage (code 503) or on a random error (code 500).
            RateLimited: beyond ``rate_limit_per_min`` calls in 60 s of clock time.
            BadPayload: when a corrupted bar was injected (raised by ``validate_bars``).
        """
        interval = Interval(interval)
        start, end = ensure_utc(start), ensure_utc(end)
        await self._take_budget()
        async with transport(self.name):
            now = await self.injector.admit(self.clock)
        listed = listing_open(symbol, self.market.calendar, self.listings)
        # Nothing before the listing: a range wholly before it gets an empty answer.
        first = start if listed is None else max(start, listed)
        bars = self.market.bars_known_at(symbol, interval, first, end, now, provider=self.name)
        bars = self.injector.degrade(bars)
        return validate_bars(self.name, bars, symbol=symbol, interval=interval, start=start, end=end)

    async def fetch_quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """One quote per symbol at the clock's now (outage/rate/error faults apply)."""
        await self._take_budget()
        async with transport(self.name):
            now = await self.injector.admit(self.clock)
        return [self.market.quote(s, now, provider=self.name) for s in symbols]

    async def fetch_options_chain(
        self, symbol: str, expiration: date | None = None, *, until: date | None = None
    ) -> list[OptionQuote]:
        """``symbol``'s option chain at the clock's now, priced from the sim's volatility surface
        (one expiration, or all listed when None; outage/rate/error faults apply)."""
        await self._take_budget()
        async with transport(self.name):
            now = await self.injector.admit(self.clock)
        chain = sim_option_chain(self.market, symbol, now, expiration=expiration, provider=self.name)
        return chain if until is None else [q for q in chain if q.expiration <= until]

    async def fetch_macro_series(
        self,
        series: str,
        *,
        start: date | None = None,
        end: date | None = None,
        vintages: bool = False,
    ) -> list[MacroObservation]:
        """The sim's macro series as published by the clock's today (NoData for a series the
        sim does not know; outage/rate/error faults apply)."""
        await self._take_budget()
        async with transport(self.name):
            now = await self.injector.admit(self.clock)
        today = now.astimezone(NEW_YORK).date()
        return sim_macro_observations(
            series,
            start=start or SIM_MACRO_EPOCH,
            end=end or today,
            today=today,
            seed=self.market.seed,
            vintages=vintages,
            provider=self.name,
        )

    async def fetch_corporate_actions(self, symbol: str, start: date, end: date) -> list[CorporateAction]:
        """The sim's splits and dividends of ``symbol`` with ``start <= ex_date <= end``, as
        announced by the clock's now (each is known from its declared date on; outage/rate/
        error faults apply), by ex_date."""
        await self._take_budget()
        async with transport(self.name):
            now = await self.injector.admit(self.clock)
        return [
            dataclasses.replace(a, source=self.name)
            for a in self.market.actions_known_at(symbol, start, end, now)
        ]

    async def fetch_profile(self, symbol: str) -> CompanyProfile:
        """``symbol``'s sim profile priced at the clock's now (outage/rate/error faults apply)."""
        await self._take_budget()
        async with transport(self.name):
            now = await self.injector.admit(self.clock)
        return validate_profile(
            self.name, market_profile(self.market, symbol, now, provider=self.name), symbol=symbol
        )

    async def _take_budget(self) -> None:
        if self._backfill_budget is not None and work.is_backfill():
            await self._backfill_budget.acquire()
        if self._budget is not None:
            await self._budget.acquire()

    async def aclose(self) -> None:
        """Nothing to release."""


class ClockWindow:
    """At most ``limit`` acquisitions in any 60 seconds of clock time; waits for a slot.

    Hand-written because the `limits` library counts wall time, and a simulated clock
    runs faster than that.
    """

    def __init__(self, clock: Clock, limit: int, window: float = 60.0) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self._taken: deque[float] = deque()

    async def acquire(self) -> None:
        while True:
            t = self.clock.now().timestamp()
            while self._taken and self._taken[0] <= t - self.window:
                self._taken.popleft()
            if len(self._taken) < self.limit:
                self._taken.append(t)
                return
            await self.clock.sleep(self._taken[0] + self.window - t + 0.001)
