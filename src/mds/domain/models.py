"""Bars, quotes, intervals, tiers and capabilities.

Timestamp convention (DESIGN.md): a bar's ``ts`` is the UTC open time of its
interval; a daily bar's ``ts`` is its session's open (13:30Z or 14:30Z on XNYS).
Ranges are ``start <= ts < end`` everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import NamedTuple


class Interval(str, Enum):
    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    D1 = "1d"

    @property
    def seconds(self) -> int:
        return _INTERVAL_SECONDS[self]

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def is_intraday(self) -> bool:
        return self is not Interval.D1


_INTERVAL_SECONDS = {
    Interval.M1: 60,
    Interval.M5: 300,
    Interval.M15: 900,
    Interval.H1: 3600,
    Interval.D1: 86400,
}


class Tier(str, Enum):
    """Liquidity tiers: T0 most liquid (fastest cadence, first to backfill), T2 the rest."""

    T0 = "T0"
    T1 = "T1"
    T2 = "T2"

    @property
    def rank(self) -> int:
        return int(self.value[1])


class Capability(str, Enum):
    """What a provider can be asked for; routing policies are per capability."""

    BARS_1M = "bars_1m"
    EOD = "eod"
    QUOTES_L1 = "quotes_l1"
    OPTIONS_CHAIN = "options_chain"
    BARS_5M = "bars_5m"  # native 5m bars, for tracked symbols that have no 1m series
    MACRO = "macro"  # economic series with their release history (FRED/ALFRED)
    CORPORATE_ACTIONS = "corporate_actions"  # splits and cash dividends
    PROFILE = "profile"  # company profile: market capitalisation, shares outstanding


def capability_for_interval(interval: Interval) -> Capability:
    """The capability a fetch of ``interval`` bars is routed by.

    Daily bars route by eod and native 5m bars by bars_5m (POLICY_BARS_5M: tracked
    symbols without a 1m series). 1m bars, and 15m/1h which nothing fetches natively,
    route by bars_1m. Reads of 5m/15m/1h are rolled up from stored 1m bars and route
    nothing.
    """
    if interval is Interval.D1:
        return Capability.EOD
    if interval is Interval.M5:
        return Capability.BARS_5M
    return Capability.BARS_1M


class BarStatus(str, Enum):
    PROVISIONAL = "provisional"  # interval still open, or the vendor may still revise it
    FINAL = "final"


def ensure_utc(ts: datetime) -> datetime:
    """Refuse naive datetimes instead of guessing their zone; convert aware ones to UTC."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"naive datetime {ts.isoformat()} has no time zone")
    return ts.astimezone(UTC)


class Bar(NamedTuple):
    """One OHLCV bar as a provider delivered it (immutable).

    A NamedTuple rather than a frozen dataclass: it is built ~4x faster, which matters on
    the parse path (a year of 1m bars is ~98k of them per symbol).

    ``as_of`` is when MDS learned it (set by the ingest layer from the Clock);
    ``adjusted`` records whether the vendor's prices are split/dividend adjusted.
    """

    symbol: str
    interval: Interval
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    provider: str
    adjusted: bool = False
    status: BarStatus = BarStatus.FINAL
    as_of: datetime | None = None

    @property
    def end(self) -> datetime:
        """Nominal end of the interval (a session's close can cut the last bar short)."""
        return self.ts + self.interval.delta

    def values(self) -> tuple[float, float, float, float, float]:
        return (self.open, self.high, self.low, self.close, self.volume)

    def problems(self) -> list[str]:
        """What is inconsistent about this bar; an empty list means it may be stored."""
        out: list[str] = []
        vals = self.values()
        if any(not isinstance(v, (int, float)) or math.isnan(v) or math.isinf(v) for v in vals):
            return [f"non-finite value in {vals}"]
        if self.high < self.low:
            out.append(f"high {self.high} < low {self.low}")
        if not (self.low <= self.open <= self.high):
            out.append(f"open {self.open} outside [{self.low}, {self.high}]")
        if not (self.low <= self.close <= self.high):
            out.append(f"close {self.close} outside [{self.low}, {self.high}]")
        if self.volume < 0:
            out.append(f"negative volume {self.volume}")
        if self.low <= 0:
            out.append(f"non-positive price {self.low}")
        if self.ts.tzinfo is None:
            out.append("naive timestamp")
        return out

    def with_(self, **changes: object) -> Bar:
        return self._replace(**changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Quote:
    """A level-1 quote. ``ts`` is the vendor's quote time in UTC."""

    symbol: str
    ts: datetime
    bid: float | None
    ask: float | None
    last: float
    bid_size: float | None = None
    ask_size: float | None = None
    provider: str = ""
    as_of: datetime | None = None


class OptionRight(str, Enum):
    CALL = "call"
    PUT = "put"


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """One contract of an option chain as a vendor quoted it."""

    underlying: str
    contract: str  # OCC symbol, e.g. AAPL250117C00150000
    expiration: date
    strike: float
    right: OptionRight
    bid: float | None
    ask: float | None
    last: float | None
    volume: float | None
    open_interest: float | None
    implied_volatility: float | None
    ts: datetime | None
    provider: str
    #: The underlying's price the vendor quoted beside the chain, where it gives one.
    underlying_price: float | None = None
