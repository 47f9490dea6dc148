"""Corporate actions: refresh from the routed vendors, cross-check daily jumps, point-in-time reads.

A refresh asks the ``corporate_actions`` route (failover is the router's) for each symbol's
splits and dividends over ``[today - CORPORATE_ACTIONS_HISTORY_DAYS, today +
CORPORATE_ACTIONS_AHEAD_DAYS]`` and stores them learned now; the store keeps a repeated
announcement at its first knowledge time, so a second refresh learns nothing. A symbol whose
actions changed has its kept responses dropped (its series generations are bumped), since an
adjusted read now answers differently.

Then the symbol's stored daily bars over the same window are checked against every action
known for it: an overnight jump no action explains is recorded as a suspected unannounced
action for an operator, and a suspicion the fresh check no longer raises (an action now
explains it, or the bars were restated) is cleared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.corporate.adjust import cutoff
from mds.corporate.jumps import unexplained_jumps
from mds.domain.actions import CorporateAction, SuspectedAction
from mds.domain.clock import Clock
from mds.domain.models import Capability, Interval
from mds.errors import NoData, NoProviderAvailable, ProviderError
from mds.providers.base import CorporateActionsProvider, Provider
from mds.providers.timeconv import local_date
from mds.routing.router import Router
from mds.storage.base import Store

if TYPE_CHECKING:
    from mds.observability.metrics import Metrics
    from mds.services.bar_cache import SeriesGenerations

__all__ = ["ADJUSTED_SERIES", "CorporateActionsService", "RefreshReport"]

#: The stored series an adjusted read is served from: their kept responses go stale when an
#: action of the symbol is learned (5m and up roll up from 1m, or come from native 5m).
ADJUSTED_SERIES = (Interval.D1, Interval.M1, Interval.M5)
#: Errors kept in a report's counters (the per-symbol results keep them all).
ERRORS_KEPT = 20
#: Suspicions of one symbol read back to decide which to clear; far more than a symbol has.
SUSPECTED_READ_MAX = 10_000


@dataclass
class RefreshReport:
    """What one refresh did, per symbol: provider, fetched, learned, suspected, cleared, or error."""

    symbols: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [s for s, v in self.symbols.items() if "error" in v]

    @property
    def changed(self) -> list[str]:
        """Symbols with a new or restated action: their adjusted reads and snapshots changed."""
        return [s for s, v in self.symbols.items() if v.get("learned", 0) > 0]

    def counters(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "symbols": len(self.symbols),
            "failed": len(self.failed),
            "learned": sum(v.get("learned", 0) for v in self.symbols.values()),
            "suspected": sum(v.get("suspected", 0) for v in self.symbols.values()),
            "cleared": sum(v.get("cleared", 0) for v in self.symbols.values()),
        }
        if self.failed:
            out["errors"] = {s: self.symbols[s]["error"] for s in self.failed[:ERRORS_KEPT]}
        return out


class CorporateActionsService:
    def __init__(
        self,
        *,
        store: Store,
        router: Router,
        clock: Clock,
        calendar: MarketCalendar,
        settings: Settings,
        generations: SeriesGenerations | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.router = router
        self.clock = clock
        self.calendar = calendar
        self.settings = settings
        self.generations = generations
        self.metrics = metrics

    def window(self) -> tuple[date, date]:
        """The ex-dates a refresh asks for, around today in the exchange's zone."""
        today = self.clock.now().astimezone(ZoneInfo(self.calendar.zone)).date()
        return (
            today - timedelta(days=self.settings.CORPORATE_ACTIONS_HISTORY_DAYS),
            today + timedelta(days=self.settings.CORPORATE_ACTIONS_AHEAD_DAYS),
        )

    # -- refresh -------------------------------------------------------------------------
    async def refresh(self, symbols: Sequence[str] | None = None) -> RefreshReport:
        """Fetch and store each symbol's actions (default: the active universe), then
        cross-check its daily bars. A symbol whose fetch fails is reported with its error
        (and not cross-checked: an action it would have brought may be missing); the others
        go on."""
        if symbols is None:
            names = [e.symbol for e in await self.store.universe()]
        else:
            names = list(dict.fromkeys(s.upper() for s in symbols))
        start, end = self.window()
        report = RefreshReport()
        for symbol in names:
            try:
                routed = await self.router.call(
                    Capability.CORPORATE_ACTIONS, partial(_fetch, symbol=symbol, start=start, end=end)
                )
                fetched, provider = routed.value, routed.provider
            except NoData:
                # Every vendor that answered knows no action of it in the window: nothing to learn.
                fetched, provider = [], None
            except ProviderError as exc:
                report.symbols[symbol] = {"error": f"{exc.kind}: {exc.message}"[:300]}
                continue
            except NoProviderAvailable as exc:  # every provider failed or was skipped
                report.symbols[symbol] = {"error": str(exc)[:300]}
                continue
            learned = await self._store(symbol, fetched)
            suspected, cleared = await self.cross_check(symbol, start, end)
            report.symbols[symbol] = {
                "provider": provider,
                "fetched": len(fetched),
                "learned": len(learned),
                "suspected": suspected,
                "cleared": cleared,
            }
        return report

    async def _store(self, symbol: str, fetched: list[CorporateAction]) -> list[CorporateAction]:
        learned = await self.store.write_corporate_actions(fetched, as_of=self.clock.now()) if fetched else []
        if not learned:
            return learned
        if self.generations is not None:
            for interval in ADJUSTED_SERIES:
                await self.generations.bump(symbol, interval)
        if self.metrics is not None:
            for action in learned:
                self.metrics.corporate_actions_learned_total.labels(type=action.type.value).inc()
        return learned

    async def cross_check(self, symbol: str, start: date, end: date) -> tuple[int, int]:
        """Record the jumps of ``symbol``'s stored daily bars with sessions in ``start..end``
        that no known action explains, and clear the stored suspicions in the bars' span the
        check no longer raises. Returns (new suspicions, cleared suspicions)."""
        bars = await self.store.read_bars(symbol, Interval.D1, cutoff(start), cutoff(end + timedelta(days=1)))
        if len(bars) < 2:
            return 0, 0
        actions = await self.store.corporate_actions(symbol)
        flagged = unexplained_jumps(
            bars,
            actions,
            threshold=self.settings.CORPORATE_ACTIONS_JUMP_THRESHOLD,
            detected_at=self.clock.now(),
        )
        new = await self.store.record_suspected_actions(flagged) if flagged else 0
        if new and self.metrics is not None:
            self.metrics.corporate_actions_suspected_total.inc(new)
        # Only sessions this check looked at can be cleared: a suspicion older than the bars
        # read stays until a check covers it again.
        first, last = local_date(bars[0].ts), local_date(bars[-1].ts)
        still = {s.session for s in flagged}
        stored = await self.store.suspected_actions(symbol=symbol, limit=SUSPECTED_READ_MAX)
        gone = sorted({s.session for s in stored if first <= s.session <= last and s.session not in still})
        cleared = await self.store.clear_suspected_actions(symbol, gone) if gone else 0
        return new, cleared

    # -- reads ---------------------------------------------------------------------------
    async def actions(
        self,
        symbol: str,
        *,
        as_of: datetime | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> list[CorporateAction]:
        """``symbol``'s actions with ex-dates in ``start..end`` as MDS knew them at ``as_of``
        (the newest when None), by ex-date."""
        return await self.store.corporate_actions(symbol.upper(), as_of=as_of, start=start, end=end)

    async def suspected(self, *, symbol: str | None = None, limit: int = 100) -> list[SuspectedAction]:
        """The newest ``limit`` suspected unannounced actions (of ``symbol``), newest session first."""
        return await self.store.suspected_actions(symbol=symbol.upper() if symbol else None, limit=limit)


async def _fetch(provider: Provider, *, symbol: str, start: date, end: date) -> list[CorporateAction]:
    # The router calls only providers that declare Capability.CORPORATE_ACTIONS, which implement it.
    return await cast(CorporateActionsProvider, provider).fetch_corporate_actions(symbol, start, end)
