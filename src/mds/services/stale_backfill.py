"""Seed 004's "Backfill Daily (Stale Only)": queue daily backfills for the stale tracked
symbols only, recorded as a ``backfill_stale_daily`` job run.

The API (``POST …/admin/coverage/backfill-stale-daily``) and the admin console's quick
action both call :func:`backfill_stale_daily`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from mds.errors import MdsError
from mds.serialize import iso
from mds.services.coverage import STALE_BUCKETS
from mds.services.tracked import queue_daily_backfill

if TYPE_CHECKING:
    from mds.runtime import Runtime


class NoCollector(MdsError):
    """This process runs no collector, so it cannot queue backfills."""

    def __init__(self) -> None:
        super().__init__("this process runs no collector; send backfills to a worker")


async def backfill_stale_daily(runtime: Runtime, *, created_by: str | None) -> dict[str, Any]:
    """Queue the last BACKFILL_TRACKED_SESSIONS daily bars each stale tracked symbol (daily
    bucket ``>48h``, ``none`` or ``24-48h``) misses, neither stored nor confirmed empty.

    Raises:
        NoCollector: This process runs no collector.
    """
    if runtime.collector is None:
        raise NoCollector()
    sessions = runtime.settings.BACKFILL_TRACKED_SESSIONS
    now = runtime.clock.now()
    closed = runtime.calendar.closed_sessions(now, sessions)
    async with runtime.runs.recorded("backfill_stale_daily", created_by=created_by) as counters:
        groups = await runtime.coverage.stale_by_bucket(STALE_BUCKETS)
        stale = sorted(s for group in groups.values() for s in group)
        result = await queue_daily_backfill(
            stale,
            store=runtime.store,
            calendar=runtime.calendar,
            clock=runtime.clock,
            backfiller=runtime.collector.backfiller,
            sessions=sessions,
        )
        counters.update(
            symbols=len(stale), jobs_created=len(result.created), jobs_refused=len(result.refused)
        )
    return {
        "symbols": len(stale),
        "buckets": list(STALE_BUCKETS),
        "per_bucket": {b: len(group) for b, group in groups.items()},
        "sessions": sessions,
        "start": iso(closed[0].open) if closed else None,
        "end": iso(now),
        "jobs_created": len(result.created),
        "jobs_merged": len(result.merged_into),
        "jobs_refused": len(result.refused),
        "refused": dict(Counter(result.refused)),
    }
