"""Jobs: ``job_run`` rows (filters by task and status, paged) and a drill-in per run."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response

from mds.admin.paging import PagingDep, page_probe, url_without_page
from mds.admin.routing import page_router
from mds.admin.session import AdminSession
from mds.admin.templating import render
from mds.api.params import INT64_MAX
from mds.domain.schedules import RunStatus
from mds.runtime import Runtime

router = page_router()
#: Deepest row the pager reaches: the store pages job runs by ``limit`` only.
MAX_ROWS = 10_000


@router.get("/jobs")
async def jobs(
    request: Request,
    session: AdminSession,
    paging: PagingDep,
    task: Annotated[str, Query(max_length=64)] = "",
    status: Annotated[RunStatus | None, Query()] = None,
    schedule: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    runtime: Runtime = request.app.state.runtime
    limit = min(paging.offset + paging.per_page + 1, MAX_ROWS)
    rows = await runtime.schedules.jobs(
        task=task or None, status=status, schedule=schedule or None, limit=limit
    )
    page = page_probe(rows[paging.offset :], paging)
    return render(
        request,
        "jobs.html",
        active="jobs",
        page=page,
        url=url_without_page(request),
        tasks=runtime.schedules.catalog.names(),
        statuses=[s.value for s in RunStatus],
        task=task,
        status=status.value if status else "",
        schedule=schedule,
    )


@router.get("/jobs/{run_id}")
async def job(
    request: Request, session: AdminSession, run_id: Annotated[int, Path(ge=1, le=INT64_MAX)]
) -> Response:
    """One run: its params, metadata, counters, error and timeline; a fragment for htmx."""
    runtime: Runtime = request.app.state.runtime
    run = await runtime.schedules.job(run_id)
    name = "_job.html" if request.headers.get("hx-request") else "job.html"
    return render(request, name, active="jobs", run=run)
