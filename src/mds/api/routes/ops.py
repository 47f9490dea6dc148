"""Operator endpoints: cursors, manual backfill, config validation."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mds.api.deps import RuntimeDep
from mds.api.errors import problem
from mds.api.models import BackfillIn
from mds.api.params import parse_interval, parse_ts
from mds.domain.models import Interval, Tier
from mds.errors import ConfigError, InvalidRequest, NotFound
from mds.ingest.scan import coverage
from mds.ops.reload import plan_reload
from mds.serialize import iso

router = APIRouter(prefix="/ops", tags=["ops"])


@router.get("/cursor/{symbol}/{interval}/{source}")
async def cursor(symbol: str, interval: str, source: str, runtime: RuntimeDep) -> dict[str, object]:
    iv = parse_interval("interval", interval)
    entry = await runtime.market.require_symbol(symbol)
    c = await runtime.store.get_cursor(entry.symbol, iv, source)
    if c is None:
        raise NotFound("cursor", f"{entry.symbol}/{iv.value}/{source}")
    return {
        "symbol": c.symbol,
        "interval": c.interval.value,
        "source": c.source,
        "last_ts": iso(c.last_ts),
        "updated_at": iso(c.updated_at),
        "lag_seconds": round(
            (runtime.clock.now() - runtime.calendar.bar_end(c.last_ts, iv)).total_seconds(), 3
        ),
    }


@router.post("/backfill", status_code=202)
async def backfill(body: BackfillIn, runtime: RuntimeDep) -> JSONResponse:
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


@router.post("/validate")
async def validate(runtime: RuntimeDep) -> JSONResponse:
    """Validate the configuration a reload would load now, without applying it."""
    try:
        _, report = plan_reload(runtime.settings, runtime.current_environ(), set(runtime.providers))
    except ConfigError as exc:
        return _refused(exc, runtime)
    return JSONResponse({"ok": True, "changed": report.changed, "restart_required": report.restart_required})


@router.post("/reload")
async def reload(runtime: RuntimeDep) -> JSONResponse:
    """Re-read and validate the configuration; apply it, or keep the last good one."""
    try:
        new, report = plan_reload(runtime.settings, runtime.current_environ(), set(runtime.providers))
    except ConfigError as exc:
        return _refused(exc, runtime)
    runtime.apply_settings(new)
    runtime.policy_version = report.policy_version
    return JSONResponse(
        {
            "ok": True,
            "policy_version": report.policy_version,
            "changed": report.changed,
            "restart_required": report.restart_required,
        }
    )


def _refused(exc: ConfigError, runtime) -> JSONResponse:  # type: ignore[no-untyped-def]
    return JSONResponse(
        {
            "type": "about:blank",
            "title": "Invalid configuration",
            "status": 422,
            "detail": f"{exc.setting}: {exc.message}; the running configuration is unchanged",
            "field": exc.setting,
            "policy_version": runtime.policy_version,
        },
        status_code=422,
        media_type="application/problem+json",
    )


@router.get("/coverage")
async def coverage_view(
    runtime: RuntimeDep,
    interval: str = "1m",
    start: str | None = None,
    end: str | None = None,
) -> dict[str, object]:
    """Per tier: expected closed bars, stored, missing, and confirmed empty (no trades) apart.

    The default window is the latest session, from its open to now.
    """
    iv = parse_interval("interval", interval, allowed=(Interval.M1, Interval.D1))
    now = runtime.clock.now()
    start_ts = parse_ts("start", start)
    end_ts = parse_ts("end", end) or now
    if start_ts is None:
        sessions = [s for s in runtime.calendar.sessions(now - timedelta(days=10), now) if s.open <= now]
        start_ts = sessions[-1].open if sessions else now - timedelta(days=1)
    if start_ts >= end_ts:
        raise InvalidRequest("start", "start must be before end")
    universe = await runtime.store.universe()
    tiers = {}
    for tier in Tier:
        names = [e.symbol for e in universe if e.tier is tier]
        tiers[tier.value] = await coverage(
            runtime.store, runtime.calendar, symbols=names, interval=iv, start=start_ts, end=end_ts, now=now
        )
    return {"interval": iv.value, "start": iso(start_ts), "end": iso(end_ts), "tiers": tiers}
