"""Daily jumps that no known corporate action explains.

An unannounced split shows in raw daily bars as an overnight gap of the split's size
(close 240, next open 60). Such a gap is recorded for an operator as a suspected action
and counted, never used to adjust anything: a real crash looks the same, and only a
published action may change prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from mds.domain.actions import CorporateAction, SuspectedAction
from mds.domain.models import Bar
from mds.providers.timeconv import local_date

__all__ = ["unexplained_jumps"]


def unexplained_jumps(
    bars: Sequence[Bar],
    actions: Sequence[CorporateAction],
    *,
    threshold: float,
    detected_at: datetime,
) -> list[SuspectedAction]:
    """Sessions of daily ``bars`` (in time order) whose open differs from the previous close by
    more than the fraction ``threshold`` (0.4: a move of over 40 % either way, i.e. a ratio
    above 1.4 or below 1/1.4), unless an action's ex-date falls after the previous session
    and on or before this one."""
    limit = 1.0 + threshold
    ex_dates = sorted({a.ex_date for a in actions})
    out: list[SuspectedAction] = []
    for prev, bar in zip(bars, bars[1:], strict=False):
        if prev.close <= 0 or bar.open <= 0:
            continue
        ratio = prev.close / bar.open
        if 1.0 / limit <= ratio <= limit:
            continue
        before, session = local_date(prev.ts), local_date(bar.ts)
        if _explained(ex_dates, before, session):
            continue
        out.append(SuspectedAction(bar.symbol, session, prev.close, bar.open, ratio, detected_at))
    return out


def _explained(ex_dates: Sequence[date], before: date, session: date) -> bool:
    return any(before < d <= session for d in ex_dates)
