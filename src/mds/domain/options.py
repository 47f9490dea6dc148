"""Option chains as MDS serves them: vendor quotes priced with MDS's own IV, and the metrics.

``OptionQuote`` (in :mod:`mds.domain.models`) is what a vendor said. A ``PricedContract``
adds what MDS computed from it (mid, time to expiry, IV, delta, or the reason the IV is
null); a ``Chain`` is one underlying's contracts priced against one spot and one rate.
``OptionsMetricRow`` is one point-in-time row of the ``options_metrics`` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum

from mds.domain.models import OptionQuote, OptionRight


class IvReason(str, Enum):
    """Why a contract's IV is null: never a garbage number in its place."""

    NO_BID = "no_bid"  # bid missing or zero: the mid is not a price anyone would pay
    NO_ASK = "no_ask"
    BELOW_INTRINSIC = "below_intrinsic"  # mid below the forward intrinsic value: no volatility prices it
    ABOVE_MAXIMUM = "above_maximum"  # mid above the no-arbitrage bound (the forward for a call)
    #: The mid's time value (mid − intrinsic) is less than half the bid-ask spread: the quote
    #: cannot tell a volatility apart from the spread (deep in the money, near expiry).
    SPREAD_EXCEEDS_TIME_VALUE = "spread_exceeds_time_value"
    EXPIRED = "expired"  # no time left
    NO_SOLUTION = "no_solution"  # the solver could not settle on a volatility


@dataclass(frozen=True, slots=True)
class PricedContract:
    """A vendor's contract quote with MDS's own mid, IV and delta."""

    quote: OptionQuote
    #: (bid + ask) / 2 when both are quoted and bid > 0, else None.
    mid: float | None
    #: Years to expiry (ACT/365) from the chain's ``as_of`` to the expiration's close.
    t: float
    iv: float | None
    #: Black-Scholes delta on the forward with ``iv`` (None where ``iv`` is None).
    delta: float | None
    iv_reason: IvReason | None = None

    @property
    def right(self) -> OptionRight:
        return self.quote.right

    @property
    def strike(self) -> float:
        return self.quote.strike

    @property
    def expiration(self) -> date:
        return self.quote.expiration


@dataclass(frozen=True)
class Chain:
    """One underlying's option chain priced at one moment.

    ``rate`` is the continuously compounded risk-free rate used (``rate_source`` says
    where it came from: ``DGS3MO`` when that macro series is stored, else the
    ``RISK_FREE_RATE`` setting); ``dividend_yield`` is 0 unless known.
    """

    symbol: str
    as_of: datetime
    spot: float
    rate: float
    rate_source: str
    provider: str
    contracts: list[PricedContract]
    dividend_yield: float = 0.0
    #: Contracts the vendor sent that were unfit (crossed, negative, no strike): dropped.
    dropped: int = 0
    expirations: list[date] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OptionsMetricRow:
    """One row of ``options_metrics``: a metric's value for a tenor, known at ``as_of``.

    ``tenor`` names what the value is for: ``30d`` for constant-maturity values, an
    expiration date ``YYYY-MM-DD`` for per-expiration ones, ``""`` when none applies.
    ``source`` is the provider whose chain it was computed from.
    """

    symbol: str
    as_of: datetime
    metric: str
    tenor: str
    value: float | None
    source: str
