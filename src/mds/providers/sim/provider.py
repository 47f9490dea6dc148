"""The ``sim`` provider: the deterministic SimMarket behind a vendor-like interface.

It behaves like a real adapter, faults included: it answers what a vendor would know
at the clock's ``now`` (provisional bar for the open interval, nothing from the
future), and ``SimFaults`` make it slow, down, throttled, lossy or corrupt on demand.
Several instances (``sim``, ``sim_backup``) share one SimMarket, so they agree on the
ground truth and differ only in how they fail.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Sequence
from datetime import datetime

from mds.domain.clock import Clock
from mds.domain.models import Bar, Capability, Interval, Quote, ensure_utc
from mds.errors import RateLimited, Unavailable
from mds.providers.base import validate_bars
from mds.providers.sim.faults import SimFaults
from mds.providers.sim.market import SimMarket

__all__ = ["SimProvider"]

_WINDOW = 60.0  # seconds of clock time the rate limit counts over


class SimProvider:
    """A synthetic provider with injectable faults.

    Args:
        name: Provider name; must start with ``"sim"`` so synthetic data is always labelled.
        market: The shared ground truth.
        clock: Decides what "now" is for outages, rate limits and what the vendor knows.
        faults: How this instance misbehaves.
        rng_seed: Seed of this instance's fault draws (None: fresh each process); successive
            responses still draw differently.
    """

    capabilities = frozenset({Capability.BARS_1M, Capability.EOD, Capability.QUOTES_L1})

    def __init__(
        self,
        name: str,
        market: SimMarket,
        clock: Clock,
        faults: SimFaults,
        *,
        rng_seed: int | None = None,
    ) -> None:
        if not name.startswith("sim"):
            raise ValueError(f"a sim provider's name must start with 'sim' (got {name!r})")
        self.name = name
        self.market = market
        self.clock = clock
        self.faults = faults
        self._rng = random.Random(rng_seed)
        self._calls: deque[float] = deque()  # clock times (epoch s) of admitted calls

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
        now = await self._admit()
        bars = self.market.bars_known_at(symbol, interval, start, end, now, provider=self.name)
        bars = self._drop_missing(bars)
        bars = self._maybe_corrupt(bars)
        return validate_bars(self.name, bars, symbol=symbol, interval=interval, start=start, end=end)

    async def fetch_quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """One quote per symbol at the clock's now (outage/rate/error faults apply)."""
        now = await self._admit()
        return [self.market.quote(s, now, provider=self.name) for s in symbols]

    async def aclose(self) -> None:
        """Nothing to release."""

    # -- faults, in the order a real vendor would show them ----------------------------

    async def _admit(self) -> datetime:
        """Latency, outage, rate limit, random error; return the clock's now if admitted."""
        if self.faults.latency_ms > 0:
            # Real time on purpose: latency is what the router's timers measure.
            await asyncio.sleep(self.faults.latency_ms / 1000.0)
        now = self.clock.now()
        if self.faults.in_outage(now):
            raise Unavailable(self.name, "simulated outage", code="503")
        self._check_rate(now.timestamp())
        if self.faults.error_rate > 0 and self._rng.random() < self.faults.error_rate:
            raise Unavailable(self.name, "simulated server error", code="500")
        return now

    def _check_rate(self, t: float) -> None:
        limit = self.faults.rate_limit_per_min
        if limit is None:
            return
        while self._calls and self._calls[0] <= t - _WINDOW:
            self._calls.popleft()
        if len(self._calls) >= limit:
            # The oldest admitted call leaves the window first; that frees the next slot.
            retry_after = max(1.0, math.ceil(self._calls[0] + _WINDOW - t))
            raise RateLimited(self.name, f"more than {limit} calls per minute", retry_after=retry_after)
        self._calls.append(t)

    def _drop_missing(self, bars: list[Bar]) -> list[Bar]:
        rate = self.faults.missing_rate
        if rate <= 0:
            return bars
        return [b for b in bars if self._rng.random() >= rate]

    def _maybe_corrupt(self, bars: list[Bar]) -> list[Bar]:
        rate = self.faults.malformed_rate
        if rate <= 0 or not bars or self._rng.random() >= rate:
            return bars
        i = self._rng.randrange(len(bars))
        # Two ways vendors really get it wrong: inconsistent OHLC, and NaN in a field.
        if self._rng.random() < 0.5:
            bad = bars[i].with_(high=bars[i].low - 0.01)
        else:
            bad = bars[i].with_(close=math.nan)
        return [*bars[:i], bad, *bars[i + 1 :]]
