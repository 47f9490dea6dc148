"""Native 5m history for tracked symbols that have no 1m series (issue 14).

A symbol MDS collects 1m bars for answers 5m reads by rolling them up; one it does not
(a tracked symbol outside the live universe's 1m sweeps) gets vendor 5m bars instead:
jobs of interval 5m through the tiered backfill, routed by the ``bars_5m`` capability
(POLICY_BARS_5M, default FMP -> Twelve Data -> Yahoo). Only what the store lacks is
queued (a gap scan of the window), so running it again costs a scan, not a refetch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol

from mds.calendar import MarketCalendar
from mds.domain.clock import Clock
from mds.domain.models import Interval
from mds.ingest.backfill import Backfiller
from mds.ingest.scan import ScanStore, scan_gaps
from mds.serialize import iso
from mds.storage.base import CoverageStore, UniverseStore


class History5mStore(ScanStore, CoverageStore, UniverseStore, Protocol):
    """What planning 5m backfills reads: 1m presence, 5m gaps, listings and tiers."""


async def backfill_5m(
    *,
    symbols: Sequence[str],
    n_days: int,
    batch_size: int,
    backfiller: Backfiller,
    store: History5mStore,
    clock: Clock,
    calendar: MarketCalendar,
) -> dict[str, Any]:
    """Queue native 5m backfills over the last ``n_days`` for symbols without 1m bars.

    A symbol holding any 1m bar in the window is skipped: its 5m reads are rolled up from
    1m. For the others the closed 5m bars missing in the window (neither stored nor
    confirmed empty, none before a known listing) are queued by tier, T0 first, in batches
    of ``batch_size`` symbols (one presence probe and one gap scan per batch).

    Returns:
        ``symbols`` considered, ``skipped_with_1m``, ``queued_symbols`` (ones with work
        queued), ``jobs_created``, ``merged_into`` (ids), ``refused`` (count per reason),
        and the window ``start``/``end``.
    """
    if n_days < 1:
        raise ValueError("n_days must be at least 1")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    wanted = sorted(set(symbols))
    now = clock.now()
    start, end = now - timedelta(days=n_days), now
    tiers = {e.symbol: e.tier for e in await store.universe(active_only=False)}
    skipped = queued = created = 0
    merged: list[int] = []
    refused: dict[str, int] = defaultdict(int)
    for i in range(0, len(wanted), batch_size):
        batch = wanted[i : i + batch_size]
        # The newest 1m bar is one index probe per symbol; at or after start means the
        # window holds a 1m series.
        last_1m = await store.last_bar_times(Interval.M1, batch)
        with_1m = {s for s, ts in last_1m.items() if ts >= start}
        skipped += len(with_1m)
        todo = [s for s in batch if s not in with_1m]
        if not todo:
            continue
        gaps = await scan_gaps(
            store, calendar, symbols=todo, interval=Interval.M5, start=start, end=end, now=now
        )
        queued += len({g.symbol for g in gaps})
        r = await backfiller.enqueue_gaps_by_tier(gaps, tiers)
        created += len(r.created)
        merged += r.merged_into
        for reason in r.refused:
            refused[reason] += 1
    return {
        "symbols": len(wanted),
        "skipped_with_1m": skipped,
        "queued_symbols": queued,
        "jobs_created": created,
        "merged_into": merged,
        "refused": dict(refused),
        "start": iso(start),
        "end": iso(end),
    }
