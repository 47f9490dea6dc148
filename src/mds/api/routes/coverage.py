"""Coverage and freshness of the tracked set (seed 004 paths): the snapshot, one symbol,
a refresh now, and a daily backfill of the stale symbols only.

Thin over :class:`mds.services.coverage.CoverageService`, which the runtime holds as
``runtime.coverage``. ``router`` is for readers; ``admin_router`` changes state.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mds.api.deps import CallerDep, RuntimeDep
from mds.api.params import SymbolPath
from mds.api.problems import problem, problem_responses
from mds.ops.runs import scalar_counters
from mds.services.coverage import CoverageService
from mds.services.stale_backfill import NoCollector
from mds.services.stale_backfill import backfill_stale_daily as backfill_stale_daily_service

_ANSWERS = problem_responses(500, 503)
router = APIRouter(tags=["coverage"], responses=_ANSWERS)
#: The coverage routes that change state: guarded by the ``admin`` role in :mod:`mds.api.app`.
admin_router = APIRouter(tags=["admin"], responses=_ANSWERS)

Bucket = Literal["<=24h", "24-48h", ">48h", "none"]

_BUCKETS_HELP = (
    "Freshness is counted in exchange sessions, not wall hours (the names are the seed's): "
    "`<=24h` holds the last closed session (the newest session whose close, early closes "
    "included, has passed; for 5m: any bar of it), `24-48h` is one session behind, `>48h` "
    "two or more, `none` holds no bar. So on Monday before the open, or the day after a "
    "holiday, a symbol holding the previous session is `<=24h`."
)


async def get_coverage(request: Request) -> CoverageService:
    service: CoverageService | None = getattr(request.app.state.runtime, "coverage", None)
    if service is None:
        raise RuntimeError("runtime.coverage is not set: the coverage service is not wired")
    return service


CoverageDep = Annotated[CoverageService, Depends(get_coverage)]


class Freshness(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    fresh: int = Field(alias="<=24h", description="Tracked symbols holding the last closed session")
    one_behind: int = Field(alias="24-48h", description="Tracked symbols one session behind")
    older: int = Field(alias=">48h", description="Tracked symbols two or more sessions behind")
    none: int = Field(description="Tracked symbols holding no bar")


class StaleLists(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    older: list[str] = Field(
        alias=">48h", description="First 50 symbols (sorted) two or more sessions behind"
    )
    none: list[str] = Field(description="First 50 symbols (sorted) holding no bar")
    one_behind: list[str] = Field(alias="24-48h", description="First 50 symbols (sorted) one session behind")


class SeriesCoverage(BaseModel):
    count: int = Field(description="Tracked symbols holding at least one bar")
    last: dict[str, str] = Field(
        description="Symbol -> open time of its newest bar (UTC), tracked symbols only"
    )
    freshness: Freshness = Field(description="Tracked symbols per freshness bucket (counted in sessions)")
    stale: StaleLists = Field(description="The first 50 symbols of each stale bucket")


class Indices(BaseModel):
    SP500: int = Field(description="Active S&P 500 members")
    NASDAQ100: int = Field(description="Active Nasdaq-100 members")
    DOW30: int = Field(description="Active Dow 30 members")


class SlaCheck(BaseModel):
    ok: bool = Field(description="Whether the check passed")
    value: float = Field(description="The measured figure")
    threshold: float = Field(description="The figure it is held against")


class SlaChecks(BaseModel):
    daily_share: SlaCheck = Field(
        description="Share of tracked symbols holding the last closed session >= COVERAGE_DAILY_MIN_SHARE"
    )
    daily_over_48h: SlaCheck = Field(description="Tracked symbols two or more sessions behind (must be 0)")
    m5_previous_session: SlaCheck = Field(
        description="Tracked symbols without a 5m (or 1m) bar of the last closed session (must be 0)"
    )


class Sla(BaseModel):
    ok: bool = Field(description="Every check passed")
    failed: list[str] = Field(description="Names of the checks that failed")
    checks: SlaChecks = Field(description="Each check with its figures")


class Sessions(BaseModel):
    last_closed: str | None = Field(description="Date of the last closed session: what `<=24h` holds")
    previous: str | None = Field(description="Date of the session before it: what `24-48h` holds")


class CoverageMeta(BaseModel):
    source: Literal["cache", "db"] = Field(
        description="cache: the last monitor run (or refresh); db: computed from the store for this answer"
    )
    updated_at: str = Field(description="When the snapshot was computed (UTC)")


class CoverageHealthOut(BaseModel):
    symbols: int = Field(description="Distinct symbols holding daily bars (tracked or not)")
    tracked_count: int = Field(description="Symbols in the tracked set")
    indices: Indices = Field(description="Active members per index")
    daily: SeriesCoverage = Field(description="Daily bars over the tracked set")
    m5: SeriesCoverage = Field(
        description="5m bars over the tracked set (1m bars count: 5m rolls up from them)"
    )
    status: Literal["ok", "degraded"] = Field(description="ok when every SLA check passed")
    sla: Sla = Field(description="The SLA checks")
    sessions: Sessions = Field(description="The sessions the buckets were measured against")
    meta: CoverageMeta = Field(description="Where this snapshot comes from")


class DailyView(BaseModel):
    first: str | None = Field(description="Open time of the first stored daily bar (UTC)")
    last: str | None = Field(description="Open time of the newest stored daily bar (UTC)")
    bucket: Bucket = Field(description="Freshness bucket of the daily series (in sessions)")


class IntradayView(BaseModel):
    last: str | None = Field(description="Open time of the newest 5m or 1m bar (UTC)")
    bucket: Bucket = Field(description="Freshness bucket of 5m data (in sessions)")
    last_5m: str | None = Field(description="Open time of the newest stored 5m bar (UTC)")
    last_1m: str | None = Field(description="Open time of the newest stored 1m bar (UTC)")


class GapOut(BaseModel):
    start: str = Field(description="Open time of the first missing session (UTC)")
    end: str = Field(description="Exclusive end: the last missing session's open plus a day (UTC)")
    missing_bars: int = Field(description="Missing daily bars (sessions) in the run")


class GapWindow(BaseModel):
    sessions: int = Field(description="Closed sessions looked at (BACKFILL_TRACKED_SESSIONS)")
    start: str | None = Field(
        description="First bar time looked at (UTC; the first trading session if later)"
    )
    end: str = Field(description="Exclusive end (UTC): now")


class SymbolCoverageOut(BaseModel):
    symbol: str = Field(description="Ticker")
    tracked: bool = Field(description="Whether the symbol is in the tracked set")
    daily: DailyView = Field(description="Stored daily bars")
    m5: IntradayView = Field(description="Stored 5m and 1m bars")
    gaps: list[GapOut] = Field(description="Runs of missing daily bars (neither stored nor confirmed empty)")
    missing_sessions: int = Field(description="Sessions missing in the window, over all gaps")
    window: GapWindow = Field(description="The window the gaps were looked for in")
    sessions: Sessions = Field(description="The sessions the buckets were measured against")
    as_of: str = Field(description="Service-clock time of this answer (UTC)")


class StaleBackfillOut(BaseModel):
    symbols: int = Field(description="Stale tracked symbols (daily bucket >48h, none or 24-48h)")
    buckets: list[Bucket] = Field(description="The buckets counted as stale")
    per_bucket: dict[str, int] = Field(description="Stale symbols per bucket")
    sessions: int = Field(description="Daily sessions backfilled (BACKFILL_TRACKED_SESSIONS)")
    start: str | None = Field(description="Open of the first of those sessions (UTC)")
    end: str = Field(description="Exclusive end of the window (UTC): now")
    jobs_created: int = Field(description="Backfill jobs created")
    jobs_merged: int = Field(description="Ranges merged into jobs already queued")
    jobs_refused: int = Field(
        description="Ranges refused: already covered by active jobs, or the tier's queue full"
    )
    refused: dict[str, int] = Field(description="Refusals by reason (duplicate, cap)")


@router.get(
    "/api/v1/market-data/coverage",
    response_model=CoverageHealthOut,
    operation_id="getCoverageHealth",
    description=(
        "Daily and 5m coverage and freshness of the tracked set, and the SLA status: the last "
        "cached snapshot (`meta.source` cache, refreshed every COVERAGE_REFRESH_SEC), else one "
        f"computed from the store now (`meta.source` db).\n\n{_BUCKETS_HELP}\n\nSLA: daily share "
        "in `<=24h` >= COVERAGE_DAILY_MIN_SHARE, no tracked symbol in `>48h`, and every tracked "
        "symbol holding 5m data of the last closed session."
    ),
)
async def coverage_health(coverage: CoverageDep) -> dict[str, Any]:
    """Coverage and freshness of the tracked set (freshness counted in sessions)."""
    return await coverage.read()


@router.get(
    "/api/v1/market-data/coverage/{symbol}",
    response_model=SymbolCoverageOut,
    responses=problem_responses(404, 422),
    operation_id="getSymbolCoverage",
    description=(
        "One symbol: whether it is tracked, its daily and 5m freshness, its first and last "
        "stored daily bar, and the runs of daily bars missing over the last "
        f"BACKFILL_TRACKED_SESSIONS closed sessions.\n\n{_BUCKETS_HELP}"
    ),
)
async def symbol_coverage(symbol: SymbolPath, runtime: RuntimeDep, coverage: CoverageDep) -> dict[str, Any]:
    """One symbol's coverage, freshness and daily gaps."""
    entry = await runtime.market.require_symbol(symbol)
    return await coverage.symbol(entry.symbol)


