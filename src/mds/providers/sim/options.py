"""Sim option chains: Black-Scholes prices from a known volatility surface.

The surface (:class:`SimSurface`) is the ground truth the options metrics must recover,
so it is simple and written down. For a symbol, with ``t`` in years (ACT/365) and the
forward ``F``:

* ATM volatility ``atm(t) = base · (0.9 + 0.2 · min(t, 1))``: an upward term structure
  from 0.9·base (very short dated) to 1.1·base (a year and beyond); ``base`` is drawn
  from the seed in [0.18, 0.45].
* Standardised moneyness ``z = ln(K/F) / (atm(t)·√t)``, clipped to [−3, 3] (beyond
  three standard deviations the wings are flat; those options are worth next to nothing).
* ``σ(K, t) = atm(t) · (1 + skew·z + curvature·z²)`` with ``skew`` in [−0.18, −0.10]
  and ``curvature`` in [0.08, 0.14]: puts richer than calls (the equity skew, so rr25 < 0)
  and both wings above the money (so bf25 > 0). At the 25-delta strikes ``z ≈ ±0.7``,
  so rr25 ≈ 1.4·skew·atm and bf25 ≈ 0.5·curvature·atm.

Listed like a US equity: the next six weekly (Friday) expirations and the monthly third
Fridays up to a year out, a holiday Friday moved to the session before; strikes on a
round step (0.5, 1, 2.5, 5, 10, 25 or 50: about 60 of them) within ±40% of spot; prices
in ticks of 0.01 below 3.00 and 0.05 from there. Each quote's mid is the model price on
its tick (never below the forward intrinsic value); the spread is about 4% of the price,
at least one tick each side, so a contract whose mid is within a tick of zero has no bid. The
vendor IV reported is the surface's volatility. Everything is a pure function of the
market's seed, the symbol and ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mds.calendar import MarketCalendar
from mds.domain.models import OptionQuote, OptionRight, ensure_utc
from mds.options.chain import expiry_close, year_fraction
from mds.options.pricing import black_price, discount, forward
from mds.providers.sim.market import SimMarket, stable_hash

__all__ = [
    "SimSurface",
    "listed_expirations",
    "listed_strikes",
    "occ_symbol",
    "sim_option_chain",
    "sim_surface_vol",
]

_WEEKLIES = 6
_HORIZON_DAYS = 366
_STRIKE_STEPS = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0)
_STRIKE_RANGE = 0.40
_Z_CLIP = 3.0
_SPREAD = 0.02  # half-spread, as a fraction of the price


@dataclass(frozen=True, slots=True)
class SimSurface:
    """One symbol's volatility surface (see the module docstring for the formula)."""

    base: float
    skew: float
    curvature: float

    @classmethod
    def for_symbol(cls, seed: int, symbol: str) -> SimSurface:
        """The surface of ``symbol`` in the market seeded ``seed``."""
        u = np.random.default_rng([seed, stable_hash(symbol), 16]).random(3)
        return cls(
            base=0.18 + 0.27 * float(u[0]),
            skew=-0.18 + 0.08 * float(u[1]),
            curvature=0.08 + 0.06 * float(u[2]),
        )

    def atm(self, t: ArrayLike) -> NDArray[np.float64]:
        """ATM volatility at ``t`` years."""
        result: NDArray[np.float64] = self.base * (
            0.9 + 0.2 * np.minimum(np.asarray(t, dtype=np.float64), 1.0)
        )
        return result

    def vol(self, strike: ArrayLike, forward: ArrayLike, t: ArrayLike) -> NDArray[np.float64]:
        """σ(K, t) for strikes ``strike`` against the forward ``forward`` at ``t`` years."""
        tt = np.asarray(t, dtype=np.float64)
        atm = self.atm(tt)
        moneyness = np.log(np.asarray(strike, dtype=np.float64) / np.asarray(forward, dtype=np.float64))
        z = np.clip(moneyness / (atm * np.sqrt(tt)), -_Z_CLIP, _Z_CLIP)
        result: NDArray[np.float64] = atm * (1.0 + self.skew * z + self.curvature * z * z)
        return result


def sim_surface_vol(
    symbol: str, strike: ArrayLike, forward: ArrayLike, t: ArrayLike, *, seed: int = 42
) -> NDArray[np.float64]:
    """The sim's volatility for ``symbol`` at ``strike`` (forward ``forward``, ``t`` years)."""
    return SimSurface.for_symbol(seed, symbol).vol(strike, forward, t)


def occ_symbol(root: str, expiration: date, right: OptionRight, strike: float) -> str:
    """The OCC contract symbol without padding, e.g. ``AAPL250117C00150000``."""
    flag = "C" if right is OptionRight.CALL else "P"
    return f"{root}{expiration:%y%m%d}{flag}{round(strike * 1000):08d}"


def _session_day(day: date, calendar: MarketCalendar) -> date:
    """``day``, or the last session before it when the exchange is closed (a holiday Friday)."""
    for back in range(5):
        candidate = day - timedelta(days=back)
        if calendar.session_on(candidate) is not None:
            return candidate
    return day


def listed_expirations(now: datetime, calendar: MarketCalendar) -> list[date]:
    """The next six weekly Friday expirations and the monthly third Fridays within a year.

    Only expirations whose close is after ``now`` (a Friday's own options are listed until
    that session closes).
    """
    now = ensure_utc(now)
    today = now.date()
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    fridays = [friday + timedelta(weeks=w) for w in range(_WEEKLIES + 1)]
    month = date(today.year, today.month, 1)
    while month <= today + timedelta(days=_HORIZON_DAYS):
        first_friday = month + timedelta(days=(4 - month.weekday()) % 7)
        third = first_friday + timedelta(weeks=2)
        if third <= today + timedelta(days=_HORIZON_DAYS):
            fridays.append(third)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    days = sorted({_session_day(d, calendar) for d in fridays})
    live = [d for d in days if expiry_close(d, calendar) > now]
    weekly = [d for d in live if d <= fridays[0] + timedelta(weeks=_WEEKLIES)][:_WEEKLIES]
    return sorted(set(weekly) | {d for d in live if d not in weekly and _is_monthly(d, calendar)})


