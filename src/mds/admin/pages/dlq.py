"""DLQ: failed backfill jobs by tier (paged), requeue one, requeue all of a tier, and purge
with a confirmation step. Through :mod:`mds.services.dlq`, as ``/ops/dlq`` does."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from mds.admin.paging import PagingDep, page_probe, url_without_page
from mds.admin.routing import page_router
from mds.admin.session import AdminSession
from mds.admin.templating import render
from mds.api.params import INT64_MAX
from mds.domain.models import Tier
from mds.errors import InvalidRequest
from mds.runtime import Runtime
from mds.services import dlq

router = page_router()
_MAX_PURGE_DAYS = 36_500
DONE = {
    "requeued": "Requeued job {id}.",
    "requeued-all": "Requeued {n} jobs{tier}.",
    "purged": "Purged {n} failed jobs last updated before {before}.",
}


def _back(tier: Tier | None, done: str, **params: object) -> Response:
    query = {"done": done, **params, **({"tier": tier.value} if tier else {})}
    return RedirectResponse("/admin/dlq?" + urlencode(query), status_code=303)


@router.get("/dlq")
async def dead_letters(
    request: Request,
    session: AdminSession,
    paging: PagingDep,
    tier: Annotated[Tier | None, Query()] = None,
    done: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    runtime: Runtime = request.app.state.runtime
    rows = await dlq.failed(runtime, tier=tier, limit=paging.per_page + 1, offset=paging.offset)
    stats = await runtime.store.backfill_stats()
    p = request.query_params
    banner = ""
    if done in DONE:
        banner = DONE[done].format(
            id=p.get("id", ""),
            n=p.get("n", "0"),
            tier=f" of {tier.value}" if tier else "",
            before=p.get("before", ""),
        )
    return render(
        request,
        "dlq.html",
        active="dlq",
        page=page_probe(rows, paging),
        url=url_without_page(request),
        tier=tier.value if tier else "",
        tiers=[t.value for t in Tier],
        failed_by_tier={t: c.get("failed", 0) for t, c in stats["by_tier"].items()},
        failed_total=stats["failed_total"],
        banner=banner,
    )


@router.post("/dlq/{job_id}/requeue")
async def requeue(
    request: Request,
    session: AdminSession,
    job_id: Annotated[int, Path(ge=1, le=INT64_MAX)],
    tier: Annotated[Tier | None, Query()] = None,
) -> Response:
    rec = await dlq.requeue(request.app.state.runtime, job_id)
    return _back(tier, "requeued", id=rec.id)


@router.post("/dlq/requeue-all")
async def requeue_all(
    request: Request, session: AdminSession, tier: Annotated[Tier | None, Form()] = None
) -> Response:
    recs = await dlq.requeue_all(request.app.state.runtime, tier=tier)
    return _back(tier, "requeued-all", n=len(recs))


@router.get("/dlq/purge")
async def confirm_purge(
    request: Request,
    session: AdminSession,
    days: Annotated[int, Query(ge=0, le=_MAX_PURGE_DAYS)] = 30,
) -> Response:
    """The confirmation step: what a purge with ``days`` would delete, before it does."""
    runtime: Runtime = request.app.state.runtime
    stats = await runtime.store.backfill_stats()
    return render(request, "dlq_purge.html", active="dlq", days=days, failed_total=stats["failed_total"])


@router.post("/dlq/purge")
async def purge(
    request: Request,
    session: AdminSession,
    days: Annotated[int, Form(ge=0, le=_MAX_PURGE_DAYS)],
    confirm: Annotated[str, Form()] = "",
) -> Response:
    if confirm != "purge":
        raise InvalidRequest("confirm", "type purge to confirm")
    n, cutoff = await dlq.purge(request.app.state.runtime, days=days)
    return _back(None, "purged", n=n, before=cutoff.strftime("%Y-%m-%d %H:%M UTC"))
