"""The backfill dead-letter queue: list, requeue (one or a tier's), purge, counts.

The ``/ops/dlq`` routes and the admin console's DLQ page both call these, so a requeued
job goes back both to the store and, where this process runs a collector, to its queue.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from mds.domain.models import Tier
from mds.domain.records import BackfillRecord, BackfillStatus
from mds.errors import NotFound

if TYPE_CHECKING:
    from mds.runtime import Runtime


async def failed(runtime: Runtime, *, tier: Tier | None, limit: int, offset: int) -> list[BackfillRecord]:
    """Failed backfill jobs (the DLQ), one page."""
    return await runtime.store.list_backfills(
        status=BackfillStatus.FAILED, tier=tier, limit=limit, offset=offset
    )


async def requeue(runtime: Runtime, job_id: int) -> BackfillRecord:
    """Queue one failed job again.

    Raises:
        NotFound: No failed job has this id.
    """
    rec = await runtime.store.requeue_backfill(job_id, now=runtime.clock.now())
    if rec is None:
        raise NotFound("failed backfill job", str(job_id))
    if runtime.collector is not None:
        await runtime.collector.backfiller.requeue(rec)
    return rec


async def requeue_all(runtime: Runtime, *, tier: Tier | None) -> list[BackfillRecord]:
    """Queue every failed job (of ``tier``; all when None) again."""
    recs = await runtime.store.requeue_failed(tier=tier, now=runtime.clock.now())
    if runtime.collector is not None:
        for rec in recs:
            await runtime.collector.backfiller.requeue(rec)
    return recs


async def purge(runtime: Runtime, *, days: int) -> tuple[int, datetime]:
    """Delete failed jobs last updated more than ``days`` ago: (how many, the cut-off)."""
    cutoff = runtime.clock.now() - timedelta(days=days)
    n = await runtime.store.purge_backfills(status=BackfillStatus.FAILED, older_than=cutoff)
    return n, cutoff
