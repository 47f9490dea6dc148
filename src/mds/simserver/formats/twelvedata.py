"""Twelve Data wire format for ``mds sim-server --format twelvedata``.

``/time_series`` answers the latest ``outputsize`` rows (at most 5000) between ``start_date``
(inclusive) and ``end_date`` (a date is exclusive, a date-time inclusive), in ``order``, as
wall times in ``timezone`` labelling each bar's start, numbers as strings. An empty range is
the vendor's HTTP 200 ``{"code": 400, "message": "No data is available …", "status": "error"}``,
and running out of credits is ``{"code": 429, …}`` with HTTP 200 too. ``/quote`` takes a
comma-separated list.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mds.domain.models import Bar, Interval
from mds.errors import ProviderError, RateLimited
from mds.providers.timeconv import NEW_YORK
from mds.simserver.app import default_error_response
from mds.simserver.context import SimContext

_INTERVALS = {
    "1min": Interval.M1,
    "5min": Interval.M5,
    "15min": Interval.M15,
    "1h": Interval.H1,
    "1day": Interval.D1,
}
_MAX = 5000


def _error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "status": "error"})


def _bound(text: str | None, tz: ZoneInfo, *, end: bool) -> datetime | None:
    """A start/end parameter → UTC; a bare date as an end bound is exclusive (its midnight)."""
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("T", " "))
    if len(text) > 10:
        return value.replace(tzinfo=tz).astimezone(UTC) + (timedelta(seconds=1) if end else timedelta(0))
    return datetime.combine(value.date(), datetime.min.time(), tz).astimezone(UTC)


def _num(value: float) -> str:
    return "NaN" if math.isnan(value) else str(float(value))


def _row(bar: Bar, tz: ZoneInfo) -> dict[str, str]:
    local = bar.ts.astimezone(tz)
    stamp = local.date().isoformat() if bar.interval is Interval.D1 else local.strftime("%Y-%m-%d %H:%M:%S")
    return {
        "datetime": stamp,
        "open": _num(bar.open),
        "high": _num(bar.high),
        "low": _num(bar.low),
        "close": _num(bar.close),
        "volume": str(int(bar.volume)) if not math.isnan(bar.volume) else "NaN",
    }


def routes(ctx: SimContext) -> list[Route]:
    async def time_series(request: Request) -> Response:
        now = await ctx.admit()
        q = request.query_params
        symbol, name = q.get("symbol", ""), q.get("interval", "")
        interval = _INTERVALS.get(name)
        if not symbol or interval is None:
            return _error(400, "**symbol** or **interval** parameter is missing or not supported.")
        try:
            tz = NEW_YORK if q.get("timezone", "Exchange") == "Exchange" else ZoneInfo(q["timezone"])
            start = _bound(q.get("start_date"), tz, end=False) or datetime(1990, 1, 1, tzinfo=UTC)
            end = min(_bound(q.get("end_date"), tz, end=True) or now, now)
            size = min(int(q.get("outputsize", "30")), _MAX)
        except (ValueError, ZoneInfoNotFoundError):
            return _error(400, "Invalid **start_date**, **end_date**, **timezone** or **outputsize**.")
        bars = ctx.bars(symbol, interval, start, end, now)[-size:]
        if not bars:
            return _error(
                400, "No data is available on the specified dates. Try setting different start/end dates."
            )
        if q.get("order", "desc").lower() != "asc":
            bars.reverse()
        meta = {
            "symbol": symbol,
            "interval": name,
            "currency": "USD",
            "exchange_timezone": "America/New_York",
            "exchange": "NASDAQ",
            "mic_code": "XNAS",
            "type": "Common Stock",
        }
        return JSONResponse({"meta": meta, "values": [_row(b, tz) for b in bars], "status": "ok"})

    async def quote(request: Request) -> Response:
        now = await ctx.admit()
        symbols = [s for s in request.query_params.get("symbol", "").split(",") if s]
        if not symbols:
            return _error(400, "**symbol** parameter is missing or invalid.")
        quotes = {s: _quote(ctx, s, now) for s in symbols}
        return JSONResponse(quotes[symbols[0]] if len(symbols) == 1 else quotes)

    return [
        Route("/time_series", time_series, methods=["GET"]),
        Route("/quote", quote, methods=["GET"]),
    ]


def _quote(ctx: SimContext, symbol: str, now: datetime) -> dict[str, object]:
    q = ctx.quote(symbol, now)
    day: date = now.astimezone(NEW_YORK).date()
    return {
        "symbol": symbol,
        "exchange": "NASDAQ",
        "mic_code": "XNAS",
        "currency": "USD",
        "datetime": day.isoformat(),
        "timestamp": int(q.ts.timestamp()),
        "last_quote_at": int(q.ts.timestamp()),
        "close": _num(q.last),
        "is_market_open": ctx.market.calendar.is_open(now),
    }


def error_response(err: ProviderError) -> Response:
    """Out of credits is an HTTP 200 error object at Twelve Data."""
    if isinstance(err, RateLimited):
        return _error(
            429,
            "You have run out of API credits for the current minute. Wait for the next minute or "
            "consider switching to a higher tier plan at https://twelvedata.com/pricing",
        )
    return default_error_response(err)
