"""Stored history straight from the store, native 5m backfill and retention (issue 14).

``router`` reads (``read`` role); ``admin_router`` spends vendor budget or deletes data
(``admin`` role). :mod:`mds.api.app` guards both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from mds.api.deps import CallerDep, RuntimeDep
from mds.api.models import AdjustmentOut, BarOut
from mds.api.params import TIME_PATTERN, AdjustQuery, EndQuery, SymbolQuery, parse_ts
from mds.api.problems import problem, problem_responses
from mds.corporate.adjust import Adjust
from mds.domain.models import Capability, Interval
from mds.errors import InvalidRequest
from mds.ops.runs import scalar_counters
from mds.serialize import bar_rows, iso
from mds.services.history5m import backfill_5m
from mds.services.retention import enforce_retention

router = APIRouter(prefix="/api/v1/market-data", tags=["history"], responses=problem_responses(422, 500, 503))
admin_router = APIRouter(
    prefix="/api/v1/market-data", tags=["admin"], responses=problem_responses(422, 500, 503)
)

#: The stored series this route reads (5m: native bars of symbols without a 1m series).
DbInterval = Literal["1d", "5m"]
#: Where an omitted start begins: before anything MDS holds.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DB_LIMIT = 20_000


class DbHistoryOut(BaseModel):
    symbol: str = Field(description="Ticker")
    interval: DbInterval = Field(description="Stored bar interval")
    start: str = Field(description="Inclusive start of the range (UTC)")
    end: str = Field(description="Exclusive end of the range (UTC)")
    limit: int = Field(description="At most this many bars, the newest of the range")
    count: int = Field(description="Bars returned")
    adjustment: AdjustmentOut = Field(description="The adjustment applied to the bars and with which actions")
    bars: list[BarOut] = Field(description="Current revisions as stored, oldest first")


class Backfill5mOut(BaseModel):
    symbols: int = Field(description="Tracked symbols considered")
    skipped_with_1m: int = Field(
        description="Of those, skipped: they hold 1m bars in the window (5m is rolled up)"
    )
    queued_symbols: int = Field(description="Symbols with missing 5m bars queued")
    jobs_created: int = Field(description="Backfill jobs created")
    merged_into: list[int] = Field(description="Active jobs the new ranges were merged into")
    refused: dict[str, int] = Field(description="Ranges refused, per reason (duplicate, cap)")
    n_days: int = Field(description="Calendar days of the window")
    start: str = Field(description="Start of the window (UTC)")
    end: str = Field(description="End of the window: now (UTC)")


class RetentionIntervalOut(BaseModel):
    max_days: int = Field(description="Days of bars kept (0 keeps all)")
    cutoff: str | None = Field(
        default=None, description="Bars older than this went (UTC); absent when skipped"
    )
    deleted_bars: int | None = Field(default=None, description="Current revisions deleted")
    deleted_history: int | None = Field(default=None, description="Superseded revisions deleted")
    skipped: str | None = Field(default=None, description="Why this interval was left alone")


class RetentionOut(BaseModel):
    ran_at: str = Field(description="Service-clock time of the pass (UTC)")
    intervals: dict[str, RetentionIntervalOut] = Field(description="What the pass did, per interval (5m, 1m)")


@router.get(
    "/db/history",
    response_model=DbHistoryOut,
    responses=problem_responses(404),
    operation_id="getDbHistory",
)
async def db_history(
    runtime: RuntimeDep,
    symbol: SymbolQuery,
    interval: Annotated[DbInterval, Query(description="1d, or 5m (native 5m bars)")] = "1d",
    start: Annotated[
        str | None,
        Query(
            pattern=TIME_PATTERN,
            description="Inclusive start, ISO-8601 with a zone; default: everything stored",
        ),
    ] = None,
    end: EndQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DB_LIMIT, description="Newest bars to return")] = 1000,
    adjust: AdjustQuery = Adjust.RAW,
) -> Response:
    """Stored bars of one series as they are in the store now: no rollup, no merge.

    The newest ``limit`` bars in ``start <= ts < end``, oldest first, each labelled with
    the provider that sent it; ``adjust`` applies splits (and dividends) as on every read.
    """
    entry = await runtime.market.require_symbol(symbol)
    start_ts = parse_ts("start", start) or _EPOCH
    end_ts = parse_ts("end", end) or runtime.clock.now() + timedelta(seconds=1)
    if start_ts >= end_ts:
        raise InvalidRequest("start", "start must be before end")
    iv = Interval(interval)
    bars = await runtime.store.read_bars(entry.symbol, iv, start_ts, end_ts, limit=limit)
    adjustment = await runtime.market.adjustments.plan(
        entry.symbol, adjust, as_of=None, through=runtime.market.basis_date(end_ts), daily=bars
    )
    bars = adjustment.apply(bars)
    body = {
        "symbol": entry.symbol,
        "interval": iv.value,
        "start": iso(start_ts),
        "end": iso(end_ts),
        "limit": limit,
        "count": len(bars),
        "adjustment": adjustment.describe(),
        "bars": bar_rows(bars),
    }
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")


@admin_router.post(
    "/backfill/5m",
    status_code=202,
    response_model=Backfill5mOut,
    operation_id="backfill5m",
)
async def backfill_native_5m(
    runtime: RuntimeDep,
    n_days: Annotated[
        int | None,
        Query(ge=1, le=366, description="Calendar days back from now; default BACKFILL_LOOKBACK_DAYS_5M"),
    ] = None,
    batch_size: Annotated[int, Query(ge=1, le=5000, description="Symbols per planning batch")] = 50,
    caller: CallerDep = None,
) -> Response | dict[str, object]:
    """Queue native 5m bars for the tracked symbols that have no 1m series.

    Tracked symbols holding 1m bars in the window are skipped (their 5m is rolled up from
    1m); for the others the missing 5m bars of the window go through the tiered backfill.
    """
    if runtime.collector is None:
        return problem(
            503, "No collector", "this process runs no collector; send backfills to a worker", field="n_days"
        )
    days = n_days if n_days is not None else runtime.settings.BACKFILL_LOOKBACK_DAYS_5M
    if days < 1:
        raise InvalidRequest("n_days", "BACKFILL_LOOKBACK_DAYS_5M is 0: give n_days")
    if not runtime.router.order(Capability.BARS_5M):
        return problem(
            503,
            "No 5m provider",
            "no provider is routable for bars_5m now: see POLICY_BARS_5M and its providers' keys",
            field="POLICY_BARS_5M",
        )
    params = {"n_days": days, "batch_size": batch_size}
    async with runtime.runs.recorded("backfill_5m_last_n_days", params, created_by=caller) as counters:
        tracked = await runtime.tracked.tracked_set(with_new=False)
        report = await backfill_5m(
            symbols=sorted(tracked.all),
            n_days=days,
            batch_size=batch_size,
            backfiller=runtime.collector.backfiller,
            store=runtime.store,
            clock=runtime.clock,
            calendar=runtime.calendar,
        )
        counters.update(scalar_counters(report))
    return {**report, "n_days": days}


@admin_router.post(
    "/retention/enforce",
    response_model=RetentionOut,
    response_model_exclude_none=True,
    operation_id="enforceRetention",
)
async def retention_enforce(
    runtime: RuntimeDep,
    max_days_5m: Annotated[
        int | None,
        Query(ge=0, le=36_500, description="Days of 5m bars kept (0 keeps all); default RETENTION_DAYS_5M"),
    ] = None,
    max_days_1m: Annotated[
        int | None,
        Query(
            ge=0,
            le=36_500,
            description="Days of 1m bars kept (0 keeps all; TimescaleDB keeps its own); default RETENTION_DAYS_1M",
        ),
    ] = None,
    caller: CallerDep = None,
) -> dict[str, object]:
    """Delete bars older than the retention limits now, and report what went per interval
    (recorded as an `enforce_price_data_retention` job run)."""
    days_5m = max_days_5m if max_days_5m is not None else runtime.settings.RETENTION_DAYS_5M
    days_1m = max_days_1m if max_days_1m is not None else runtime.settings.RETENTION_DAYS_1M
    params = {"max_days_5m": days_5m, "max_days_1m": days_1m}
    async with runtime.runs.recorded("enforce_price_data_retention", params, created_by=caller) as counters:
        info = await runtime.store.backend_info()
        report = await enforce_retention(
            runtime.store,
            runtime.clock,
            max_days_5m=days_5m,
            max_days_1m=days_1m,
            timescale=bool(info.get("timescaledb")),
            metrics=runtime.metrics,
            generations=runtime.market.generations,
        )
        for interval, part in report["intervals"].items():
            counters[f"deleted_bars_{interval}"] = part.get("deleted_bars", 0)
    return report
