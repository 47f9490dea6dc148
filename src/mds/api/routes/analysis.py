"""Indicators and analysis snapshots (seed 004 paths): prices, ATR, TA, refresh, history.

Thin over :class:`mds.analysis.service.AnalysisService`; the service is built from the
Runtime on first use and kept on ``app.state.analysis`` (it holds no connections of its
own, so it needs no shutdown).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mds.analysis.base import TECHNICAL
from mds.analysis.service import AnalysisService
from mds.api.deps import CallerDep, RuntimeDep
from mds.api.models import AdjustmentOut, Ohlcv, SnapshotOut
from mds.api.params import (
    DATE_OR_TIME_PATTERN,
    DATE_PATTERN,
    AdjustQuery,
    EventDateQuery,
    PeriodQuery,
    SymbolQuery,
    parse_day,
    parse_ts,
)
from mds.api.problems import problem_responses
from mds.corporate.adjust import Adjust
from mds.domain.jobs import Symbol
from mds.domain.models import Interval
from mds.errors import InvalidRequest
from mds.runtime import analysis_service

_ANSWERS = problem_responses(404, 422, 500, 503)
router = APIRouter(tags=["analysis"], responses=_ANSWERS)
#: The analysis routes that change state: guarded by the ``admin`` role in :mod:`mds.api.app`.
admin_router = APIRouter(tags=["admin"], responses=_ANSWERS)


async def get_analysis(request: Request) -> AnalysisService:
    runtime = request.app.state.runtime
    service: AnalysisService | None = getattr(request.app.state, "analysis", None)
    if service is None or service.store is not runtime.store:
        service = analysis_service(runtime)
        request.app.state.analysis = service
    return service


AnalysisDep = Annotated[AnalysisService, Depends(get_analysis)]


def parse_as_of(field: str, value: str | None) -> date | datetime | None:
    """``YYYY-MM-DD`` (the end of that exchange day) or an ISO-8601 time with a zone."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidRequest(field, f"{value!r} is not a date (YYYY-MM-DD)") from None
    return parse_ts(field, text)


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[Symbol] | None = Field(
        default=None, min_length=1, max_length=20_000, description="Tickers; default: the active universe"
    )


class RefreshOut(BaseModel):
    symbols: int = Field(description="Snapshots computed and cached")
    without_bars: list[str] = Field(description="Symbols with no daily bars stored (all fields null)")
    computed_at: str = Field(description="When the snapshots were computed (UTC)")
    expires_at: str = Field(description="When the cached snapshots expire (UTC)")
    seconds: float = Field(description="Wall time of the refresh")


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[Symbol] | None = Field(
        default=None, min_length=1, max_length=20_000, description="Tickers; default: the active universe"
    )
    # A string with a pattern, not a date: pydantic would also take a number as a date.
    as_of: str | None = Field(
        default=None,
        pattern=DATE_PATTERN,
        description="Record the point-in-time snapshot of this date (YYYY-MM-DD) instead of today's",
    )
    analysis_type: str = Field(
        default=TECHNICAL, pattern=r"^[a-z][a-z0-9_]{0,31}$", description="History key's analysis type"
    )


class RecordOut(BaseModel):
    analysis_type: str = Field(description="The analysis type recorded")
    recorded: int = Field(description="Rows written")
    refused: list[str] = Field(description="Symbols whose row for that date already exists (immutable)")
    skipped_without_bars: list[str] = Field(description="Symbols with no daily bars, not recorded")
    recorded_at: str = Field(description="When the rows were recorded (UTC)")


class AtrOut(BaseModel):
    symbol: str = Field(description="Ticker")
    as_of: str | None = Field(description="Session date of the last bar used")
    bars_used: int = Field(description="Daily bars used")
    close: float | None = Field(description="Last close")
    atr_14: float | None = Field(description="Average true range, 14 sessions (TA-Lib)")
    atr_pct: float | None = Field(description="100 * ATR14 / close")
    atr_dist_sma50: float | None = Field(description="(close - SMA50) / ATR14, in ATRs")
    sma_50: float | None = Field(description="50-session simple moving average")
    atr_pct_rank: float | None = Field(description="Percent of the last 252 ATR% values at or below today's")
    regime: Literal["LOW", "NORMAL", "HIGH", "EXTREME"] | None = Field(
        description="LOW (<20), NORMAL, HIGH (>=80) or EXTREME (100) by atr_pct_rank"
    )
    reasons: dict[str, str] = Field(description="Why a null field is null")
    adjustment: AdjustmentOut = Field(
        description="The adjustment the figures were computed on (ANALYSIS_ADJUST)"
    )


