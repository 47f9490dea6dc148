"""The coverage page: the daily and 5m summary of the coverage service's snapshot, its
stale and missing-5m lists (complete, filtered and paged), a refresh now, and a one-click
schedule of the hourly ``monitor_coverage_health``.

The snapshot is the one ``GET /api/v1/market-data/coverage`` serves (``meta.source``
cache or db); refresh and schedule are what ``POST .../admin/coverage/refresh`` and the
schedules API do, through the same services.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse

from mds.admin.pages.coverage_view import MONITOR, bucket_rows, missing_5m, share, stale
from mds.admin.pages.listing import matching, page_within
from mds.admin.paging import PagingDep, url_without_page
from mds.admin.routing import page_router
from mds.admin.session import AdminSession
from mds.admin.templating import render
from mds.ops.runs import scalar_counters
from mds.runtime import Runtime
from mds.serialize import iso
from mds.services.coverage import BUCKETS, STALE_BUCKETS

router = page_router()

#: What a redirect after an action says (a code, so a link cannot put words on the page).
NOTICES = {
    "refreshed": "Coverage snapshot refreshed from the store and cached.",
    "monitor_created": f"Schedule {MONITOR} created: the monitor now runs hourly.",
    "monitor_resumed": f"Schedule {MONITOR} resumed: the monitor runs hourly again.",
    "monitor_enabled": f"Schedule {MONITOR} is already enabled.",
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _monitor(runtime: Runtime) -> dict[str, Any]:
    """The monitor's schedule as the page shows it: enabled, paused or missing."""
    found = [s for s in await runtime.schedules.all() if s.task == MONITOR]
    enabled = [s for s in found if s.enabled]
    if not found:
        return {"state": "missing", "name": MONITOR}
    s = (enabled or found)[0]
    nxt = runtime.schedules.next_fires(s.spec()) if s.enabled else []
    return {
        "state": "enabled" if s.enabled else "paused",
        "name": s.name,
        "timing": s.cron or f"{s.calendar} {s.when}",
        "timezone": s.timezone,
        "next": iso(nxt[0]) if nxt else None,
    }


@router.get("/coverage")
async def coverage_page(
    request: Request,
    session: AdminSession,
    paging: PagingDep,
    view: Annotated[Literal["stale", "m5"], Query(alias="list")] = "stale",
    bucket: Annotated[Literal["", "<=24h", "24-48h", ">48h", "none"], Query()] = "",
    q: Annotated[str, Query(max_length=40)] = "",
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    runtime = _runtime(request)
    snap = await runtime.coverage.read()
    tracked = (await runtime.tracked.tracked_set(with_new=False)).all
    if view == "m5":
        rows = missing_5m(bucket_rows(snap, "m5", tracked, runtime.calendar))
    else:
        rows = stale(bucket_rows(snap, "daily", tracked, runtime.calendar), bucket)
    page = page_within(matching(rows, q, key=lambda r: r.symbol), paging)
    tracked_count = int(snap["tracked_count"])
    return render(
        request,
        "coverage.html",
        active="coverage",
        snap=snap,
        buckets=BUCKETS,
        stale_buckets=STALE_BUCKETS,
        daily_share=share(snap["daily"]["freshness"]["<=24h"], tracked_count),
        m5_share=share(snap["m5"]["freshness"]["<=24h"], tracked_count),
        view=view,
        bucket=bucket,
        q=q,
        page=page,
        page_url=url_without_page(request),
        monitor=await _monitor(runtime),
        notice=NOTICES.get(done, ""),
    )


@router.post("/coverage/refresh")
async def refresh_now(request: Request, session: AdminSession) -> Response:
    """Compute and cache the snapshot now, recorded as a ``monitor_coverage_health`` run
    (as ``POST /api/v1/market-data/admin/coverage/refresh`` does)."""
    runtime = _runtime(request)
    async with runtime.runs.recorded(MONITOR, created_by=session.name) as counters:
        snap = await runtime.coverage.refresh()
        counters.update(scalar_counters(snap))
    return RedirectResponse("/admin/coverage?done=refreshed", status_code=303)


@router.post("/coverage/monitor")
async def schedule_monitor(request: Request, session: AdminSession) -> Response:
    """Make sure ``monitor_coverage_health`` runs hourly: create its catalog schedule when
    there is none, resume it when paused, leave it alone when enabled."""
    runtime = _runtime(request)
    state = await _monitor(runtime)
    if state["state"] == "missing":
        await runtime.schedules.create(runtime.schedules.catalog[MONITOR].default, by=session.name)
        done = "monitor_created"
    elif state["state"] == "paused":
        await runtime.schedules.resume(state["name"], by=session.name)
        done = "monitor_resumed"
    else:
        done = "monitor_enabled"
    return RedirectResponse(f"/admin/coverage?done={done}", status_code=303)
