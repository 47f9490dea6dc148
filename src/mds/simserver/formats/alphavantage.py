"""Alpha Vantage wire format for ``mds sim-server --format alphavantage``.

One endpoint, ``GET /query``, dispatched on ``function``: TIME_SERIES_INTRADAY (by
``month``), TIME_SERIES_DAILY (compact = latest 100 sessions, full = 20 years) and
GLOBAL_QUOTE. Keys are US/Eastern wall-clock strings labelling each bar's start, values
are strings, newest first; throttling is an HTTP 200 ``{"Information": …}`` like the
vendor's own. Prices are written in their shortest round-trip form so the adapter reads
back exactly the sim's numbers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mds.domain.models import Bar, Interval
from mds.errors import ProviderError, RateLimited
from mds.providers.timeconv import NEW_YORK
from mds.simserver.app import default_error_response
from mds.simserver.context import SimContext

_INTERVALS = {"1min": Interval.M1, "5min": Interval.M5, "15min": Interval.M15}
_ET = NEW_YORK


def _num(value: float) -> str:
    return str(float(value))


def _row(bar: Bar) -> dict[str, str]:
    return {
        "1. open": _num(bar.open),
        "2. high": _num(bar.high),
        "3. low": _num(bar.low),
        "4. close": _num(bar.close),
        "5. volume": str(int(bar.volume)) if bar.volume == bar.volume else "NaN",
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), _ET).astimezone(UTC)


def _error(message: str) -> JSONResponse:
    return JSONResponse({"Error Message": message})


def routes(ctx: SimContext) -> list[Route]:
    async def query(request: Request) -> Response:
        now = await ctx.admit()
        q = request.query_params
        function, symbol = q.get("function", ""), q.get("symbol", "")
        if not symbol:
            return _error(f"Invalid API call. Please retry or visit the documentation for {function}.")
        if function == "TIME_SERIES_INTRADAY":
            return _intraday(ctx, symbol, q.get("interval", ""), q.get("month"), q.get("outputsize"), now)
        if function == "TIME_SERIES_DAILY":
            return _daily(ctx, symbol, q.get("outputsize", "compact"), now)
        if function == "GLOBAL_QUOTE":
            return _quote(ctx, symbol, now)
        return _error("This API function does not exist.")

    return [Route("/query", query, methods=["GET"])]


def _intraday(
    ctx: SimContext, symbol: str, name: str, month: str | None, size: str | None, now: datetime
) -> Response:
    interval = _INTERVALS.get(name)
    if interval is None:
        return _error("Invalid API call. Please retry or visit the documentation for TIME_SERIES_INTRADAY.")
    if month:
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError:
            return _error("Invalid API call. month must be in YYYY-MM format.")
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        start, end = _midnight(first), _midnight(following)
    else:  # without month the vendor serves the trailing 30 days
        start, end = now - timedelta(days=30), now
    bars = ctx.bars(symbol, interval, start, end, now)
    if size != "full":
        bars = bars[-100:]
    series = {b.ts.astimezone(_ET).strftime("%Y-%m-%d %H:%M:%S"): _row(b) for b in reversed(bars)}
    meta = {
        "1. Information": f"Intraday ({name}) open, high, low, close prices and volume",
        "2. Symbol": symbol,
        "3. Last Refreshed": next(iter(series), ""),
        "4. Interval": name,
        "5. Output Size": "Full size" if size == "full" else "Compact",
        "6. Time Zone": "US/Eastern",
    }
    return JSONResponse({"Meta Data": meta, f"Time Series ({name})": series})


def _daily(ctx: SimContext, symbol: str, size: str, now: datetime) -> Response:
    # "full" is 20+ years at the vendor; 20 years keeps the sim's answer under a second.
    start = now - timedelta(days=366 * 20 if size == "full" else 200)
    bars = ctx.bars(symbol, Interval.D1, start, now, now)
    if size != "full":
        bars = bars[-100:]
    series = {b.ts.astimezone(_ET).date().isoformat(): _row(b) for b in reversed(bars)}
    meta = {
        "1. Information": "Daily Prices (open, high, low, close) and Volumes",
        "2. Symbol": symbol,
        "3. Last Refreshed": next(iter(series), ""),
        "4. Output Size": "Full size" if size == "full" else "Compact",
        "5. Time Zone": "US/Eastern",
    }
    return JSONResponse({"Meta Data": meta, "Time Series (Daily)": series})


def _quote(ctx: SimContext, symbol: str, now: datetime) -> Response:
    quote = ctx.quote(symbol, now)
    day = ctx.market.calendar.session_for(now)
    if day is None:  # outside hours the quote is the previous session's close
        prev = ctx.market.calendar.session_for(ctx.market.calendar.previous_close(now) - timedelta(seconds=1))
        day = prev
    trading_day = day.date.isoformat() if day else now.astimezone(_ET).date().isoformat()
    return JSONResponse(
        {
            "Global Quote": {
                "01. symbol": symbol,
                "05. price": _num(quote.last),
                "07. latest trading day": trading_day,
            }
        }
    )


def error_response(err: ProviderError) -> Response:
    """Alpha Vantage throttles with HTTP 200 and a polite sentence, not a 429."""
    if isinstance(err, RateLimited):
        return JSONResponse(
            {
                "Information": "Thank you for using Alpha Vantage! Our standard API rate limit is "
                "25 requests per day. Please subscribe to any of the premium plans at "
                "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."
            }
        )
    return default_error_response(err)
