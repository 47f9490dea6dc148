"""`mds sim-server --format yahoo`: the sim market in Yahoo Finance's chart and quote shapes.

Answers the paths ``mds.providers.yahoo`` sends: ``/v8/finance/chart/{symbol}`` (epoch
bar-open timestamps, daily rows at the 09:30 ET open, parallel OHLCV arrays with null
for a missing value) and ``/v7/finance/quote``. Like Yahoo it refuses 1m windows wider
than 8 days with a 422 chart error, so the adapter's windowing is exercised.
"""

from __future__ import annotations

import math
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mds.domain.models import Interval
from mds.errors import ProviderError, RateLimited
from mds.providers import timeconv
from mds.simserver.context import SimContext

_INTERVALS = {
    "1m": Interval.M1,
    "5m": Interval.M5,
    "15m": Interval.M15,
    "60m": Interval.H1,
    "1d": Interval.D1,
}
_MAX_1M = timedelta(days=8)


def _chart_error(code: str, description: str, status: int) -> JSONResponse:
    return JSONResponse(
        {"chart": {"result": None, "error": {"code": code, "description": description}}}, status_code=status
    )


def _num(value: float) -> float | None:
    return None if math.isnan(value) else value


def routes(ctx: SimContext) -> list[Route]:
    async def chart(request: Request) -> Response:
        now = await ctx.admit()
        symbol = request.path_params["symbol"].upper()
        q = request.query_params
        interval = _INTERVALS.get(q.get("interval", "1d"))
        if interval is None:
            return _chart_error("Unprocessable Entity", f"Invalid input - interval={q.get('interval')}", 422)
        try:
            start = timeconv.from_epoch(int(q["period1"]))
            end = timeconv.from_epoch(int(q["period2"]))
        except (KeyError, ValueError):
            return _chart_error("Bad Request", "period1 and period2 are required", 400)
        if interval is Interval.M1 and end - start > _MAX_1M:
            return _chart_error(
                "Unprocessable Entity",
                "Only 8 days worth of 1m granularity data are allowed to be fetched per request.",
                422,
            )
        bars = ctx.bars(symbol, interval, start, end, now)
        meta = {
            "currency": "USD",
            "symbol": symbol,
            "exchangeName": "NMS",
            "instrumentType": "EQUITY",
            "gmtoffset": int(now.astimezone(timeconv.NEW_YORK).utcoffset().total_seconds()),  # type: ignore[union-attr]
            "timezone": now.astimezone(timeconv.NEW_YORK).tzname(),
            "exchangeTimezoneName": "America/New_York",
            "dataGranularity": q.get("interval", "1d"),
            "range": "",
        }
        result: dict[str, object] = {"meta": meta}
        if bars:
            # Daily bars carry ts = session open, which is also Yahoo's 09:30 ET daily stamp.
            result["timestamp"] = [int(b.ts.timestamp()) for b in bars]
            result["indicators"] = {
                "quote": [
                    {
                        "open": [_num(b.open) for b in bars],
                        "high": [_num(b.high) for b in bars],
                        "low": [_num(b.low) for b in bars],
                        "close": [_num(b.close) for b in bars],
                        "volume": [int(b.volume) for b in bars],
                    }
                ],
                **(
                    {"adjclose": [{"adjclose": [_num(b.close) for b in bars]}]}
                    if interval is Interval.D1
                    else {}
                ),
            }
        else:
            result["indicators"] = {"quote": [{}]}
        return JSONResponse({"chart": {"result": [result], "error": None}})

    async def quote(request: Request) -> Response:
        now = await ctx.admit()
        symbols = [s for s in request.query_params.get("symbols", "").split(",") if s]
        rows = []
        for symbol in symbols:
            qt = ctx.quote(symbol.upper(), now)
            rows.append(
                {
                    "language": "en-US",
                    "region": "US",
                    "quoteType": "EQUITY",
                    "currency": "USD",
                    "symbol": qt.symbol,
                    "regularMarketPrice": qt.last,
                    "regularMarketTime": int(qt.ts.timestamp()),
                    "bid": qt.bid,
                    "ask": qt.ask,
                    "bidSize": qt.bid_size,
                    "askSize": qt.ask_size,
                    "exchange": "NMS",
                    "exchangeTimezoneName": "America/New_York",
                }
            )
        return JSONResponse({"quoteResponse": {"result": rows, "error": None}})

    return [
        Route("/v8/finance/chart/{symbol}", chart, methods=["GET"]),
        Route("/v7/finance/quote", quote, methods=["GET"]),
    ]


def error_response(err: ProviderError) -> Response:
    """Yahoo throttles with a bare-text 429 (no Retry-After); other faults are statuses."""
    if isinstance(err, RateLimited):
        return PlainTextResponse("Too Many Requests\r\n", status_code=429)
    status = int(err.code) if err.code.isdigit() else 500
    return PlainTextResponse(err.message or err.kind, status_code=status)
