"""Operator endpoints: cursors, manual backfill, config validation."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from mds.api.deps import RuntimeDep
from mds.api.models import BackfillIn, BackfillOut
from mds.api.params import (
    CoverageInterval,
    EndQuery,
    SourceName,
    StartQuery,
    SymbolPath,
    parse_ts,
)
from mds.api.problems import PROBLEM, problem, problem_responses
from mds.domain.models import Interval, Tier
from mds.errors import ConfigError, InvalidRequest, NotFound
from mds.ingest.scan import coverage
from mds.ops.reload import plan_reload, reload_here
from mds.runtime import Runtime
from mds.serialize import iso
from mds.services.market import MAX_INTRADAY_RANGE

log = logging.getLogger(__name__)

router = APIRouter(prefix="/ops", tags=["ops"], responses=problem_responses(500, 503))


class CursorOut(BaseModel):
    symbol: str = Field(description="Ticker")
    interval: Interval = Field(description="Bar interval")
    source: str = Field(description="auto (over every provider) or the provider's name")
    last_ts: str = Field(description="Open time of the newest bar ingested (UTC)")
    updated_at: str = Field(description="When the cursor last moved (UTC)")
    lag_seconds: float = Field(description="Service-clock seconds since that bar ended")


class ValidateOut(BaseModel):
    ok: bool = Field(description="Always true (an invalid configuration is a 422 problem)")
    changed: list[str] = Field(description="Settings a reload would change")
    restart_required: list[str] = Field(description="Of those, the ones that apply only after a restart")


class ReloadOut(ValidateOut):
    policy_version: str = Field(description="Version tag of the routing policies now in force")
    rebuilt: list[str] = Field(
        description="Vendor adapters built again (key, base URL or rate limit changed) or for the"
        " first time (a policy names them now); their health figures are kept"
    )
    announced: bool = Field(
        description="Whether the version was announced to the other processes (they re-read their"
        " own configuration and apply it; /health lists each one's policy_version)"
    )


class TierCoverage(BaseModel):
    symbols: int = Field(description="Active symbols in the tier")
    symbols_complete: int = Field(description="Symbols with no missing bar")
    expected_bars: int = Field(description="Closed bars the calendar expects")
    stored_bars: int = Field(description="Of those, stored")
    missing_bars: int = Field(description="Of those, neither stored nor confirmed empty")
    confirmed_empty_bars: int = Field(description="Of those, confirmed as no trades by the providers")
    coverage_pct: float = Field(description="100 * (stored + confirmed empty) / expected")


class CoverageOut(BaseModel):
    interval: CoverageInterval = Field(description="Bar interval")
    start: str = Field(description="Inclusive start of the window (UTC)")
    end: str = Field(description="Exclusive end of the window (UTC)")
    tiers: dict[Tier, TierCoverage] = Field(description="Per tier")


_REFUSED_CONFIG: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "The configuration a reload would load is invalid; `field` names the setting,"
        " `policy_version` is the one still in force",
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
}


@router.get(
    "/cursor/{symbol}/{interval}/{source}",
    response_model=CursorOut,
    responses=problem_responses(404, 422),
    operation_id="getCursor",
)
async def cursor(
    symbol: SymbolPath,
    interval: Annotated[Interval, Path(description="Bar interval")],
    source: Annotated[SourceName, Path(description="auto (over every provider) or a provider's name")],
    runtime: RuntimeDep,
) -> dict[str, object]:
    """Where ingestion of one series stands, and how far it trails the clock."""
    entry = await runtime.market.require_symbol(symbol)
    c = await runtime.store.get_cursor(entry.symbol, interval, source)
    if c is None:
        raise NotFound("cursor", f"{entry.symbol}/{interval.value}/{source}")
    return {
        "symbol": c.symbol,
        "interval": c.interval.value,
        "source": c.source,
        "last_ts": iso(c.last_ts),
        "updated_at": iso(c.updated_at),
        "lag_seconds": round(
            (runtime.clock.now() - runtime.calendar.bar_end(c.last_ts, interval)).total_seconds(), 3
        ),
    }


@router.post(
    "/backfill",
    status_code=202,
    response_model=BackfillOut,
    responses=problem_responses(409, 422),
    operation_id="queueBackfill",
)
async def backfill(body: BackfillIn, runtime: RuntimeDep) -> JSONResponse:
    """Queue a manual backfill of one series over ``start <= ts < end``.

    The window is split into jobs, minus what active jobs already cover; 409 if all of it
    is covered, 503 if the tier's queue is full.
    """
    try:
        entry = await runtime.market.require_symbol(body.symbol)
    except NotFound:
        # In a request body an unknown symbol is a bad field, not a missing resource.
        raise InvalidRequest("symbol", f"{body.symbol} is not in the universe") from None
    start = parse_ts("start", body.start)
    end = parse_ts("end", body.end)
    assert start is not None and end is not None  # required fields
    if start >= end:
        raise InvalidRequest("start", "start must be before end")
    if end - start > timedelta(days=runtime.settings.BACKFILL_MAX_RANGE_DAYS):
        raise InvalidRequest(
            "end", f"range exceeds BACKFILL_MAX_RANGE_DAYS={runtime.settings.BACKFILL_MAX_RANGE_DAYS}"
        )
    if runtime.collector is None:
        raise InvalidRequest("symbol", "this process runs no collector; send backfills to a worker")
    tier = body.priority or entry.tier
    result = await runtime.collector.backfiller.enqueue(entry.symbol, body.interval, start, end, tier)
    if not result.created and not result.merged_into:
        duplicate = "duplicate" in result.refused
        return problem(
            409 if duplicate else 503,
            "Already queued" if duplicate else "Backfill queue full",
            f"{entry.symbol} {body.interval.value} {iso(start)}..{iso(end)} is already covered by active jobs"
            if duplicate
            else f"the {tier.value} backfill queue is at BACKFILL_MAX_QUEUE_{tier.value}; try again later",
            field="start" if duplicate else "priority",
        )
    return JSONResponse(
        {
            "ok": True,
            "symbol": entry.symbol,
            "interval": body.interval.value,
            "priority": tier.value,
            "jobs": [
                {"id": r.id, "start": iso(r.start), "end": iso(r.end), "status": r.status.value}
                for r in result.created
            ],
            "merged_into": result.merged_into,
            "refused": result.refused,
        },
        status_code=202,
    )


@router.post(
    "/validate", response_model=ValidateOut, responses=_REFUSED_CONFIG, operation_id="validateConfig"
)
async def validate(runtime: RuntimeDep) -> JSONResponse:
    """Validate the configuration a reload would load now, without applying it."""
    try:
        _, report = plan_reload(runtime.settings, runtime.current_environ(), set(runtime.providers))
    except ConfigError as exc:
        return _refused(exc, runtime)
    return JSONResponse({"ok": True, "changed": report.changed, "restart_required": report.restart_required})


@router.post("/reload", response_model=ReloadOut, responses=_REFUSED_CONFIG, operation_id="reloadConfig")
async def reload(runtime: RuntimeDep) -> JSONResponse:
    """Re-read and validate the configuration; apply it in every process, or keep the last good one.

    This process applies it and announces its version; the other processes (API replicas,
    workers, the scheduler) re-read their own configuration and apply it too.
    """
    try:
        report = await reload_here(runtime)
    except ConfigError as exc:
        return _refused(exc, runtime)
    announced = False
    if runtime.config_sync is not None:
        try:
            await runtime.config_sync.announce(report.policy_version)
            announced = True
        except (RedisError, OSError) as exc:
            # Applied here all the same; the others catch up from the stored version once
            # Redis answers again, or stay on theirs (/health shows which).
            log.warning("reload %s applied here but not announced: %s", report.policy_version, exc)
    return JSONResponse(
        {
            "ok": True,
            "policy_version": report.policy_version,
            "changed": report.changed,
            "restart_required": report.restart_required,
            "rebuilt": report.rebuilt,
            "announced": announced,
        }
    )


# The seeds name it both ways (seed 003: POST /ops/config/reload); one handler, one behaviour.
router.add_api_route(
    "/config/reload",
    reload,
    methods=["POST"],
    response_model=ReloadOut,
    responses=_REFUSED_CONFIG,
    operation_id="reloadConfigAlias",
    summary="Reload (the seeds' second name for POST /ops/reload)",
)


def _refused(exc: ConfigError, runtime: Runtime) -> JSONResponse:
    return problem(
        422,
        "Invalid configuration",
        f"{exc.setting}: {exc.message}; the running configuration is unchanged",
        field=exc.setting,
        policy_version=runtime.policy_version,
    )


@router.get(
    "/coverage", response_model=CoverageOut, responses=problem_responses(422), operation_id="getCoverage"
)
async def coverage_view(
    runtime: RuntimeDep,
    interval: Annotated[CoverageInterval, Query(description="Bar interval")] = "1m",
    start: StartQuery = None,
    end: EndQuery = None,
) -> dict[str, object]:
    """Per tier: expected closed bars, stored, missing, and confirmed empty (no trades) apart.

    The default window is the latest session, from its open to now.
    """
    iv = Interval(interval)
    now = runtime.clock.now()
    start_ts = parse_ts("start", start)
    end_ts = parse_ts("end", end) or now
    if start_ts is None:
        sessions = [s for s in runtime.calendar.sessions(now - timedelta(days=10), now) if s.open <= now]
        start_ts = sessions[-1].open if sessions else now - timedelta(days=1)
    if start_ts >= end_ts:
        raise InvalidRequest("start", "start must be before end")
    if iv is Interval.M1 and end_ts - start_ts > MAX_INTRADAY_RANGE:
        # Counting is per bar: years of 1m bars block the event loop for tens of seconds.
        raise InvalidRequest("end", f"1m coverage windows are limited to {MAX_INTRADAY_RANGE.days} days")
    universe = await runtime.store.universe()
    tiers = {}
    for tier in Tier:
        names = [e.symbol for e in universe if e.tier is tier]
        tiers[tier.value] = await coverage(
            runtime.store, runtime.calendar, symbols=names, interval=iv, start=start_ts, end=end_ts, now=now
        )
    return {"interval": iv.value, "start": iso(start_ts), "end": iso(end_ts), "tiers": tiers}
