"""The backfill dead-letter queue (seed names): list, requeue, stats, purge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from mds.api.deps import RuntimeDep
from mds.api.params import INT64_MAX
from mds.api.problems import problem_responses
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillRecord, BackfillStatus
from mds.ingest.backlog import publish_backlog, read_backlog
from mds.serialize import iso
from mds.services import dlq

router = APIRouter(prefix="/ops/dlq", tags=["dlq"], responses=problem_responses(500, 503))
#: Job ids and row offsets are 64-bit integers in both stores; a larger one cannot exist.
#: A purge horizon beyond a century reaches before any job could have been made.
_MAX_PURGE_DAYS = 36_500

TierQuery = Annotated[Tier | None, Query(description="Only this tier")]


class BackfillJob(BaseModel):
    id: int = Field(description="Job id")
    symbol: str = Field(description="Ticker")
    interval: Interval = Field(description="Bar interval")
    start: str = Field(description="Inclusive start of the window (UTC)")
    end: str = Field(description="Exclusive end of the window (UTC)")
    priority: Tier = Field(description="Queue tier")
    status: BackfillStatus = Field(description="failed while in the DLQ, queued once requeued")
    attempts: int = Field(description="Attempts so far")
    last_error: str | None = Field(description="Why the last attempt failed")
    created_at: str = Field(description="When the job was created (UTC)")
    updated_at: str = Field(description="When the job last changed (UTC)")


class FailedPage(BaseModel):
    jobs: list[BackfillJob] = Field(description="Failed jobs, one page")
    limit: int = Field(description="Page size asked for")
    offset: int = Field(description="Rows skipped")


class RequeueOut(BaseModel):
    ok: bool = Field(description="Always true")
    job: BackfillJob = Field(description="The job, queued again")


class RequeueAllOut(BaseModel):
    ok: bool = Field(description="Always true")
    requeued: int = Field(description="Jobs queued again")
    ids: list[int] = Field(description="Their ids")


class QueueState(BaseModel):
    queued: dict[Tier, int] = Field(
        description="Jobs each tier's queue still owes (waiting plus retries in their delay, queued "
        "by any process): backfill_queue_depth{tier}"
    )
    active: dict[Tier, int] = Field(
        description="Jobs this process holds (queued by it or running here), per tier"
    )
    oldest_age_seconds: float = Field(description="Age of the oldest queued job of any tier, seconds")
    oldest_age_seconds_by_tier: dict[Tier, float] = Field(
        description="Age of each tier's oldest queued job, seconds (0 when none): backfill_oldest_age_seconds{tier}"
    )


class DlqStats(BaseModel):
    by_status: dict[BackfillStatus, int] = Field(description="Jobs per status")
    by_tier: dict[Tier, dict[BackfillStatus, int]] = Field(description="Jobs per tier and status")
    oldest_queued_created_at: str | None = Field(description="Creation time of the oldest queued job (UTC)")
    failed_total: int = Field(description="Jobs in the DLQ")
    queue: QueueState | None = Field(
        default=None, description="The in-process queue (only where this process runs a collector)"
    )


class PurgeOut(BaseModel):
    ok: bool = Field(description="Always true")
    purged: int = Field(description="Failed jobs deleted")
    older_than: str = Field(description="Cut-off: jobs last updated before this time were purged (UTC)")


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


@router.get(
    "/backfills",
    response_model=FailedPage,
    responses={
        **problem_responses(422),
        200: {
            "links": {
                "requeue": {
                    "operationId": "requeueFailedBackfill",
                    "parameters": {"job_id": "$response.body#/jobs/0/id"},
                }
            }
        },
    },
    operation_id="listFailedBackfills",
)
async def failed_backfills(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX, description="Rows to skip")] = 0,
    tier: TierQuery = None,
) -> dict[str, object]:
    """Failed backfill jobs (the DLQ), oldest first."""
    rows = await dlq.failed(runtime, tier=tier, limit=limit, offset=offset)
    return {"jobs": [_job(r) for r in rows], "limit": limit, "offset": offset}


@router.post(
    "/backfills/requeue/{job_id}",
    response_model=RequeueOut,
    responses=problem_responses(404, 422),
    operation_id="requeueFailedBackfill",
)
async def requeue(
    job_id: Annotated[int, Path(ge=1, le=INT64_MAX, description="Id of a failed job")], runtime: RuntimeDep
) -> dict[str, object]:
    """Queue one failed job again (404 unless it is in the DLQ)."""
    rec = await dlq.requeue(runtime, job_id)
    return {"ok": True, "job": _job(rec)}


@router.post(
    "/backfills/requeue-all",
    response_model=RequeueAllOut,
    responses=problem_responses(422),
    operation_id="requeueAllFailedBackfills",
)
async def requeue_all(runtime: RuntimeDep, tier: TierQuery = None) -> dict[str, object]:
    """Queue every failed job (of one tier) again."""
    recs = await dlq.requeue_all(runtime, tier=tier)
    return {"ok": True, "requeued": len(recs), "ids": [r.id for r in recs]}


# exclude_unset: "queue" is left out, not null, where this process runs no collector.
@router.get(
    "/stats", response_model=DlqStats, response_model_exclude_unset=True, operation_id="getBackfillStats"
)
async def stats(runtime: RuntimeDep) -> dict[str, object]:
    """Backfill jobs per status and tier, and this process's queue."""
    s = await runtime.store.backfill_stats()
    oldest = s.get("oldest_queued_created_at")
    out: dict[str, object] = {**s, "oldest_queued_created_at": iso(oldest) if oldest else None}
    if runtime.collector is not None:
        b = runtime.collector.backfiller
        # The same reading as /metrics, so the two never disagree about the backlog.
        backlog = await read_backlog(runtime.backfill_queues, runtime.store, runtime.clock.now())
        publish_backlog(runtime.metrics, backlog)
        ages = {t.value: round(x.oldest_age_seconds, 3) for t, x in backlog.items()}
        out["queue"] = {
            "queued": {t.value: x.depth for t, x in backlog.items()},
            "active": {t.value: b.active(t) for t in Tier},
            "oldest_age_seconds": max(ages.values(), default=0.0),
            "oldest_age_seconds_by_tier": ages,
        }
    return out


@router.delete(
    "/backfills/purge",
    response_model=PurgeOut,
    responses=problem_responses(422),
    operation_id="purgeFailedBackfills",
)
async def purge(
    runtime: RuntimeDep,
    days: Annotated[
        int,
        Query(
            ge=0,
            le=_MAX_PURGE_DAYS,
            description="Purge failed jobs last updated more than this many days ago",
        ),
    ] = 30,
) -> dict[str, object]:
    """Delete failed jobs older than ``days``."""
    n, cutoff = await dlq.purge(runtime, days=days)
    return {"ok": True, "purged": n, "older_than": iso(cutoff)}