class PricesOut(BaseModel):
    symbol: str = Field(description="Ticker")
    interval: Interval = Field(description="Bar interval")
    range: str = Field(description="The range asked for")
    start: str = Field(description="Inclusive start of the bars read (UTC)")
    end: str = Field(description="Exclusive end of the bars read (UTC)")
    count: int = Field(description="Number of bars")
    adjustment: AdjustmentOut = Field(description="The adjustment applied to the bars and with which actions")
    bars: list[Ohlcv] = Field(description="Bars in time order")


@router.get("/api/v1/market/prices", response_model=PricesOut, operation_id="getPrices")
async def prices(
    analysis: AnalysisDep,
    symbol: SymbolQuery,
    range: PeriodQuery = "200d",  # noqa: A002
    interval: Annotated[
        Interval, Query(description="1d, or an intraday interval (then at most the last 31 days)")
    ] = Interval.D1,
    adjust: AdjustQuery = Adjust.RAW,
) -> dict[str, Any]:
    """OHLCV bars of one symbol over a range ending now."""
    return await analysis.prices(symbol, range, interval, adjust=adjust)


@router.get("/api/v1/market/atr", response_model=AtrOut, operation_id="getAtr")
async def atr(analysis: AnalysisDep, symbol: SymbolQuery) -> dict[str, Any]:
    """ATR(14), ATR%, distance from SMA50 and the volatility regime."""
    return await analysis.atr(symbol)


# exclude_unset: a snapshot carries computed_at or computed_as_of, never both as null.
@router.get(
    "/api/v1/market/ta", response_model=SnapshotOut, response_model_exclude_unset=True, operation_id="getTa"
)
async def ta(
    analysis: AnalysisDep,
    symbol: SymbolQuery,
    as_of: Annotated[
        str | None,
        Query(
            pattern=DATE_OR_TIME_PATTERN,
            description="Knowledge time: YYYY-MM-DD (end of that day) or an ISO time with a zone:"
            " only bars and corporate actions MDS knew then",
        ),
    ] = None,
    date: EventDateQuery = None,
) -> dict[str, Any]:
    """The technical snapshot: RSI, MAs, MACD, ADX, performance, bucket, stage, TD, gaps.

    Computed on split-adjusted bars (ANALYSIS_ADJUST). ``date`` is event time (only sessions
    on or before it, whenever MDS learned them), ``as_of`` knowledge time; together they
    give what would have been computed on ``date`` with what MDS knew at ``as_of``. Fields
    needing more history than is available are null, with the reason in ``reasons``
    (naming the axis that excluded the bars).
    """
    return await analysis.snapshot(symbol, as_of=parse_as_of("as_of", as_of), on=parse_day("date", date))


@admin_router.post(
    "/api/v1/market-data/admin/indicators/refresh-index",
    response_model=RefreshOut,
    operation_id="refreshIndex",
)
async def refresh_index(
    analysis: AnalysisDep, runtime: RuntimeDep, caller: CallerDep, body: RefreshIn | None = Body(default=None)
) -> dict[str, Any]:
    """Recompute and cache the snapshots of the universe (or of the given symbols), recorded
    as a `recompute_indicators_universe` job run."""
    symbols = body.symbols if body else None
    params = {"symbols": symbols} if symbols else {}
    async with runtime.runs.recorded("recompute_indicators_universe", params, created_by=caller) as counters:
        report = await analysis.refresh(symbols)
        counters.update(symbols=report["symbols"], without_bars=len(report["without_bars"]))
    return report


@admin_router.post(
    "/api/v1/market-data/admin/history/record", response_model=RecordOut, operation_id="recordHistory"
)
async def record_history(
    analysis: AnalysisDep, runtime: RuntimeDep, caller: CallerDep, body: RecordIn | None = Body(default=None)
) -> dict[str, Any]:
    """Record the day's snapshots into the immutable history; existing keys are refused
    (recorded as a `record_daily_history` job run)."""
    body = body or RecordIn()
    as_of = date.fromisoformat(body.as_of) if body.as_of else None  # the pattern admits real dates only
    params = body.model_dump(exclude_none=True)
    async with runtime.runs.recorded("record_daily_history", params, created_by=caller) as counters:
        report = await analysis.record_history(body.symbols, as_of=as_of, analysis_type=body.analysis_type)
        counters.update(recorded=report["recorded"], refused=len(report["refused"]))
    return report
