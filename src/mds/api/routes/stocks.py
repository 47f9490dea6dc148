"""Market data for users: latest price, history, intraday bars, batch prices."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from mds.api.deps import MarketDep, RuntimeDep
from mds.api.models import BarsOut, BatchIn, BatchOut, PriceOut
from mds.api.params import (
    TIME_PATTERN,
    AdjustQuery,
    EndQuery,
    EventDateQuery,
    IntradayInterval,
    PeriodQuery,
    StartQuery,
    SymbolPath,
    parse_day,
    parse_ts,
)
from mds.api.problems import problem_responses
from mds.corporate.adjust import Adjust
from mds.domain.models import Interval
from mds.export.formats import MEDIA_TYPES, content_disposition, csv_chunks, filename, parquet_bytes

router = APIRouter(prefix="/stocks", tags=["stocks"], responses=problem_responses(422, 500, 503))
_SYMBOL_READ = problem_responses(404)
# OpenAPI links: what a client (or a stateful test) may call next with this answer's symbol.
_SYMBOL = "$response.body#/symbol"
_PRICE_LINKS = {
    "history": {"operationId": "getHistory", "parameters": {"symbol": _SYMBOL}},
    "intraday": {"operationId": "getIntraday", "parameters": {"symbol": _SYMBOL}},
    "ta": {"operationId": "getTa", "parameters": {"symbol": _SYMBOL}},
    "atr": {"operationId": "getAtr", "parameters": {"symbol": _SYMBOL}},
}


def _json(body: bytes) -> Response:
    # Bars are serialised by the service (services may keep the bytes); response_model
    # on the routes still documents the shape.
    return Response(body, media_type="application/json")


@router.get(
    "/{symbol}/price",
    response_model=PriceOut,
    responses={**_SYMBOL_READ, 200: {"links": _PRICE_LINKS}},
    operation_id="getPrice",
)
async def price(symbol: SymbolPath, market: MarketDep) -> PriceOut:
    """The newest price MDS knows: a fresh quote, else the last 1m bar, else the last daily bar."""
    return PriceOut(**await market.price(symbol))


@router.get(
    "/{symbol}/history",
    response_model=BarsOut,
    responses={
        **_SYMBOL_READ,
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            }
        },
    },
    operation_id="getHistory",
)
async def history(
    symbol: SymbolPath,
    market: MarketDep,
    period: PeriodQuery = "1mo",
    interval: Annotated[
        Interval, Query(description="1d, or an intraday interval (then at most the last 31 days)")
    ] = Interval.D1,
    adjust: AdjustQuery = Adjust.RAW,
    as_of: Annotated[
        str | None,
        Query(
            pattern=TIME_PATTERN, description="Knowledge time: only bars and actions MDS knew at this time"
        ),
    ] = None,
    date: EventDateQuery = None,
    start: Annotated[
        str | None,
        Query(pattern=TIME_PATTERN, description="Inclusive start, ISO-8601 with a zone (instead of period)"),
    ] = None,
    end: Annotated[
        str | None,
        Query(pattern=TIME_PATTERN, description="Exclusive end, ISO-8601 with a zone; default: now"),
    ] = None,
    format: Annotated[  # noqa: A002 - the issue's parameter name
        Literal["json", "csv", "parquet"],
        Query(description="json (default), csv (streamed) or parquet (one file), with the same bars"),
    ] = "json",
) -> Response:
    """Bars of one symbol over a period ending now, or ``start <= ts < end``; ``date`` cuts
    the range at that session (event time). ``format=csv|parquet`` answers a file."""
    as_of_ts = parse_ts("as_of", as_of)
    r = await market.history(
        symbol,
        period,
        interval,
        adjust=adjust,
        as_of=as_of_ts,
        on=parse_day("date", date),
        start=parse_ts("start", start),
        end=parse_ts("end", end),
    )
    if format == "json":
        return _json(r.document(as_of_ts))
    name = filename(r.symbol, r.interval.value, r.start, r.end, format)
    headers = {"Content-Disposition": content_disposition(name)}
    if format == "csv":
        return StreamingResponse(csv_chunks(r.bars), media_type=MEDIA_TYPES["csv"], headers=headers)
    meta = {
        "symbol": r.symbol,
        "interval": r.interval.value,
        "start": r.start,
        "end": r.end,
        "as_of": as_of_ts,
        "adjustment": r.adjustment.describe(),
    }
    return Response(parquet_bytes(r.bars, meta), media_type=MEDIA_TYPES["parquet"], headers=headers)


@router.get("/{symbol}/intraday", response_model=BarsOut, responses=_SYMBOL_READ, operation_id="getIntraday")
async def intraday(
    symbol: SymbolPath,
    market: MarketDep,
    runtime: RuntimeDep,
    interval: Annotated[
        IntradayInterval,
        Query(
            description="Bar interval (5m/15m/1h are rolled up from 1m; 5m of a range without 1m bars"
            " comes from native 5m bars)"
        ),
    ] = "1m",
    start: StartQuery = None,
    end: EndQuery = None,
    as_of: Annotated[
        str | None,
        Query(pattern=TIME_PATTERN, description="Read what MDS knew at this time (point in time)"),
    ] = None,
    adjust: AdjustQuery = Adjust.RAW,
) -> Response:
    """Intraday bars in ``start <= ts < end``, optionally as MDS knew them at ``as_of``."""
    iv = Interval(interval)
    now = runtime.clock.now()
    start_ts = parse_ts("start", start)
    end_ts = parse_ts("end", end) or now + timedelta(seconds=1)
    as_of_ts = parse_ts("as_of", as_of)
    if start_ts is None:
        sessions = [s for s in runtime.calendar.sessions(now - timedelta(days=10), now) if s.open <= now]
        start_ts = sessions[-1].open if sessions else now - timedelta(days=1)
    return _json(await market.bars_json(symbol, iv, start_ts, end_ts, as_of=as_of_ts, adjust=adjust))


@router.post("/batch", response_model=BatchOut, operation_id="getBatchPrices")
async def batch(body: BatchIn, market: MarketDep) -> BatchOut:
    """The latest price of up to 1000 symbols; a symbol without one is listed in ``errors``."""
    return BatchOut(**await market.batch(body.symbols))
