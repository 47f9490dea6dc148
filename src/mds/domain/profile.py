"""Company profiles: market capitalisation and the facts that go with it, point in time.

A vendor's profile of a symbol (FMP ``/stable/profile``, Finnhub ``stock/profile2``, the
sim) says what the company is worth and how many shares it has. Market capitalisation moves
with the price, so every refresh is kept: MDS stores each profile with the time it learned
it (``as_of``) and reads the newest one learned at or before a given time.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime

__all__ = ["CompanyProfile", "format_market_cap"]


@dataclass(frozen=True, slots=True)
class CompanyProfile:
    """What one provider says about one symbol.

    ``market_cap`` is in ``currency`` (whole units, not millions: adapters of vendors that
    report millions multiply); ``shares_outstanding`` in shares. Either may be None when the
    vendor does not say (an ETF has no market cap at most vendors). ``provider`` is who said
    it; ``as_of`` is when MDS learned it (set by the store on write, None on what an adapter
    returns).
    """

    symbol: str
    provider: str
    market_cap: float | None = None
    shares_outstanding: float | None = None
    currency: str = ""
    name: str = ""
    sector: str = ""
    industry: str = ""
    exchange: str = ""
    as_of: datetime | None = None

    def problems(self) -> list[str]:
        """Why this profile is unfit to store; empty when it is fine."""
        out = []
        if not self.symbol:
            out.append("no symbol")
        for field in ("market_cap", "shares_outstanding"):
            value = getattr(self, field)
            if value is not None and (not math.isfinite(value) or value < 0):
                out.append(f"{field} {value!r} is not a finite, non-negative number")
        if self.market_cap is None and self.shares_outstanding is None and not self.name:
            out.append("says nothing: no market cap, share count or name")
        return out

    def learned(self, as_of: datetime) -> CompanyProfile:
        return dataclasses.replace(self, as_of=as_of)


def format_market_cap(value: float, currency: str = "") -> str:
    """``2.95T USD``, ``812.4B``, ``45.1M``: three significant figures, the way screens show it."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            text = f"{value / scale:.3g}{suffix}"
            break
    else:
        text = f"{value:.0f}"
    return f"{text} {currency}" if currency else text
