"""Dashboard: freshness KPIs, provider health, ingestion lag, backfill queues and DLQ
counts, the last task runs, and the quick actions of seed 004's operator runbook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from mds.admin.routing import page_router
from mds.admin.session import AdminSession
from mds.admin.templating import render
from mds.domain.schedules import JobRun
from mds.errors import InvalidRequest
from mds.runtime import Runtime
from mds.services.stale_backfill import backfill_stale_daily

router = page_router()


@dataclass(frozen=True)
class QuickAction:
    id: str
    label: str
    #: The catalog task it queues; None: :data:`_INLINE` runs it here.
    task: str | None
    help: str


#: The dashboard's buttons, in the runbook's order.
QUICK_ACTIONS: tuple[QuickAction, ...] = (
    QuickAction(
        "restore-daily",
        "Restore daily coverage (tracked)",
        "bootstrap_daily_coverage_tracked",
        "Refresh constituents → update tracked → backfill last-200 daily → recompute → record history"
        " → refresh coverage",
    ),
    QuickAction("update-tracked", "Update tracked", "update_tracked_symbol_cache", "Rebuild tracked:all"),
    QuickAction(
        "backfill-stale", "Backfill daily (stale only)", None, "Queue daily backfills for stale symbols only"
    ),
    QuickAction(
        "recompute", "Recompute indicators", "recompute_indicators_universe", "Indicators of the tracked set"
    ),
    QuickAction(
        "record-history", "Record history", "record_daily_history", "Today's immutable snapshot rows"
    ),
    QuickAction(
        "refresh-coverage", "Refresh coverage", "monitor_coverage_health", "Recompute the coverage cache"
    ),
)
_BY_ID = {a.id: a for a in QUICK_ACTIONS}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _available(runtime: Runtime, action: QuickAction) -> bool:
    return action.task is None or action.task in runtime.schedules.catalog


async def dashboard(request: Request, session: AdminSession) -> Response:
    """``GET /admin``: added by :mod:`mds.admin` itself (a router cannot hold an empty path)."""
    runtime = _runtime(request)
    providers = runtime.router.snapshot()
    for p in providers:
        p["h_values"] = [h for _, h in p["h_history"]]
    stats = await runtime.store.backfill_stats()
    runs = await runtime.schedules.jobs(limit=10)
    lag = runtime.live_lag.snapshot() if runtime.live_lag is not None else {}
    return render(
        request,
        "dashboard.html",
        active="dashboard",
        providers=providers,
        backfills=stats,
        runs=runs,
        lag=lag,
        actions=[(a, _available(runtime, a)) for a in QUICK_ACTIONS],
    )


@router.get("/dashboard/coverage")
async def coverage_kpis(request: Request, session: AdminSession) -> Response:
    """The freshness KPIs, loaded after the page (the snapshot may have to be computed)."""
    snap = await _runtime(request).coverage.read()
    return render(request, "_coverage_kpis.html", snap=snap)


@router.post("/actions/{action_id}")
async def quick_action(request: Request, action_id: str, session: AdminSession) -> Response:
    """Run a quick action: a catalog task through the task-run service (as ``POST
    /api/v1/market-data/admin/tasks/run``), or the stale-only backfill; either way a job
    run the Jobs page lists."""
    runtime = _runtime(request)
    action = _BY_ID.get(action_id)
    if action is None:
        raise InvalidRequest("action", f"unknown quick action {action_id!r}")
    if not _available(runtime, action):
        message = f"{action.label}: task {action.task!r} is not in this deployment's catalog"
        return _answer(request, message, ok=False)
    run_id: int | None
    if action.task is None:
        body = await backfill_stale_daily(runtime, created_by=session.name)
        message = (
            f"{action.label}: {body['symbols']} stale symbols, {body['jobs_created']} jobs queued,"
            f" {body['jobs_refused']} refused"
        )
        latest = await runtime.schedules.jobs(task="backfill_stale_daily", limit=1)
        run_id = latest[0].id if latest else None
    else:
        run: JobRun = await runtime.schedules.run_task(action.task, {}, by=session.name)
        message = f"{action.label}: queued job run #{run.id} ({action.task})"
        run_id = run.id
    return _answer(request, message, ok=True, run_id=run_id)


def _answer(request: Request, message: str, *, ok: bool, run_id: int | None = None) -> Response:
    if not request.headers.get("hx-request"):
        return RedirectResponse(f"/admin/jobs/{run_id}" if run_id else "/admin/jobs", status_code=303)
    ctx: dict[str, Any] = {"message": message, "ok": ok, "run_id": run_id}
    return render(request, "_action_result.html", **ctx)
