"""Split and dividend adjustment of raw bars.

MDS stores prices as traded. An adjusted read multiplies every price of a bar by the
product of the factors of the actions whose ex-date is after the bar's session, so the
series is continuous across them:

- a split of ratio r (new shares per old): prices × 1/r, volume × r;
- a cash dividend D (``all`` only): prices × (1 − D / P), P the raw close of the session
  before the ex-date (CRSP's multiplicative factor); volume unchanged.

A bar's session is its New York date, so a bar is "before" an action when its ``ts`` is
before midnight New York time at the start of the ex-date; that is one cutoff instant per
action, and the factors are a step function of ``ts`` (bars are adjusted segment by
segment, not action by action). Hand-written: the adjustment is ~20 lines of arithmetic that
no library offers for a bitemporal store (pandas-market-calendars and vendors' own
"adjusted" flags adjust at the vendor's knowledge time, not at a chosen one).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import Enum
from typing import Any

import numpy as np

from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar
from mds.providers.timeconv import NEW_YORK
from mds.serialize import iso

__all__ = ["RAW", "Adjust", "Adjustment", "Applied", "adjust_rows", "cutoff", "plan", "previous_closes_in"]


class Adjust(str, Enum):
    """What a read applies: nothing (as stored), splits, or splits and dividends."""

    RAW = "raw"
    SPLIT = "split"
    ALL = "all"


def cutoff(ex_date: date) -> datetime:
    """The instant an action takes effect: midnight New York time at the start of ``ex_date``."""
    return datetime.combine(ex_date, time(0), NEW_YORK).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Applied:
    """One action an adjustment applies: bars with ``ts < cutoff`` have prices × ``price_factor``
    and volume × ``volume_factor`` (on top of the later actions' factors)."""

    action: CorporateAction
    cutoff: datetime
    price_factor: float
    volume_factor: float
    previous_close: float | None = None  # the raw close a dividend's factor was computed from


@dataclass(frozen=True, slots=True)
class Adjustment:
    """The actions one read applies (``applied``, by ex-date) and those it could not
    (``skipped``: a dividend without a stored close before its ex-date, with the reason)."""

    mode: Adjust
    applied: tuple[Applied, ...] = ()
    skipped: tuple[tuple[CorporateAction, str], ...] = ()

    def apply(self, bars: list[Bar]) -> list[Bar]:
        """``bars`` (in time order) adjusted; bars after every cutoff are returned as they are."""
        if not self.applied or not bars:
            return bars
        cuts = [a.cutoff for a in self.applied]
        # Cumulative factors of the segment before each cutoff: the product of that cutoff's
        # factor and every later one's.
        price = [1.0] * (len(cuts) + 1)
        volume = [1.0] * (len(cuts) + 1)
        for i in range(len(cuts) - 1, -1, -1):
            price[i] = price[i + 1] * self.applied[i].price_factor
            volume[i] = volume[i + 1] * self.applied[i].volume_factor
        out: list[Bar] = []
        lo = 0
        n = len(bars)
        for seg in range(len(cuts) + 1):
            hi = n if seg == len(cuts) else _first_at_or_after(bars, cuts[seg], lo)
            if hi > lo:
                p, v = price[seg], volume[seg]
                if p == 1.0 and v == 1.0:
                    out.extend(bars[lo:hi])
                else:
                    # tuple.__new__ rather than _replace: ~5x faster per bar, and a year of
                    # 1m bars is ~98k of them. Field order is Bar's.
                    make = tuple.__new__
                    out.extend(
                        make(
                            Bar,
                            (
                                b[0],
                                b[1],
                                b[2],
                                b[3] * p,
                                b[4] * p,
                                b[5] * p,
                                b[6] * p,
                                b[7] * v,
                                b[8],
                                True,
                                b[10],
                                b[11],
                            ),
                        )
                        for b in bars[lo:hi]
                    )
            lo = hi
        return out

    def price_factor_at(self, ts: datetime) -> float:
        """The factor prices at ``ts`` are multiplied by."""
        factor = 1.0
        for a in self.applied:
            if ts < a.cutoff:
                factor *= a.price_factor
        return factor

    def describe(self) -> dict[str, Any]:
        """The adjustment as a response says it: mode, applied actions and skipped ones."""
        return {
            "mode": self.mode.value,
            "actions": [action_json(a.action, factor=a.price_factor) for a in self.applied],
            "skipped": [{**action_json(a), "reason": why} for a, why in self.skipped],
        }


def _first_at_or_after(bars: Sequence[Bar], when: datetime, lo: int) -> int:
    return bisect_right(bars, False, lo=lo, key=lambda b: b.ts >= when)


RAW = Adjustment(Adjust.RAW)


def plan(
    mode: Adjust,
    actions: Sequence[CorporateAction],
    *,
    previous_closes: Mapping[date, float] | None = None,
) -> Adjustment:
    """The adjustment ``mode`` makes with ``actions`` (what was known at the read's ``as_of``).

    ``previous_closes`` maps a dividend's ex-date to the raw close of the session before it;
    a dividend without one is skipped and named (the factor needs it), as is one whose
    amount is not below that close.
    """
    if mode is Adjust.RAW:
        return RAW
    applied: list[Applied] = []
    skipped: list[tuple[CorporateAction, str]] = []
    closes = previous_closes or {}
    for action in sorted(actions, key=lambda a: (a.ex_date, a.type.value)):
        if action.type is ActionType.SPLIT:
            ratio = float(action.ratio or 1.0)
            applied.append(Applied(action, cutoff(action.ex_date), 1.0 / ratio, ratio))
        elif mode is Adjust.ALL:
            close = closes.get(action.ex_date)
            amount = float(action.amount or 0.0)
            if close is None:
                skipped.append((action, "no stored close before the ex-date"))
            elif amount >= close:
                skipped.append((action, f"dividend {amount} is not below the previous close {close}"))
            else:
                applied.append(Applied(action, cutoff(action.ex_date), 1.0 - amount / close, 1.0, close))
    return Adjustment(mode, tuple(applied), tuple(skipped))


def action_json(action: CorporateAction, *, factor: float | None = None) -> dict[str, Any]:
    """An action as the API shows it."""
    out: dict[str, Any] = {
        "type": action.type.value,
        "ex_date": action.ex_date.isoformat(),
        "ratio": action.ratio,
        "amount": action.amount,
        "currency": action.currency,
        "source": action.source,
        "as_of": iso(action.as_of) if action.as_of is not None else None,
    }
    if factor is not None:
        out["factor"] = factor
    return out


def adjust_rows(rows: np.ndarray, adjustment: Adjustment) -> np.ndarray:
    """Rows of (epoch ts, open, high, low, close[, ...]) with their prices adjusted.

    The array form of :meth:`Adjustment.apply` for the indicator engine: columns 1..4 are
    multiplied by each row's cumulative price factor; other columns are left as they are.
    """
    if not adjustment.applied or len(rows) == 0:
        return rows
    cuts = np.array([a.cutoff.timestamp() for a in adjustment.applied])
    factors = np.array([a.price_factor for a in adjustment.applied])
    # Suffix products: a row before cutoff i takes factors i..n-1.
    suffix = np.append(np.cumprod(factors[::-1])[::-1], 1.0)
    factor = suffix[np.searchsorted(cuts, rows[:, 0], side="right")]
    out = rows.copy()
    out[:, 1:5] *= factor[:, None]
    return out


def previous_closes_in(rows: np.ndarray, dividends: Sequence[CorporateAction]) -> dict[date, float]:
    """For each dividend, the close of the last row before its ex-date, where ``rows`` (epoch
    ts, open, high, low, close) hold one: the raw close its factor divides by."""
    out: dict[date, float] = {}
    if len(rows) == 0:
        return out
    for d in dividends:
        i = int(np.searchsorted(rows[:, 0], cutoff(d.ex_date).timestamp(), side="left")) - 1
        if i >= 0:
            out[d.ex_date] = float(rows[i, 4])
    return out
