"""`mds sim-server --format finnhub`: the sim market in Finnhub's candle and quote shapes.

Answers ``/api/v1/stock/candle`` (parallel arrays, ``t`` epoch seconds; daily candles
stamped 00:00 UTC of the session date, as Finnhub does now; ``{"s":"no_data"}`` when
empty), ``/api/v1/quote`` and ``/api/v1/stock/profile2`` (the sim's profile, market cap and
shares in millions; 0 for an ETF's). The token is not checked.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mds.domain.models import Bar, Interval
from mds.errors import ProviderError, RateLimited
from mds.providers import timeconv
from mds.simserver.context import SimContext

_RESOLUTIONS = {"1": Interval.M1, "5": Interval.M5, "15": Interval.M15, "60": Interval.H1, "D": Interval.D1}


def _num(value: float) -> float | None:
    return None if math.isnan(value) else value


def _stamp(bar: Bar) -> int:
    if bar.interval is Interval.D1:
        day = timeconv.local_date(bar.ts)
        return int(datetime.combine(day, time(), UTC).timestamp())
    return int(bar.ts.timestamp())


def routes(ctx: SimContext) -> list[Route]:
    async def candle(request: Request) -> Response:
        now = await ctx.admit()
        q = request.query_params
        interval = _RESOLUTIONS.get(q.get("resolution", ""))
        if interval is None:
            return JSONResponse({"error": "Wrong resolution."}, status_code=422)
        try:
            start = timeconv.from_epoch(int(q["from"]))
            end = timeconv.from_epoch(int(q["to"]) + 1)  # Finnhub's `to` is inclusive
        except (KeyError, ValueError):
            return JSONResponse({"error": "Wrong from/to."}, status_code=422)
        symbol = q.get("symbol", "").upper()
        if interval is Interval.D1:
            # Like Finnhub, select daily candles by their 00:00 UTC stamp (not the open):
            # the dates d with from <= 00:00Z(d) <= to.
            first = start.date() if start.time() == time() else start.date() + timedelta(days=1)
            last = (end - timedelta(seconds=1)).date()
            start = datetime.combine(first, time(), UTC)
            end = datetime.combine(last + timedelta(days=1), time(), UTC)
        bars = ctx.bars(symbol, interval, start, end, now)
        if not bars:
            return JSONResponse({"s": "no_data"})
        return JSONResponse(
            {
                "c": [_num(b.close) for b in bars],
                "h": [_num(b.high) for b in bars],
                "l": [_num(b.low) for b in bars],
                "o": [_num(b.open) for b in bars],
                "s": "ok",
                "t": [_stamp(b) for b in bars],
                "v": [int(b.volume) for b in bars],
            }
        )

    async def quote(request: Request) -> Response:
        now = await ctx.admit()
        qt = ctx.quote(request.query_params.get("symbol", "").upper(), now)
        return JSONResponse(
            {
                "c": qt.last,
                "d": None,
                "dp": None,
                "h": qt.last,
                "l": qt.last,
                "o": qt.last,
                "pc": qt.last,
                "t": int(qt.ts.timestamp()),
            }
        )

    async def profile2(request: Request) -> Response:
        now = await ctx.admit()
        symbol = request.query_params.get("symbol", "").upper()
        p = ctx.profile(symbol, now)
        return JSONResponse(
            {
                "country": "US",
                "currency": p.currency,
                "estimateCurrency": p.currency,
                "exchange": p.exchange,
                "finnhubIndustry": p.industry or p.sector,
                "ipo": "",
                "logo": "",
                "marketCapitalization": (p.market_cap or 0) / 1e6,
                "name": p.name,
                "phone": "",
                "shareOutstanding": (p.shares_outstanding or 0) / 1e6,
                "ticker": p.symbol,
                "weburl": "",
            }
        )

    return [
        Route("/api/v1/stock/candle", candle, methods=["GET"]),
        Route("/api/v1/quote", quote, methods=["GET"]),
        Route("/api/v1/stock/profile2", profile2, methods=["GET"]),
    ]


def error_response(err: ProviderError) -> Response:
    """Finnhub's ``{"error": ...}`` bodies; a 429 carries X-Ratelimit-* headers, no Retry-After."""
    if isinstance(err, RateLimited):
        reset = int(datetime.now(UTC).timestamp() + err.retry_after)
        return JSONResponse(
            {"error": "API limit reached. Please try again later. Remaining Limit: 0"},
            status_code=429,
            headers={
                "X-Ratelimit-Limit": "60",
                "X-Ratelimit-Remaining": "0",
                "X-Ratelimit-Reset": str(reset),
            },
        )
    status = int(err.code) if err.code.isdigit() else 500
    return JSONResponse({"error": err.message or err.kind}, status_code=status)
