"""Candidate option positions built from a priced chain, for ``/options/{symbol}/strategies``.

What is built, per expiration (each bounded, so a call never weighs more than
:data:`MAX_CANDIDATES` positions before sorting and the ``limit``):

- ``covered_call``: 1 share bought at spot + 1 short OTM call with delta 0.15-0.45.
- ``cash_secured_put``: 1 short OTM put with |delta| 0.15-0.45 (cash = strike).
- ``vertical``: credit spreads only, both directions: a bull put spread (short OTM put,
  |delta| 0.15-0.45, long the put 1, 2 or 3 listed strikes lower) and a bear call spread
  (short OTM call, delta 0.15-0.45, long the call 1, 2 or 3 strikes higher). The debit
  spread on the same strikes has the same payoff shape up to put-call parity.
- ``straddle``: long call + long put at the strike nearest the forward.
- ``strangle``: long OTM put + long OTM call, the two of each nearest 25 delta.
- ``iron_condor``: short put and short call, the two of each nearest 20 delta (|delta|
  0.10-0.30), each with a long wing 1 or 2 strikes further out.

Pricing is conservative: every leg bought pays the ask and every leg sold gets the bid.
A contract is used only with bid > 0, an ask >= bid, time left, and MDS's IV and delta.
The stock leg is bought at the chain's spot (no stock bid/ask is at hand).

Every amount is per ONE share; a listed contract covers :data:`MULTIPLIER` shares.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from enum import Enum
from itertools import islice
from statistics import fmean

from mds.domain.models import OptionRight
from mds.domain.options import Chain, PricedContract
from mds.options.payoff import Leg, lognormal_probability, profile

__all__ = [
    "DEFAULT_SORT",
    "MAX_CANDIDATES",
    "MULTIPLIER",
    "Leg",
    "SortKey",
    "Strategy",
    "StrategyType",
    "build_strategies",
]

#: Shares per listed contract; every amount here is per share, multiply to get per contract.
MULTIPLIER = 100
#: Positions evaluated per call at most (nearest expirations first), before sort and limit.
MAX_CANDIDATES = 4000

_SHORT_BAND = (0.15, 0.45)  # |delta| of the sold leg in covered calls, CSPs and verticals
_VERTICAL_WIDTHS = (1, 2, 3)  # wing distance in listed strikes
_STRANGLE_DELTA, _STRANGLE_BAND, _STRANGLE_EACH = 0.25, (0.10, 0.40), 2
_CONDOR_DELTA, _CONDOR_BAND, _CONDOR_EACH = 0.20, (0.10, 0.30), 2
_CONDOR_WINGS = (1, 2)


class StrategyType(str, Enum):
    COVERED_CALL = "covered_call"
    CASH_SECURED_PUT = "cash_secured_put"
    VERTICAL = "vertical"
    STRADDLE = "straddle"
    STRANGLE = "strangle"
    IRON_CONDOR = "iron_condor"


class SortKey(str, Enum):
    """What the candidates are ranked by; ties go to the nearer expiration, then lower strikes.

    - ``return_on_risk``: max profit / max loss, highest first; positions where it is
      undefined (unlimited profit or loss, or no loss possible) come last.
    - ``pop``: probability of profit, highest first.
    - ``max_profit``: highest first; unlimited comes first.
    - ``max_loss``: smallest first (least capital at risk); unlimited comes last.
    """

    RETURN_ON_RISK = "return_on_risk"
    POP = "pop"
    MAX_PROFIT = "max_profit"
    MAX_LOSS = "max_loss"


#: ``pop`` is the default: it is defined for every type (return on risk is undefined for
#: every straddle and strangle, whose profit is unlimited), and the delta bands above keep
#: it from favouring tiny far-out-of-the-money credits.
DEFAULT_SORT = SortKey.POP


@dataclass(frozen=True, slots=True)
class Strategy:
    """One candidate position; every amount per ONE share (see :data:`MULTIPLIER`).

    ``net`` is the premium at entry: positive = credit received, negative = debit paid
    (the covered call's debit includes the shares). ``max_loss`` is a non-negative
    amount; it and ``max_profit`` are None when unlimited. ``pop`` is the probability the
    profit at expiry is > 0 with S_T lognormal around the forward F = spot·e^((r-q)t) and
    volatility ``pop_iv``: the mean IV of the sold legs, or of all legs when none is sold,
    since the sold strikes (or, for long positions, all of them) set the breakevens.
    ``return_on_risk`` = max_profit / max_loss when both are finite and max_loss > 0.
    """

    type: StrategyType
    symbol: str
    expiration: date
    days: int
    legs: tuple[Leg, ...]
    net: float
    max_profit: float | None
    max_loss: float | None
    breakevens: tuple[float, ...]
    pop: float
    pop_iv: float
    return_on_risk: float | None
    multiplier: int = MULTIPLIER


@dataclass(frozen=True, slots=True)
class _Slice:
    """One expiration's usable contracts, each side sorted by strike."""

    expiration: date
    days: int
    t: float
    forward: float
    calls: list[PricedContract]
    puts: list[PricedContract]


_Generator = Callable[[Chain, _Slice], Iterator[tuple[Leg, ...]]]


def build_strategies(
    chain: Chain,
    *,
    type: StrategyType,
    max_days: int | None,
    today: date,
    limit: int = 20,
    sort: SortKey = DEFAULT_SORT,
) -> list[Strategy]:
    """Candidate positions of one ``type`` from ``chain``, best ``limit`` by ``sort``.

    Args:
        chain: The priced chain (its spot, rate and dividend yield set the forward).
        type: Which kind of position to build.
        max_days: Only expirations at most this many calendar days after ``today``
            (None: all).
        today: The date days to expiry are counted from.
        limit: How many to return at most (>= 1).
        sort: The ranking; see :class:`SortKey`.

    Returns:
        At most ``limit`` strategies, best first; empty when the chain has none to offer.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    generate = _GENERATORS[type]
    # Lazily generated, nearest expiration first, so the cap also bounds the work done.
    candidates = (
        (piece, legs) for piece in _slices(chain, today, max_days) for legs in generate(chain, piece)
    )
    evaluated = (_evaluate(chain, piece, type, legs) for piece, legs in islice(candidates, MAX_CANDIDATES))
    found = [s for s in evaluated if s is not None]
    found.sort(key=_sort_key(sort))
    return found[:limit]


def _usable(c: PricedContract) -> bool:
    bid, ask = c.quote.bid, c.quote.ask
    return (
        bid is not None
        and bid > 0
        and ask is not None
        and ask >= bid
        and c.t > 0
        and c.iv is not None
        and c.iv > 0
        and c.delta is not None
    )


def _slices(chain: Chain, today: date, max_days: int | None) -> list[_Slice]:
    by_exp: dict[date, dict[OptionRight, dict[float, PricedContract]]] = {}
    for c in sorted(chain.contracts, key=lambda c: (c.expiration, c.strike, c.quote.contract)):
        days = (c.expiration - today).days
        if days < 0 or (max_days is not None and days > max_days) or not _usable(c):
            continue
        # A duplicate strike (e.g. an adjusted contract) keeps the first by OCC symbol.
        by_exp.setdefault(c.expiration, {}).setdefault(c.right, {}).setdefault(c.strike, c)
    slices = []
    for exp in sorted(by_exp):
        calls = list(by_exp[exp].get(OptionRight.CALL, {}).values())
        puts = list(by_exp[exp].get(OptionRight.PUT, {}).values())
        t = (calls or puts)[0].t
        forward = chain.spot * math.exp((chain.rate - chain.dividend_yield) * t)
        slices.append(_Slice(exp, (exp - today).days, t, forward, calls, puts))
    return slices


def _leg(c: PricedContract, side: int) -> Leg:
    price = c.quote.ask if side > 0 else c.quote.bid
    assert price is not None  # _usable checked both sides
    return Leg(c.quote.contract, c.right, c.strike, c.expiration, side, 1, price, c.iv, c.delta)


def _abs_delta(c: PricedContract) -> float:
    return abs(c.delta) if c.delta is not None else math.nan


def _in_band(c: PricedContract, band: tuple[float, float]) -> bool:
    return band[0] <= _abs_delta(c) <= band[1]


def _otm(chain: Chain, c: PricedContract) -> bool:
    return c.strike > chain.spot if c.right is OptionRight.CALL else c.strike < chain.spot


def _nearest(
    chain: Chain, contracts: list[PricedContract], target: float, band: tuple[float, float], n: int
) -> list[PricedContract]:
    """The ``n`` OTM contracts whose |delta| is nearest ``target`` within ``band``."""
    fit = [c for c in contracts if _otm(chain, c) and _in_band(c, band)]
    return sorted(fit, key=lambda c: (abs(_abs_delta(c) - target), c.strike))[:n]


def _covered_calls(chain: Chain, s: _Slice) -> Iterator[tuple[Leg, ...]]:
    stock = Leg(chain.symbol, None, None, None, 1, 1, chain.spot)
    for c in s.calls:
        if _otm(chain, c) and _in_band(c, _SHORT_BAND):
            yield stock, _leg(c, -1)


def _cash_secured_puts(chain: Chain, s: _Slice) -> Iterator[tuple[Leg, ...]]:
    for c in s.puts:
        if _otm(chain, c) and _in_band(c, _SHORT_BAND):
            yield (_leg(c, -1),)


def _verticals(chain: Chain, s: _Slice) -> Iterator[tuple[Leg, ...]]:
    for i, short in enumerate(s.puts):  # bull put: long wing below the short put
        if _otm(chain, short) and _in_band(short, _SHORT_BAND):
            for w in _VERTICAL_WIDTHS:
                if i - w >= 0:
                    yield _leg(s.puts[i - w], 1), _leg(short, -1)
    for i, short in enumerate(s.calls):  # bear call: long wing above the short call
        if _otm(chain, short) and _in_band(short, _SHORT_BAND):
            for w in _VERTICAL_WIDTHS:
                if i + w < len(s.calls):
                    yield _leg(short, -1), _leg(s.calls[i + w], 1)


def _straddles(chain: Chain, s: _Slice) -> Iterator[tuple[Leg, ...]]:
    puts = {p.strike: p for p in s.puts}
    both = [c for c in s.calls if c.strike in puts]
    if both:
        call = min(both, key=lambda c: (abs(c.strike - s.forward), c.strike))
        yield _leg(puts[call.strike], 1), _leg(call, 1)


def _strangles(chain: Chain, s: _Slice) -> Iterator[tuple[Leg, ...]]:
    for put in _nearest(chain, s.puts, _STRANGLE_DELTA, _STRANGLE_BAND, _STRANGLE_EACH):
        for call in _nearest(chain, s.calls, _STRANGLE_DELTA, _STRANGLE_BAND, _STRANGLE_EACH):
            yield _leg(put, 1), _leg(call, 1)


def _iron_condors(chain: Chain, s: _Slice) -> Iterator[tuple[Leg, ...]]:
    put_index = {id(p): i for i, p in enumerate(s.puts)}
    call_index = {id(c): i for i, c in enumerate(s.calls)}
    for sp in _nearest(chain, s.puts, _CONDOR_DELTA, _CONDOR_BAND, _CONDOR_EACH):
        for sc in _nearest(chain, s.calls, _CONDOR_DELTA, _CONDOR_BAND, _CONDOR_EACH):
            for pw in _CONDOR_WINGS:
                for cw in _CONDOR_WINGS:
                    i, j = put_index[id(sp)] - pw, call_index[id(sc)] + cw
                    if i >= 0 and j < len(s.calls):
                        yield _leg(s.puts[i], 1), _leg(sp, -1), _leg(sc, -1), _leg(s.calls[j], 1)


_GENERATORS: dict[StrategyType, _Generator] = {
    StrategyType.COVERED_CALL: _covered_calls,
    StrategyType.CASH_SECURED_PUT: _cash_secured_puts,
    StrategyType.VERTICAL: _verticals,
    StrategyType.STRADDLE: _straddles,
    StrategyType.STRANGLE: _strangles,
    StrategyType.IRON_CONDOR: _iron_condors,
}


def _evaluate(chain: Chain, s: _Slice, type: StrategyType, legs: tuple[Leg, ...]) -> Strategy | None:
    """The position's numbers, or None when it cannot make money at any price."""
    shape = profile(legs)
    if shape.max_profit is not None and shape.max_profit <= 0:
        return None  # the spread paid eats every possible gain
    options = [leg for leg in legs if leg.iv is not None]
    sold = [leg for leg in options if leg.side < 0]
    sigma = fmean(leg.iv for leg in (sold or options) if leg.iv is not None)
    pop = lognormal_probability(shape.profitable, forward=s.forward, sigma=sigma, t=s.t)
    ror = None
    if shape.max_profit is not None and shape.max_loss is not None and shape.max_loss > 0:
        ror = shape.max_profit / shape.max_loss
    return Strategy(
        type=type,
        symbol=chain.symbol,
        expiration=s.expiration,
        days=s.days,
        legs=legs,
        net=-sum(leg.side * leg.quantity * leg.price for leg in legs),
        max_profit=shape.max_profit,
        max_loss=shape.max_loss,
        breakevens=shape.breakevens,
        pop=pop,
        pop_iv=sigma,
        return_on_risk=ror,
    )


def _sort_key(sort: SortKey) -> Callable[[Strategy], tuple[object, ...]]:
    def primary(s: Strategy) -> tuple[bool, float]:
        if sort is SortKey.POP:
            return False, -s.pop
        if sort is SortKey.RETURN_ON_RISK:
            return s.return_on_risk is None, -(s.return_on_risk or 0.0)
        if sort is SortKey.MAX_PROFIT:
            return s.max_profit is not None, -(s.max_profit or 0.0)
        return s.max_loss is None, s.max_loss or 0.0

    def key(s: Strategy) -> tuple[object, ...]:
        return primary(s), s.expiration, tuple(leg.strike or 0.0 for leg in s.legs)

    return key
