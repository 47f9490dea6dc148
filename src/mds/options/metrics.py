"""Options metrics of a priced chain, defined as issue 16 defines them.

* ``atm_iv`` (per expiration): the IV at the forward ``F = S·e^{(r−q)t}``, interpolated
  linearly in strike between the two listed strikes bracketing ``F`` (contracts with an IV
  only), for calls and for puts separately; then the mean of the two (one side alone
  when the other does not bracket ``F``; None when neither does).
* ``iv30``: the ATM IV at a constant maturity of 30 calendar days (``t = 30/365``),
  interpolated linearly in total variance ``w = σ²t`` between the two expirations
  bracketing 30 days. When every expiration lies on one side, the nearest one's ATM IV
  is used as it is (flat extrapolation) and ``iv30_extrapolated`` says so.
* ``rr25 = IV(25Δ call) − IV(25Δ put)`` at 30 days. Sign: negative when puts are richer
  than calls (the usual equity skew). Per expiration, the 25-delta call IV is
  interpolated linearly in delta among out-of-the-money calls (``K >= F``) at delta
  0.25, the put one among out-of-the-money puts (``K <= F``) at delta −0.25; each is
  then taken to 30 days in total variance like ``iv30``.
* ``bf25 = (IV(25Δ call) + IV(25Δ put)) / 2 − iv30`` at 30 days (positive when the
  wings are richer than the money).
* ``implied_move``: for the nearest expiration at least one calendar day out (dates in
  New York), the ATM straddle mid (call mid + put mid at the listed strike nearest ``F``
  that has both) divided by spot; ``implied_move_abs`` is the straddle in currency.
* ``term_structure``: (expiration, calendar days, t, atm_iv) for every expiration.
* ``put_call_volume_ratio`` = put volume ÷ call volume, ``put_call_oi_ratio`` likewise;
  None when the denominator is 0 or no contract reports the figure.

Plain numpy over a few arrays: a 2,000-contract chain takes about a millisecond.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from mds.domain.models import OptionRight
from mds.domain.options import Chain, OptionsMetricRow

__all__ = ["OptionsMetrics", "TermPoint", "compute_metrics", "metric_rows"]

FloatArray = NDArray[np.float64]

_NEW_YORK = ZoneInfo("America/New_York")
T30 = 30 / 365
_TENOR_30D = "30d"
#: rr25's sign convention, stated with the value.
RR25_SIGN = "call_minus_put"


@dataclass(frozen=True, slots=True)
class TermPoint:
    """One expiration of the term structure."""

    expiration: date
    days: int  # calendar days from the chain's as_of (New York date)
    t: float  # years to the expiration's close (ACT/365)
    atm_iv: float | None


@dataclass(frozen=True)
class OptionsMetrics:
    """The metrics of one priced chain (see the module docstring for each definition)."""

    symbol: str
    as_of: datetime
    spot: float
    rate: float
    rate_source: str
    provider: str
    contracts: int
    iv30: float | None
    iv30_extrapolated: bool
    rr25: float | None
    bf25: float | None
    #: True when rr25/bf25's 25-delta vols were extrapolated flat (no bracketing expirations).
    rr25_extrapolated: bool
    implied_move: float | None
    implied_move_abs: float | None
    implied_move_expiration: date | None
    #: ATM IV by expiration (ISO date -> value).
    atm_iv: dict[str, float | None] = field(default_factory=dict)
    term_structure: list[TermPoint] = field(default_factory=list)
    put_call_volume_ratio: float | None = None
    put_call_oi_ratio: float | None = None
    rr25_sign: str = RR25_SIGN

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (dates and times as ISO strings)."""
        out = asdict(self)
        out["as_of"] = self.as_of.isoformat()
        out["implied_move_expiration"] = _iso(self.implied_move_expiration)
        out["term_structure"] = [
            {**p, "expiration": p["expiration"].isoformat()} for p in out["term_structure"]
        ]
        return out


def _iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


@dataclass(frozen=True, slots=True)
class _Expiry:
    """One expiration's contracts as arrays in strike order (calls and puts apart).

    The IV and delta arrays hold only contracts with an IV.
    """

    expiration: date
    t: float
    forward: float
    call_k: FloatArray
    call_iv: FloatArray
    call_delta: FloatArray
    put_k: FloatArray
    put_iv: FloatArray
    put_delta: FloatArray
    strike: FloatArray  # every contract of the expiration, in strike order
    call: NDArray[np.bool_]
    mid: FloatArray  # NaN where there is none

    def straddle(self) -> float | None:
        """Call mid + put mid at the strike nearest the forward that has both; None if none has."""
        quoted = ~np.isnan(self.mid)
        calls, puts = quoted & self.call, quoted & ~self.call
        both, ci, pi = np.intersect1d(self.strike[calls], self.strike[puts], return_indices=True)
        if both.size == 0:
            return None
        i = int(np.argmin(np.abs(both - self.forward)))
        return float(self.mid[calls][ci[i]] + self.mid[puts][pi[i]])


