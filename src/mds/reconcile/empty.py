"""Re-check of minutes recorded as confirmed empty ("no trades").

Under heavy provider loss the four-answer rule (:meth:`BarIngestor._weigh_empty_minutes`)
can mark a traded minute empty: enough answers lacked it, all of them wrong. Once the
vendors' revision window has passed, their answers for it are final, so each such minute
of the last ``empty_recheck_sessions`` sessions before the window is asked again, of a
provider other than the ones whose answers confirmed it when one is routable. A minute
found with trades has its evidence cleared and the bar that provider gave stored.

The bar is written with the store's ordinary ``write_bars`` (it keeps the bar's own
``provider`` and stamps ``as_of`` now, like any ingest) and only for the minutes that were
confirmed empty: every other bar of the range belongs to the series' own provider, and
writing the second vendor's version of it would "fix" data by majority, which MDS does not.
Not a backfill job: the backfill path routes by policy order, which asks first the very
provider whose answers lacked the minute.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mds.calendar import MarketCalendar
from mds.domain.clock import Clock
from mds.domain.models import Bar, Interval, capability_for_interval
from mds.observability.metrics import Metrics
from mds.reconcile.records import EmptyMinute
from mds.reconcile.service import Reconciler, ReconcileSettings, ReconcileStore
from mds.routing.router import Router
from mds.services.bar_cache import SeriesGenerations

log = logging.getLogger(__name__)

#: Most confirmed-empty minutes one re-check reads.
MAX_MINUTES = 50_000


@dataclass
class EmptyRecheck:
    checked: int = 0
    cleared: int = 0
    still_empty: int = 0
    #: Minutes no second provider answered for (left as they were).
    unanswered: int = 0
    #: Symbol -> epochs cleared and filled.
    filled: dict[str, list[int]] = field(default_factory=dict)

    def counters(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "cleared": self.cleared,
            "still_empty": self.still_empty,
            "unanswered": self.unanswered,
        }


async def recheck_empty(
    *,
    store: ReconcileStore,
    router: Router,
    calendar: MarketCalendar,
    clock: Clock,
    settings: ReconcileSettings,
    interval: Interval = Interval.M1,
    metrics: Metrics | None = None,
    generations: SeriesGenerations | None = None,
) -> EmptyRecheck:
    """Re-ask a second provider about confirmed-empty minutes past the revision window."""
    out = EmptyRecheck()
    now = clock.now()
    horizon = now - settings.revision_window
    sessions = calendar.closed_sessions(horizon, settings.empty_recheck_sessions)
    if not sessions:
        return out
    minutes = await store.empty_minutes(interval, sessions[0].open, sessions[-1].close, limit=MAX_MINUTES)
    groups: dict[tuple[str, datetime], list[EmptyMinute]] = defaultdict(list)
    for m in minutes:
        session = calendar.session_for(m.ts)
        groups[(m.symbol, m.ts if session is None else session.open)].append(m)
    out.checked = len(minutes)
    fetcher = Reconciler(store=store, router=router, calendar=calendar, clock=clock, settings=settings)
    order = router.order(capability_for_interval(interval))
    for (symbol, _), group in sorted(groups.items()):
        confirmers = {p for m in group for p in m.providers}
        names = [n for n in order if n not in confirmers] + [n for n in order if n in confirmers]
        wanted = {int(m.ts.timestamp()) for m in group}
        start = min(m.ts for m in group)
        end = max(m.ts for m in group) + interval.delta
        answered = await fetcher.fetch_first(names, symbol, interval, start, end)
        if answered is None:
            out.unanswered += len(group)
            continue
        traded = [b for b in answered[1] if int(b.ts.timestamp()) in wanted]
        out.still_empty += len(group) - len(traded)
        if not traded:
            continue
        # Writing a new bar drops the "no trades" evidence of its time (BarStore.write_bars).
        await _fill(store, traded, now)
        epochs = sorted(int(b.ts.timestamp()) for b in traded)
        if generations is not None:
            await generations.bump(symbol, interval)
        out.cleared += len(epochs)
        out.filled.setdefault(symbol, []).extend(epochs)
        if metrics is not None:
            metrics.reconcile_empty_cleared_total.labels(interval=interval.value).inc(len(epochs))
        log.warning(
            "%s: %d minute(s) recorded as having no trades traded after all (%s says); cleared and filled",
            symbol,
            len(epochs),
            answered[0],
        )
    return out


async def _fill(store: ReconcileStore, bars: list[Bar], now: datetime) -> None:
    """Store the traded bars with the status their provider gave (past the revision window
    the bars are closed, so a closed-bar check has nothing left to demote)."""
    await store.write_bars(bars, as_of=now.astimezone(UTC))