def _is_monthly(day: date, calendar: MarketCalendar) -> bool:
    third = date(day.year, day.month, 15) + timedelta(days=(4 - date(day.year, day.month, 15).weekday()) % 7)
    return _session_day(third, calendar) == day


def listed_strikes(spot: float) -> NDArray[np.float64]:
    """Strikes on a round step within ±40% of ``spot`` (the step gives about 60 of them)."""
    wanted = 2 * _STRIKE_RANGE * spot / 60
    step = min(_STRIKE_STEPS, key=lambda s: abs(math.log(s / wanted)))
    lo = max(step, math.ceil(spot * (1 - _STRIKE_RANGE) / step) * step)
    hi = math.floor(spot * (1 + _STRIKE_RANGE) / step) * step
    return np.round(np.arange(lo, hi + step / 2, step), 2)


def _quote_prices(
    model: NDArray[np.float64], floor: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(bid, ask) on the listing ticks around ``model``, the mid never below ``floor``."""
    tick = np.where(model < 3.0, 0.01, 0.05)
    mid_ticks = np.round(model / tick)
    mid_ticks = np.where(mid_ticks * tick < floor - 1e-12, np.ceil(floor / tick - 1e-9), mid_ticks)
    half = np.maximum(1.0, np.round(_SPREAD * model / tick))
    bid = np.where(mid_ticks - half > 0, (mid_ticks - half) * tick, 0.0)
    ask = np.maximum(mid_ticks + half, 1.0) * tick
    return np.round(bid, 2).astype(np.float64), np.round(ask, 2).astype(np.float64)


def sim_option_chain(
    market: SimMarket,
    symbol: str,
    now: datetime,
    *,
    expiration: date | None = None,
    provider: str = "sim",
    rate: float = 0.04,
) -> list[OptionQuote]:
    """``symbol``'s option chain at ``now``, priced by Black-Scholes on the sim surface.

    Args:
        market: The ground truth (its last price at ``now`` is the spot).
        symbol: The underlying (also the OCC root).
        now: Quote time.
        expiration: Only this expiration (an empty list when it is not listed).
        provider: The provider name stamped on each quote.
        rate: Continuously compounded rate the prices are computed with (no dividends).
    """
    now = ensure_utc(now)
    spot = market.quote(symbol, now, provider=provider).last
    expirations = listed_expirations(now, market.calendar)
    if expiration is not None:
        expirations = [d for d in expirations if d == expiration]
    if not expirations:
        return []
    strikes = listed_strikes(spot)
    surface = SimSurface.for_symbol(market.seed, symbol)
    t_exp = np.array([year_fraction(now, expiry_close(d, market.calendar)) for d in expirations])
    # One row per (expiration, strike, right): calls then puts at each strike.
    n_k = strikes.size
    t = np.repeat(t_exp, 2 * n_k)
    k = np.tile(np.repeat(strikes, 2), len(expirations))
    call = np.tile(np.array([True, False]), n_k * len(expirations))
    fwd = forward(spot, rate, t)
    disc = discount(rate, t)
    sigma = surface.vol(k, fwd, t)
    model = black_price(fwd, k, t, sigma, disc, call)
    intrinsic = disc * np.where(call, np.maximum(fwd - k, 0.0), np.maximum(k - fwd, 0.0))
    bid, ask = _quote_prices(model, intrinsic)
    z = np.log(k / fwd) / (surface.atm(t) * np.sqrt(t))
    activity = _activity(market.seed, symbol, now, z, call)
    volume, oi = activity
    rows = zip(
        np.repeat(np.arange(len(expirations)), 2 * n_k).tolist(),
        k.tolist(),
        call.tolist(),
        bid.tolist(),
        ask.tolist(),
        volume.tolist(),
        oi.tolist(),
        sigma.tolist(),
        strict=True,
    )
    out: list[OptionQuote] = []
    # OCC symbols built from per-expiration prefixes: formatting a date per contract is slow.
    prefixes = [occ_symbol(symbol, d, OptionRight.CALL, 0)[:-9] for d in expirations]
    for e, strike, is_call, b, a, v, o, s in rows:
        right = OptionRight.CALL if is_call else OptionRight.PUT
        exp = expirations[e]
        out.append(
            OptionQuote(
                underlying=symbol,
                contract=f"{prefixes[e]}{'C' if is_call else 'P'}{round(strike * 1000):08d}",
                expiration=exp,
                strike=strike,
                right=right,
                bid=b,
                ask=a,
                last=round((b + a) / 2, 2) if b > 0 else None,
                volume=v,
                open_interest=o,
                implied_volatility=s,
                ts=now,
                provider=provider,
                underlying_price=spot,
            )
        )
    return out


def _activity(
    seed: int, symbol: str, now: datetime, z: NDArray[np.float64], call: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Deterministic (volume, open interest): most near the money, puts a little busier."""
    rng = np.random.default_rng([seed, stable_hash(symbol), 17, now.toordinal()])
    bell = np.exp(-0.5 * np.clip(z, -6, 6) ** 2)
    side = np.where(call, 1.0, 1.25)
    noise = rng.uniform(0.5, 1.5, (2, z.size))
    volume = np.floor(2_000 * bell * side * noise[0])
    oi = np.floor(20_000 * (0.05 + bell) * side * noise[1])
    return volume, oi