@dataclass(frozen=True, slots=True)
class _Columns:
    """The chain's contracts as arrays (NaN where a value is None); ``exp`` indexes ``dates``."""

    dates: list[date]
    exp: FloatArray
    strike: FloatArray
    call: NDArray[np.bool_]
    t: FloatArray
    iv: FloatArray
    delta: FloatArray
    mid: FloatArray
    volume: FloatArray
    oi: FloatArray


def _columns(chain: Chain) -> _Columns:
    contracts = chain.contracts
    dates = sorted({c.quote.expiration for c in contracts})
    index = {d: float(i) for i, d in enumerate(dates)}
    nan, call_right = math.nan, OptionRight.CALL
    # One pass of plain tuples, then one array: the cheapest way out of Python objects.
    rows = [
        (
            index[q.expiration],
            q.strike,
            q.right is call_right,
            c.t,
            nan if c.iv is None else c.iv,
            nan if c.delta is None else c.delta,
            nan if c.mid is None else c.mid,
            nan if q.volume is None else q.volume,
            nan if q.open_interest is None else q.open_interest,
        )
        for c in contracts
        for q in (c.quote,)
    ]
    table = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=9 * len(rows)).reshape(
        len(rows), 9
    )
    exp, strike, call, t, iv, delta, mid, volume, oi = table.T
    return _Columns(dates, exp, strike, call.astype(bool), t, iv, delta, mid, volume, oi)


def _expiries(chain: Chain, cols: _Columns) -> list[_Expiry]:
    """The chain grouped by expiration, each in strike order."""
    dates = cols.dates
    # Sort by (expiration, strike) once; each expiration is then one contiguous slice.
    order = np.lexsort((cols.strike, cols.exp))
    exp, strike, t, iv, delta, mid = (
        a[order] for a in (cols.exp, cols.strike, cols.t, cols.iv, cols.delta, cols.mid)
    )
    call = cols.call[order]
    bounds = np.searchsorted(exp, np.arange(len(dates) + 1) - 0.5)
    has_iv = ~np.isnan(iv) & ~np.isnan(delta)
    out = []
    for i, expiration in enumerate(dates):
        sl = slice(int(bounds[i]), int(bounds[i + 1]))
        e_t = float(t[sl][0])
        c, ok = call[sl], has_iv[sl]
        k, v, d, m = strike[sl], iv[sl], delta[sl], mid[sl]
        calls, puts = c & ok, ~c & ok
        out.append(
            _Expiry(
                expiration=expiration,
                t=e_t,
                forward=chain.spot * math.exp((chain.rate - chain.dividend_yield) * e_t),
                call_k=k[calls],
                call_iv=v[calls],
                call_delta=d[calls],
                put_k=k[puts],
                put_iv=v[puts],
                put_delta=d[puts],
                strike=k,
                call=c,
                mid=m,
            )
        )
    return out


def _bracket(x: FloatArray, y: FloatArray, at: float) -> float | None:
    """``y`` interpolated linearly at ``at`` between the first adjacent pair of ``x`` around it.

    ``x`` is in listing (strike) order, not necessarily monotone; None when no pair brackets.
    """
    if x.size == 0:
        return None
    exact = np.flatnonzero(x == at)
    if exact.size:
        return float(y[exact[0]])
    above = x > at
    cross = np.flatnonzero(above[:-1] != above[1:])
    if cross.size == 0:
        return None
    i = int(cross[0])
    w = (at - x[i]) / (x[i + 1] - x[i])
    return float(y[i] + w * (y[i + 1] - y[i]))


def _atm_iv(e: _Expiry) -> float | None:
    values = [
        v
        for v in (_bracket(e.call_k, e.call_iv, e.forward), _bracket(e.put_k, e.put_iv, e.forward))
        if v is not None
    ]
    return sum(values) / len(values) if values else None


def _iv25(e: _Expiry) -> tuple[float | None, float | None]:
    """IVs at the 25-delta call and put, each interpolated in delta among OTM contracts."""
    c = e.call_k >= e.forward
    p = e.put_k <= e.forward
    return _bracket(e.call_delta[c], e.call_iv[c], 0.25), _bracket(e.put_delta[p], e.put_iv[p], -0.25)


