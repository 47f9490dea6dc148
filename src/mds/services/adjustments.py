"""Which adjustment a read applies: the actions known at its ``as_of`` with an ex-date on or
before its basis date, and the raw closes its dividends' factors divide by.

A read's *basis date* is the session its prices are expressed in: today for a plain read,
``date`` for an event-time read. Actions after it are not applied, so a read "on D" shows
the prices as they traded on D (a later split does not rescale them), and an action learned
after ``as_of`` is not applied either (point in time).

Plans are remembered per (symbol, mode, as_of, basis date) under the symbol's daily-series
generation (:mod:`mds.services.bar_cache`): a refresh that learns an action bumps it, as
does any write that changes a daily close, so a repeated read pays one cache lookup instead
of the actions query (and, for dividends, the read of their previous closes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Protocol

from mds.calendar import MarketCalendar
from mds.corporate.adjust import RAW, Adjust, Adjustment, cutoff, plan
from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar, Interval
from mds.services.bar_cache import SeriesGenerations
from mds.storage.base import BarStore, CorporateActionStore

#: Plans remembered per process (a plan is a few actions; 4,096 is a large universe's worth).
_MEMO_SIZE = 4096


class AdjustmentStore(BarStore, CorporateActionStore, Protocol):
    """Bars (for dividends' previous closes) and corporate actions."""


class Adjustments:
    def __init__(
        self, store: AdjustmentStore, calendar: MarketCalendar, generations: SeriesGenerations | None = None
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.generations = generations
        self._memo: OrderedDict[tuple[object, ...], tuple[str, Adjustment]] = OrderedDict()

    async def actions(self, symbol: str, *, as_of: datetime | None, through: date) -> list[CorporateAction]:
        """The actions of ``symbol`` known at ``as_of`` with ``ex_date <= through``."""
        return await self.store.corporate_actions(symbol, as_of=as_of, end=through)

    async def plan(
        self,
        symbol: str,
        mode: Adjust,
        *,
        as_of: datetime | None,
        through: date,
        daily: Sequence[Bar] = (),
    ) -> Adjustment:
        """The adjustment of a read of ``symbol``; ``daily`` are raw daily bars the read holds
        already (their closes are used before any is read again)."""
        if mode is Adjust.RAW:
            return RAW
        if self.generations is None:
            return await self._plan(symbol, mode, as_of=as_of, through=through, daily=daily)
        key = (symbol, mode, as_of, through)
        token = await self.generations.current(symbol, Interval.D1)
        kept = self._memo.get(key)
        if kept is not None and kept[0] == token:
            self._memo.move_to_end(key)
            return kept[1]
        adjustment = await self._plan(symbol, mode, as_of=as_of, through=through, daily=daily)
        self._memo[key] = (token, adjustment)
        if len(self._memo) > _MEMO_SIZE:
            self._memo.popitem(last=False)
        return adjustment

    async def _plan(
        self, symbol: str, mode: Adjust, *, as_of: datetime | None, through: date, daily: Sequence[Bar]
    ) -> Adjustment:
        actions = await self.actions(symbol, as_of=as_of, through=through)
        if not actions:
            return Adjustment(mode)
        closes: dict[date, float] = {}
        if mode is Adjust.ALL:
            dividends = [a for a in actions if a.type is ActionType.DIVIDEND]
            closes = await self.previous_closes(symbol, dividends, as_of=as_of, daily=daily)
        return plan(mode, actions, previous_closes=closes)

    async def previous_closes(
        self,
        symbol: str,
        dividends: Sequence[CorporateAction],
        *,
        as_of: datetime | None,
        daily: Sequence[Bar] = (),
    ) -> dict[date, float]:
        """Ex-date -> the raw close of the session before it, from ``daily`` where it holds
        that session, else from one read of the stored daily bars spanning the rest."""
        if not dividends:
            return {}
        wanted: dict[datetime, date] = {}
        for d in dividends:
            before = self.calendar.sessions(cutoff(d.ex_date) - timedelta(days=10), cutoff(d.ex_date))
            if before:
                wanted[before[-1].open] = d.ex_date
        held = {b.ts: b.close for b in daily if b.interval is Interval.D1}
        out = {ex: held[ts] for ts, ex in wanted.items() if ts in held}
        missing = [ts for ts, ex in wanted.items() if ex not in out]
        if missing:
            rows = await self.store.read_bars(
                symbol, Interval.D1, min(missing), max(missing) + timedelta(seconds=1), as_of=as_of
            )
            found = {b.ts: b.close for b in rows}
            out.update({wanted[ts]: found[ts] for ts in missing if ts in found})
        return out
