"""Macro factors: ``GET /factors/macro``, ``/factors/macro/{factor_key}/history`` and
``POST /admin/macro/refresh`` (admin role), over :class:`mds.services.macro.MacroService`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from mds.api.deps import CallerDep, RuntimeDep
from mds.api.problems import problem_responses
from mds.errors import InvalidRequest
from mds.serialize import iso

router = APIRouter(tags=["macro"], responses=problem_responses(422, 500, 503))
#: The route that spends vendor budget: guarded by the ``admin`` role in :mod:`mds.api.app`.
admin_router = APIRouter(tags=["admin"], responses=problem_responses(422, 500, 503))

FactorPath = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9_]{1,40}$",
        description="A FRED series id (VIXCLS, DGS10 …) or a derived factor (term_spread_10y2y)",
    ),
]


class FactorOut(BaseModel):
    factor_key: str = Field(description="The factor")
    value: float | None = Field(description="The newest known value (None: nothing stored yet)")
    date: str | None = Field(description="The observation date of that value")
    realtime_start: str | None = Field(default=None, description="Since when the vendor published it")
    source: str | None = Field(default=None, description="The provider it came from")
    change_1: float | None = Field(default=None, description="Change over the last observation")
    change_5: float | None = Field(default=None, description="Change over the last 5 observations")
    change_20: float | None = Field(default=None, description="Change over the last 20 observations")
    zscore_1y: float | None = Field(
        default=None, description="(value − mean) ÷ standard deviation of the last 365 days' values"
    )
    observations_1y: int | None = Field(default=None, description="Values in that year")
    reason: str | None = Field(default=None, description="Why value is null")


class SnapshotOut(BaseModel):
    as_of: str = Field(description="When the snapshot was read")
    factors: dict[str, FactorOut] = Field(description="Per factor key, its summary")


class ObservationOut(BaseModel):
    date: str = Field(description="Observation date")
    value: float | None = Field(description="The value as known at as_of (None: the vendor marks it missing)")
    realtime_start: str = Field(description="Since when this value was published (FRED's realtime_start)")
    as_of: str = Field(description="When MDS learned it")
    source: str = Field(description="The provider")


class HistoryOut(BaseModel):
    factor_key: str = Field(description="The factor")
    as_of: str | None = Field(description="The knowledge date asked (None: the newest values)")
    start: str | None = Field(description="First observation date asked")
    end: str | None = Field(description="Last observation date asked")
    count: int = Field(description="Number of observations")
    observations: list[ObservationOut] = Field(description="Oldest first")


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factors: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,40}$")]] | None = Field(
        default=None, max_length=100, description="FRED series to refresh; default MACRO_FACTORS"
    )


class RefreshOut(BaseModel):
    factors: dict[str, dict[str, Any]] = Field(
        description="Per factor: fetched, new_rows, provider, or error"
    )
    failed: list[str] = Field(description="Factors whose refresh failed")


DateQuery = Query(description="YYYY-MM-DD")


@router.get("/factors/macro", response_model=SnapshotOut, operation_id="getMacroSnapshot")
async def snapshot(runtime: RuntimeDep) -> dict[str, Any]:
    """Every factor's latest value, its date, changes over 1/5/20 observations and a one-year z-score."""
    return await runtime.macro.snapshot()


@router.get(
    "/factors/macro/{factor_key}/history",
    response_model=HistoryOut,
    responses=problem_responses(404),
    operation_id="getMacroHistory",
)
async def history(
    factor_key: FactorPath,
    runtime: RuntimeDep,
    start: Annotated[date | None, Query(description="First observation date (inclusive)")] = None,
    end: Annotated[date | None, Query(description="Last observation date (inclusive)")] = None,
    as_of: Annotated[
        date | None,
        Query(description="Knowledge date: the values as they were published on this day (ALFRED vintages)"),
    ] = None,
) -> dict[str, Any]:
    """A factor's observations dated start..end, as known on ``as_of`` (default: now)."""
    if start is not None and end is not None and end < start:
        raise InvalidRequest("end", f"end {end} is before start {start}")
    rows = await runtime.macro.history(factor_key, start=start, end=end, as_of=as_of)
    key = rows[0].factor_key if rows else await runtime.macro.require(factor_key)
    return {
        "factor_key": key,
        "as_of": as_of.isoformat() if as_of else None,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "count": len(rows),
        "observations": [
            {
                "date": r.date.isoformat(),
                "value": r.value,
                "realtime_start": r.realtime_start.isoformat(),
                "as_of": iso(r.as_of),
                "source": r.source,
            }
            for r in rows
        ],
    }


@admin_router.post("/admin/macro/refresh", response_model=RefreshOut, operation_id="refreshMacro")
async def refresh(
    runtime: RuntimeDep,
    caller: CallerDep,
    body: Annotated[RefreshIn | None, Body()] = None,
) -> dict[str, Any]:
    """Fetch every vintage of the factors' recent observations now (job run ``refresh_macro_factors``)."""
    factors = [f.upper() for f in body.factors] if body is not None and body.factors else None
    params = {"factors": factors} if factors else {}
    async with runtime.runs.recorded("refresh_macro_factors", params, created_by=caller) as counters:
        report = await runtime.macro.refresh(factors)
        counters.update(report.counters())
    return {"factors": report.factors, "failed": report.failed}