@admin_router.post(
    "/api/v1/market-data/admin/coverage/refresh",
    response_model=CoverageHealthOut,
    operation_id="refreshCoverageHealth",
)
async def refresh_coverage(coverage: CoverageDep, runtime: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    """Compute the coverage snapshot now, cache it for readers and return it (recorded as a
    `monitor_coverage_health` job run)."""
    async with runtime.runs.recorded("monitor_coverage_health", created_by=caller) as counters:
        snap = await coverage.refresh()
        counters.update(scalar_counters(snap))
    return snap


@admin_router.post(
    "/api/v1/market-data/admin/coverage/backfill-stale-daily",
    status_code=202,
    response_model=StaleBackfillOut,
    operation_id="backfillStaleDaily",
)
async def backfill_stale_daily(runtime: RuntimeDep, coverage: CoverageDep, caller: CallerDep) -> Any:
    """Queue daily backfills of the last BACKFILL_TRACKED_SESSIONS sessions for the stale
    tracked symbols only (daily bucket `>48h`, `none` or `24-48h`): what each misses,
    neither stored nor confirmed empty, per its tier.

    503 when this process runs no collector.
    """
    try:
        body = await backfill_stale_daily_service(runtime, created_by=caller)
    except NoCollector as exc:
        return problem(503, "No collector", str(exc))
    return JSONResponse(body, status_code=202)