def at_30_days(points: list[tuple[float, float]]) -> tuple[float | None, bool]:
    """Volatility at 30 days from (t, σ) points sorted by t: linear in total variance σ²t.

    Returns the value and whether it was extrapolated (flat: the nearest point's σ).
    """
    if not points:
        return None, False
    before = [p for p in points if p[0] <= T30]
    after = [p for p in points if p[0] >= T30]
    if not before or not after:
        nearest = min(points, key=lambda p: abs(p[0] - T30))
        return nearest[1], True
    (t1, s1), (t2, s2) = before[-1], after[0]
    if t1 == t2:
        return s1, False
    w1, w2 = s1 * s1 * t1, s2 * s2 * t2
    w = w1 + (w2 - w1) * (T30 - t1) / (t2 - t1)
    return (math.sqrt(w / T30) if w > 0 else None), False


def _ratio(puts: FloatArray, calls: FloatArray) -> float | None:
    """Sum of put figures over sum of call figures; None when none is known or calls sum to 0."""
    if np.isnan(puts).all() and np.isnan(calls).all():
        return None
    denominator = float(np.nansum(calls))
    return float(np.nansum(puts)) / denominator if denominator > 0 else None


def compute_metrics(chain: Chain) -> OptionsMetrics:
    """Every metric of ``chain`` (see the module docstring for the definitions)."""
    today = chain.as_of.astimezone(_NEW_YORK).date()
    cols = _columns(chain)
    expiries = _expiries(chain, cols)
    atm = [_atm_iv(e) for e in expiries]
    iv30, iv30_extrapolated = at_30_days(
        [(e.t, v) for e, v in zip(expiries, atm, strict=True) if v is not None]
    )

    wings = [_iv25(e) for e in expiries]
    c30, c_ext = at_30_days([(e.t, c) for e, (c, _) in zip(expiries, wings, strict=True) if c is not None])
    p30, p_ext = at_30_days([(e.t, p) for e, (_, p) in zip(expiries, wings, strict=True) if p is not None])
    rr25 = c30 - p30 if c30 is not None and p30 is not None else None
    bf25 = (c30 + p30) / 2 - iv30 if c30 is not None and p30 is not None and iv30 is not None else None

    move = move_abs = None
    move_expiration = None
    for e in expiries:
        if (e.expiration - today).days < 1:
            continue
        straddle = e.straddle()
        if straddle is not None:
            move_abs, move, move_expiration = straddle, straddle / chain.spot, e.expiration
            break

    puts = ~cols.call
    return OptionsMetrics(
        symbol=chain.symbol,
        as_of=chain.as_of,
        spot=chain.spot,
        rate=chain.rate,
        rate_source=chain.rate_source,
        provider=chain.provider,
        contracts=len(chain.contracts),
        iv30=iv30,
        iv30_extrapolated=iv30_extrapolated,
        rr25=rr25,
        bf25=bf25,
        rr25_extrapolated=c_ext or p_ext,
        implied_move=move,
        implied_move_abs=move_abs,
        implied_move_expiration=move_expiration,
        atm_iv={e.expiration.isoformat(): v for e, v in zip(expiries, atm, strict=True)},
        term_structure=[
            TermPoint(e.expiration, (e.expiration - today).days, e.t, v)
            for e, v in zip(expiries, atm, strict=True)
        ],
        put_call_volume_ratio=_ratio(cols.volume[puts], cols.volume[cols.call]),
        put_call_oi_ratio=_ratio(cols.oi[puts], cols.oi[cols.call]),
    )


def metric_rows(m: OptionsMetrics) -> list[OptionsMetricRow]:
    """The ``options_metrics`` rows of ``m`` (values may be None: "not computable then").

    ``atm_iv`` per expiration (tenor = its ISO date); ``iv30``, ``rr25``, ``bf25`` (tenor
    ``30d``); ``implied_move`` and ``implied_move_abs`` (tenor = the expiration used, ``""``
    when none); ``put_call_volume_ratio`` and ``put_call_oi_ratio`` (tenor ``""``).
    """

    def row(metric: str, tenor: str, value: float | None) -> OptionsMetricRow:
        return OptionsMetricRow(m.symbol, m.as_of, metric, tenor, value, m.provider)

    move_tenor = _iso(m.implied_move_expiration) or ""
    return [
        *(row("atm_iv", tenor, value) for tenor, value in m.atm_iv.items()),
        row("iv30", _TENOR_30D, m.iv30),
        row("rr25", _TENOR_30D, m.rr25),
        row("bf25", _TENOR_30D, m.bf25),
        row("implied_move", move_tenor, m.implied_move),
        row("implied_move_abs", move_tenor, m.implied_move_abs),
        row("put_call_volume_ratio", "", m.put_call_volume_ratio),
        row("put_call_oi_ratio", "", m.put_call_oi_ratio),
    ]
