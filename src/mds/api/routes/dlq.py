"""The backfill dead-letter queue (seed names): list, requeue, stats, purge."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query

from mds.api.deps import RuntimeDep
from mds.domain.models import Tier
from mds.domain.records import BackfillRecord, BackfillStatus
from mds.errors import InvalidRequest, NotFound
from mds.serialize import iso

router = APIRouter(prefix="/ops/dlq", tags=["dlq"])


def _job(r: BackfillRecord) -> dict[str, object]:
    return {
        "id": r.id,
        "symbol": r.symbol,
        "interval": r.interval.value,
        "start": iso(r.start),
        "end": iso(r.end),
        "priority": r.priority.value,
        "status": r.status.value,
        "attempts": r.attempts,
        "last_error": r.last_error,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    }


def _tier(value: str | None) -> Tier | None:
    if value is None:
        return None
    try:
        return Tier(value.upper())
    except ValueError:
        raise InvalidRequest("tier", f"unknown tier {value!r}; use T0, T1 or T2") from None


@router.get("/backfills")
async def failed_backfills(
    runtime: RuntimeDep,
    limit: int = Query(100, ge=1, le=1000, description="Page size"),
    offset: int = Query(0, ge=0, description="Rows to skip"),
    tier: str | None = Query(None, description="Only this tier"),
) -> dict[str, object]:
    rows = await runtime.store.list_backfills(
        status=BackfillStatus.FAILED, tier=_tier(tier), limit=limit, offset=offset
    )
    return {"jobs": [_job(r) for r in rows], "limit": limit, "offset": offset}


@router.post("/backfills/requeue/{job_id}")
async def requeue(job_id: int, runtime: RuntimeDep) -> dict[str, object]:
    rec = await runtime.store.requeue_backfill(job_id, now=runtime.clock.now())
    if rec is None:
        raise NotFound("failed backfill job", str(job_id))
    if runtime.collector is not None:
        await runtime.collector.backfiller.requeue(rec)
    return {"ok": True, "job": _job(rec)}


@router.post("/backfills/requeue-all")
async def requeue_all(
    runtime: RuntimeDep, tier: str | None = Query(None, description="Only this tier")
) -> dict[str, object]:
    recs = await runtime.store.requeue_failed(tier=_tier(tier), now=runtime.clock.now())
    if runtime.collector is not None:
        for rec in recs:
            await runtime.collector.backfiller.requeue(rec)
    return {"ok": True, "requeued": len(recs), "ids": [r.id for r in recs]}


@router.get("/stats")
async def stats(runtime: RuntimeDep) -> dict[str, object]:
    s = await runtime.store.backfill_stats()
    oldest = s.get("oldest_queued_created_at")
    out: dict[str, object] = {**s, "oldest_queued_created_at": iso(oldest) if oldest else None}
    if runtime.collector is not None:
        b = runtime.collector.backfiller
        out["queue"] = {
            "queued": {t.value: b.queued(t) for t in Tier},
            "active": {t.value: b.active(t) for t in Tier},
            "oldest_age_seconds": round(b.oldest_age_seconds(), 3),
        }
    return out


@router.delete("/backfills/purge")
async def purge(
    runtime: RuntimeDep, days: int = Query(30, ge=0, description="Purge failed jobs older than this")
) -> dict[str, object]:
    cutoff = runtime.clock.now() - timedelta(days=days)
    n = await runtime.store.purge_backfills(status=BackfillStatus.FAILED, older_than=cutoff)
    return {"ok": True, "purged": n, "older_than": iso(cutoff)}
