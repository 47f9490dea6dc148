"""Black (1976) on the forward: prices, greeks and implied volatility for whole chains.

Conventions. A European option on an underlying with spot ``S``, continuously compounded
rate ``r`` and dividend yield ``q`` is priced on its forward ``F = S·e^{(r-q)t}``:
``price = D·Black(F, K, σ, t)`` with ``D = e^{-rt}``, which is Black-Scholes(-Merton)
rewritten. Times are years (ACT/365); volatilities are annualised fractions (0.2 = 20%).

Implied volatility in two stages (:func:`solve_implied_vols`):

1. **Vectorised Halley.** ``scipy.optimize.newton`` on arrays (``fprime`` = vega,
   ``fprime2`` = volga), started from the Manaster-Koehler point, solves a whole chain in
   a handful of numpy passes. Every root is checked by repricing before it is trusted.
2. **Jaeckel's "Let's Be Rational"** (``lets_be_rational``, the solver behind ``vollib``)
   takes every contract stage 1 did not settle, one by one. It is exact to machine
   precision everywhere, but pure Python: about 20,000 contracts/s here (vollib's
   wrapper ~15,000/s), while the chain target is 50,000/s on 5,000 contracts. So the
   maintained solver stays the reference and the safety net, and the common, well
   conditioned contracts go through scipy's vectorised iteration (also a maintained
   solver: nothing here is a hand-written root finder).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from lets_be_rational import (  # type: ignore[import-untyped]
    implied_volatility_from_a_transformed_rational_guess as _lbr_implied_vol,
)
from lets_be_rational.exceptions import (  # type: ignore[import-untyped]
    AboveMaximumException,
    BelowIntrinsicException,
)
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import newton  # type: ignore[import-untyped]
from scipy.special import ndtr  # type: ignore[import-untyped]

from mds.domain.options import IvReason

__all__ = [
    "IvSolution",
    "black_delta",
    "black_price",
    "black_vega",
    "discount",
    "forward",
    "implied_vols",
    "rate_from_treasury_yield",
    "solve_implied_vols",
]

FloatArray = NDArray[np.float64]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: A price this far (relative to max(F, K)) below intrinsic is still rounding, not "below".
_INTRINSIC_TOL = 1e-12
#: Lowest Halley start: at the money the Manaster-Koehler point is 0 (where d1 divides by
#: zero). At-the-money the price is concave in σ for every σ > 0, so Halley converges from
#: any start; 0.2 is the middle of listed equity vols and keeps near-ATM starts close.
_SIGMA0_FLOOR = 0.2
#: Halley steps before a contract goes to Let's Be Rational. Well-conditioned contracts
#: settle in 3-6; the rest are exactly the ones the fallback is for.
_MAX_ITER = 12
_STEP_TOL = 1e-12
#: A Halley root is kept only when repricing implies a volatility error below this.
_SIGMA_ERR_TOL = 1e-9
#: Halley roots above this are left to Let's Be Rational (it answers any positive vol).
_SIGMA_MAX = 10.0


# -- rates and forwards ---------------------------------------------------------------------


def discount(rate: ArrayLike, t: ArrayLike) -> FloatArray:
    """Discount factor ``e^{-rt}`` (continuous compounding)."""
    return np.exp(-np.asarray(rate, dtype=np.float64) * np.asarray(t, dtype=np.float64))


def forward(spot: ArrayLike, rate: ArrayLike, t: ArrayLike, dividend_yield: ArrayLike = 0.0) -> FloatArray:
    """Forward price ``S·e^{(r-q)t}`` (continuous rate and dividend yield).

    Computed as ``S / e^{-(r-q)t}``, vollib's arithmetic, so that an ill-conditioned
    contract handed to Let's Be Rational gets the very inputs vollib would give it.
    """
    carry = np.asarray(rate, dtype=np.float64) - np.asarray(dividend_yield, dtype=np.float64)
    result: FloatArray = np.asarray(spot, dtype=np.float64) / np.exp(-carry * np.asarray(t, dtype=np.float64))
    return result


def rate_from_treasury_yield(percent: float) -> float:
    """A continuously compounded rate from a FRED Treasury yield such as ``DGS3MO``.

    FRED quotes the yield in percent on a bond-equivalent basis (4.2 means 4.2% a year);
    the pricing here compounds continuously, so the rate is ``ln(1 + y/100)`` (annual
    compounding of the quoted yield, the usual approximation for a 3-month bill).
    """
    return math.log1p(percent / 100.0)


# -- Black on the forward -----------------------------------------------------------------


def _arrays(*values: ArrayLike) -> list[FloatArray]:
    return [np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(*values)]


def _d1_d2(
    forward: FloatArray, strike: FloatArray, t: FloatArray, sigma: FloatArray
) -> tuple[FloatArray, FloatArray]:
    vol = sigma * np.sqrt(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(forward / strike) + 0.5 * vol * vol) / vol
    return d1, d1 - vol


def black_price(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    sigma: ArrayLike,
    discount: ArrayLike,
    is_call: ArrayLike,
) -> FloatArray:
    """Discounted Black (1976) price: ``D·(F·N(d1) − K·N(d2))`` for a call, ``D·(K·N(−d2) − F·N(−d1))`` for a put.

    Arguments broadcast against each other; ``is_call`` is a boolean (array).
    """
    f, k, tt, s, d, c = _arrays(forward, strike, t, sigma, discount, is_call)
    d1, d2 = _d1_d2(f, k, tt, s)
    call = c.astype(bool)
    sign = np.where(call, 1.0, -1.0)
    result: FloatArray = d * sign * (f * ndtr(sign * d1) - k * ndtr(sign * d2))
    return result


def black_delta(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
    dividend_discount: ArrayLike = 1.0,
) -> FloatArray:
    """Spot delta ∂price/∂S of a European option: ``e^{-qt}·N(d1)`` (call), ``e^{-qt}·(N(d1) − 1)`` (put).

    ``dividend_discount`` is ``e^{-qt}``; with no dividend yield (MDS's default) the
    deltas are the textbook ``N(d1)`` and ``N(d1) − 1``: calls in (0, 1), puts in (−1, 0).
    """
    f, k, tt, s, c, dq = _arrays(forward, strike, t, sigma, is_call, dividend_discount)
    d1, _ = _d1_d2(f, k, tt, s)
    result: FloatArray = dq * (ndtr(d1) - np.where(c.astype(bool), 0.0, 1.0))
    return result


def black_vega(
    forward: ArrayLike, strike: ArrayLike, t: ArrayLike, sigma: ArrayLike, discount: ArrayLike
) -> FloatArray:
    """∂price/∂σ (per unit of volatility, the same for a call and a put): ``D·F·φ(d1)·√t``."""
    f, k, tt, s, d = _arrays(forward, strike, t, sigma, discount)
    d1, _ = _d1_d2(f, k, tt, s)
    result: FloatArray = d * f * _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1) * np.sqrt(tt)
    return result


# -- implied volatility ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IvSolution:
    """What :func:`solve_implied_vols` found, contract by contract.

    Attributes:
        iv: Implied volatility, NaN where there is none.
        reasons: Why the IV is NaN (None where there is an IV).
        fallback: Contracts Halley did not settle, handed to Let's Be Rational.
    """

    iv: FloatArray
    reasons: list[IvReason | None]
    fallback: NDArray[np.bool_]


def implied_vols(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    discount: ArrayLike,
    is_call: ArrayLike,
) -> tuple[FloatArray, list[IvReason | None]]:
    """Black implied volatilities of discounted option prices, with the reason where none.

    See :func:`solve_implied_vols`; this returns its ``(iv, reasons)``.
    """
    solution = solve_implied_vols(price, forward, strike, t, discount, is_call)
    return solution.iv, solution.reasons


def solve_implied_vols(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    discount: ArrayLike,
    is_call: ArrayLike,
) -> IvSolution:
    """Invert Black's formula for many contracts at once.

    Args:
        price: Discounted option prices (what the market quotes).
        forward: Forward prices of the underlying at each expiry.
        strike: Strikes (> 0).
        t: Years to expiry.
        discount: Discount factors ``e^{-rt}``.
        is_call: True for calls, False for puts.

    Returns:
        The solution; its IV is NaN, with a reason, where: ``t <= 0`` (EXPIRED); the
        undiscounted price is below the forward intrinsic value (BELOW_INTRINSIC); it is at
        or above the no-arbitrage maximum, ``F`` for a call or ``K`` for a put
        (ABOVE_MAXIMUM); neither solver finds a positive volatility, or an input is NaN or
        not positive (NO_SOLUTION; e.g. a price equal to intrinsic, which only σ = 0
        reproduces).
    """
    p, f, k, tt, d, c = _arrays(price, forward, strike, t, discount, is_call)
    p, f, k, tt, d = (a.ravel() for a in (p, f, k, tt, d))
    call = c.ravel().astype(bool)
    n = p.size
    iv = np.full(n, np.nan)
    codes = np.zeros(n, dtype=np.int8)  # index into _CODES; 0 = has an IV

    with np.errstate(divide="ignore", invalid="ignore"):
        undiscounted = p / d
    intrinsic = np.where(call, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0))
    maximum = np.where(call, f, k)
    expired = ~(tt > 0)
    # NaN or non-positive inputs have no volatility to find (never sent to a solver).
    unusable = ~expired & ~(np.isfinite(undiscounted) & (f > 0) & (k > 0) & np.isfinite(f * k))
    screened = expired | unusable
    below = ~screened & (undiscounted < intrinsic - _INTRINSIC_TOL * np.maximum(f, k))
    above = ~screened & ~below & (undiscounted >= maximum)
    codes[expired], codes[unusable], codes[below], codes[above] = _EXPIRED, _NO_SOLUTION, _BELOW, _ABOVE
    todo = np.flatnonzero(codes == 0)

    solved = _halley(undiscounted[todo], f[todo], k[todo], tt[todo], call[todo])
    iv[todo] = solved
    fallback = np.zeros(n, dtype=bool)
    fallback[todo[np.isnan(solved)]] = True
    for i in np.flatnonzero(fallback).tolist():
        value = _lets_be_rational(
            float(undiscounted[i]), float(f[i]), float(k[i]), float(tt[i]), bool(call[i])
        )
        if value is None:
            codes[i] = _NO_SOLUTION
        else:
            iv[i] = value
    reasons = [_CODES[code] for code in codes.tolist()]
    return IvSolution(iv=iv, reasons=reasons, fallback=fallback)


_EXPIRED, _BELOW, _ABOVE, _NO_SOLUTION = 1, 2, 3, 4
_CODES: tuple[IvReason | None, ...] = (
    None,
    IvReason.EXPIRED,
    IvReason.BELOW_INTRINSIC,
    IvReason.ABOVE_MAXIMUM,
    IvReason.NO_SOLUTION,
)


def _halley(
    price: FloatArray, forward: FloatArray, strike: FloatArray, t: FloatArray, call: NDArray[np.bool_]
) -> FloatArray:
    """Stage 1: vectorised Halley on the out-of-the-money side; NaN where not settled.

    Prices are undiscounted and screened (intrinsic <= price < maximum). An in-the-money
    option is solved as its out-of-the-money twin by put-call parity (price − intrinsic),
    as Let's Be Rational does: the time value is what carries the volatility.
    """
    if price.size == 0:
        return np.empty(0)
    if price.size == 1:
        # scipy's newton takes its scalar path (another return shape) for a single start.
        p2, f2, k2, t2 = (np.repeat(a, 2) for a in (price, forward, strike, t))
        return _halley(p2, f2, k2, t2, np.repeat(call, 2))[:1]
    x = np.log(forward / strike)
    itm = np.where(call, x > 0, x < 0)
    target = np.where(itm, price - np.abs(forward - strike), price)
    otm_call = call ^ itm
    sign = np.where(otm_call, 1.0, -1.0)
    sqrt_t = np.sqrt(t)
    # Manaster-Koehler: vega peaks at σ = sqrt(2|x|/t), the inflection point of price(σ),
    # from which Newton converges monotonically.
    sigma0 = np.maximum(np.sqrt(2.0 * np.abs(x) / t), _SIGMA0_FLOOR)

    def objective(sigma: FloatArray) -> FloatArray:
        vol = sigma * sqrt_t
        d1 = x / vol + 0.5 * vol
        value: FloatArray = sign * (forward * ndtr(sign * d1) - strike * ndtr(sign * (d1 - vol))) - target
        return value

    def vega(sigma: FloatArray) -> FloatArray:
        vol = sigma * sqrt_t
        d1 = x / vol + 0.5 * vol
        value: FloatArray = forward * _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1) * sqrt_t
        return value

    def volga(sigma: FloatArray) -> FloatArray:
        vol = sigma * sqrt_t
        d1 = x / vol + 0.5 * vol
        value: FloatArray = vega(sigma) * d1 * (d1 - vol) / sigma
        return value

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Unsettled contracts are expected (they go to stage 2): scipy's warning, or its
        # error when none settles, is not news.
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            root, converged, _ = newton(
                objective,
                sigma0,
                fprime=vega,
                fprime2=volga,
                tol=_STEP_TOL,
                maxiter=_MAX_ITER,
                full_output=True,
            )
        except RuntimeError:
            return np.full(price.size, np.nan)
        root = np.asarray(root, dtype=np.float64)
        # Trust a root only if repricing it confirms it: the price error, in volatility
        # (÷ vega), is tiny, and so is the volatility the price's own rounding allows
        # (an ill-conditioned price, e.g. almost all intrinsic, is left to the exact solver).
        vega_root = vega(root)
        error = np.abs(objective(root)) / vega_root
        rounding = np.finfo(np.float64).eps * price / vega_root
        ok = (
            np.asarray(converged, dtype=bool)
            & (root > 0)
            & (root < _SIGMA_MAX)
            & (error < _SIGMA_ERR_TOL)
            & (rounding < _SIGMA_ERR_TOL)
        )
    result: FloatArray = np.where(ok, root, np.nan)
    return result


def _lets_be_rational(price: float, forward: float, strike: float, t: float, call: bool) -> float | None:
    """Stage 2: Jaeckel's solver for one contract; None where it finds no positive volatility."""
    try:
        value = float(_lbr_implied_vol(price, forward, strike, t, 1.0 if call else -1.0))
    except (AboveMaximumException, BelowIntrinsicException, ValueError, ZeroDivisionError, OverflowError):
        return None
    # 0 is its answer for a zero (or subnormal) time value: no volatility can be told.
    return value if math.isfinite(value) and value > 0 else None
