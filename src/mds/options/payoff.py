"""Expiry payoff of a position built from option and stock legs, and its lognormal odds.

Every leg's value at expiry is piecewise linear in the underlying's final price ``S``
with kinks only at strikes, so the whole position's profit is too. Its extremes are
therefore found exactly by evaluating it at ``S = 0``, at every strike, and reading the
slope beyond the highest strike; its breakevens are where a linear piece crosses zero.
No root finder or grid is needed, and none is used.

All amounts are per ONE share of the underlying (a listed US equity option covers 100).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist

from mds.domain.models import OptionRight

#: Profit amounts within this of zero count as zero, so float noise in ``credit - width``
#: never opens a sliver of "profit" or splits one breakeven into two.
EPS = 1e-9

Interval = tuple[float, float]  # (low, high) of underlying prices; high may be math.inf

_STD_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of a position, per share.

    ``right`` and ``strike`` are None for a stock leg (the covered call's shares), whose
    ``contract`` is the underlying's symbol and ``price`` the spot it is bought at.
    ``side`` is +1 for long (bought, ``price`` paid) and -1 for short (sold, ``price``
    received); ``price`` itself is always non-negative.
    """

    contract: str
    right: OptionRight | None
    strike: float | None
    expiration: date | None
    side: int
    quantity: int
    price: float
    #: MDS's IV and delta of the contract (None for the stock leg).
    iv: float | None = None
    delta: float | None = None

    def __post_init__(self) -> None:
        if self.side not in (1, -1):
            raise ValueError(f"side must be +1 or -1, got {self.side}")
        if self.quantity < 1:
            raise ValueError(f"quantity must be at least 1, got {self.quantity}")
        if (self.right is None) != (self.strike is None):
            raise ValueError("a stock leg has neither right nor strike; an option leg has both")

    def profit_at(self, s: float) -> float:
        """This leg's profit per share at expiry if the underlying ends at ``s``."""
        if self.right is None or self.strike is None:
            value = s
        elif self.right is OptionRight.CALL:
            value = max(s - self.strike, 0.0)
        else:
            value = max(self.strike - s, 0.0)
        return self.side * self.quantity * (value - self.price)


@dataclass(frozen=True, slots=True)
class Profile:
    """A position's profit at expiry, summarised exactly.

    ``max_profit``/``max_loss`` are None when unlimited; ``max_loss`` is a non-negative
    amount (0 when the position cannot lose). ``profitable`` lists the disjoint open
    intervals of final prices where the profit is strictly positive, in order;
    ``breakevens`` are their finite, non-zero ends.
    """

    max_profit: float | None
    max_loss: float | None
    breakevens: tuple[float, ...]
    profitable: tuple[Interval, ...]


def profit_at(legs: Iterable[Leg], s: float) -> float:
    """The position's profit per share at expiry if the underlying ends at ``s``."""
    return sum(leg.profit_at(s) for leg in legs)


def profile(legs: Sequence[Leg]) -> Profile:
    """Max profit, max loss, breakevens and profitable ranges of ``legs`` at expiry."""
    kinks = sorted({leg.strike for leg in legs if leg.strike is not None and leg.strike > 0})
    points = [0.0, *kinks]
    values = [profit_at(legs, x) for x in points]
    # Beyond the highest strike only calls and shares still move with S.
    slope = sum(leg.side * leg.quantity for leg in legs if leg.right is not OptionRight.PUT)

    max_profit = None if slope > 0 else max(values)
    max_loss = None if slope < 0 else max(0.0, -min(values))

    # Cut the price axis at every kink and every zero crossing: on each resulting piece
    # the profit is linear and does not change sign, so its midpoint tells its sign.
    cuts = list(points)
    for i in range(len(points) - 1):
        (x0, x1), (v0, v1) = points[i : i + 2], values[i : i + 2]
        if _sign(v0) * _sign(v1) < 0:
            cuts.append(x0 + (x1 - x0) * v0 / (v0 - v1))
    last_x, last_v = points[-1], values[-1]
    if slope != 0 and _sign(last_v) * slope < 0:
        cuts.append(last_x - last_v / slope)
    cuts.sort()

    pieces = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
    pieces.append((cuts[-1], math.inf))
    profitable: list[Interval] = []
    for a, b in pieces:
        probe = a + 1.0 if b == math.inf else (a + b) / 2
        if profit_at(legs, probe) > EPS:
            if profitable and profitable[-1][1] == a:
                profitable[-1] = (profitable[-1][0], b)  # touching pieces are one range
            else:
                profitable.append((a, b))

    breakevens = tuple(x for lo, hi in profitable for x in (lo, hi) if 0 < x < math.inf)
    return Profile(max_profit, max_loss, breakevens, tuple(profitable))


def lognormal_probability(intervals: Iterable[Interval], *, forward: float, sigma: float, t: float) -> float:
    """P(S_T in any of ``intervals``) when ln S_T ~ N(ln F - σ²t/2, σ²t).

    That is Black-Scholes' risk-neutral law: the final price is lognormal with mean
    ``forward`` and volatility ``sigma`` over ``t`` years. Intervals must be disjoint.
    """
    if forward <= 0 or sigma <= 0 or t <= 0:
        raise ValueError(f"forward, sigma and t must be positive, got {forward}, {sigma}, {t}")
    sd = sigma * math.sqrt(t)

    def cdf(x: float) -> float:
        if x <= 0:
            return 0.0
        if x == math.inf:
            return 1.0
        return _STD_NORMAL.cdf((math.log(x / forward) + sd * sd / 2) / sd)

    return sum(cdf(hi) - cdf(lo) for lo, hi in intervals)


def _sign(v: float) -> int:
    return 0 if abs(v) <= EPS else (1 if v > 0 else -1)
