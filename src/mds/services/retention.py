"""Retention: native 5m bars older than RETENTION_DAYS_5M are deleted, 1m bars older than
RETENTION_DAYS_1M where that is set, on SQLite and plain PostgreSQL.

TimescaleDB keeps its own policy for 1m bars (a job that expires them by interval, see
``migrations/postgres/timescaledb``), so there this service leaves 1m alone and says so.
Daily bars are never expired.

Deleting old bars changes what an old range answers, so after a pass that deleted
anything the response cache's generations of that interval are bumped for every symbol
of the universe (a retention pass is rare; the cache then never serves a deleted bar).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Protocol

from mds.domain.clock import Clock
from mds.domain.models import Interval
from mds.observability.metrics import Metrics
from mds.serialize import iso
from mds.services.bar_cache import SeriesGenerations
from mds.storage.base import RetentionStore, UniverseStore

log = logging.getLogger(__name__)

TIMESCALE_SKIP = "skipped: TimescaleDB policy"
DISABLED = "skipped: keep all (0 days)"


class RetentionTarget(RetentionStore, UniverseStore, Protocol):
    """What a retention pass needs: the delete, and the universe for cache generations."""


async def enforce_retention(
    store: RetentionTarget,
    clock: Clock,
    *,
    max_days_5m: int,
    max_days_1m: int,
    timescale: bool,
    metrics: Metrics | None = None,
    generations: SeriesGenerations | None = None,
) -> dict[str, Any]:
    """Delete the bars retention says are too old; report what went, per interval.

    Args:
        store: The bar store.
        clock: The service clock; cutoffs are ``now - max_days``.
        max_days_5m: Days of 5m bars kept; 0 keeps all.
        max_days_1m: Days of 1m bars kept; 0 keeps all. Ignored on TimescaleDB.
        timescale: The store runs on TimescaleDB (it expires 1m bars itself).
        metrics: Counts deleted rows in ``retention_deleted_bars_total{interval}``.
        generations: The response cache's series generations, bumped where bars went.

    Returns:
        ``{"ran_at": iso, "intervals": {"5m": {...}, "1m": {...}}}``; each interval has
        ``max_days`` and either ``cutoff``, ``deleted_bars`` and ``deleted_history`` or
        ``skipped`` with the reason.
    """
    now = clock.now()
    report: dict[str, dict[str, Any]] = {}
    plan = (
        (Interval.M5, max_days_5m, None),
        (Interval.M1, max_days_1m, TIMESCALE_SKIP if timescale else None),
    )
    for interval, days, skipped in plan:
        entry: dict[str, Any] = {"max_days": days}
        report[interval.value] = entry
        if skipped is None and days <= 0:
            skipped = DISABLED
        if skipped is not None:
            entry["skipped"] = skipped
            continue
        cutoff = now - timedelta(days=days)
        count = await store.delete_bars_before(interval, cutoff)
        entry.update(cutoff=iso(cutoff), deleted_bars=count.bars, deleted_history=count.history)
        if metrics is not None and count.bars + count.history:
            metrics.retention_deleted_bars_total.labels(interval=interval.value).inc(
                count.bars + count.history
            )
        if generations is not None and count.bars + count.history:
            for e in await store.universe(active_only=False):
                await generations.bump(e.symbol, interval)
        if count.bars + count.history:
            log.info(
                "retention %s: deleted %d bars and %d history rows before %s",
                interval.value,
                count.bars,
                count.history,
                iso(cutoff),
            )
    return {"ran_at": iso(now), "intervals": report}
