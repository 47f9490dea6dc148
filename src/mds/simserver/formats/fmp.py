"""Financial Modeling Prep ``/stable`` wire format for ``mds sim-server --format fmp``.

Daily bars from ``historical-price-eod/non-split-adjusted`` (fields ``adjOpen`` …), intraday
bars from ``historical-chart/{1min|5min|15min|1hour}`` with exchange-local ``date`` strings
labelling each bar's start; both newest first, ``from``/``to`` inclusive local dates.
Quotes from ``/stable/quote``; company profiles from ``/stable/profile`` (the sim's profile:
``marketCap`` in dollars, 0 for ETFs, no share count, as FMP). Index lists from ``/stable/sp500-constituent``,
``nasdaq-constituent`` and ``dowjones-constituent`` (the sim's lists, class shares written
``BRK-B`` as FMP does). The daily cap answers 429 ``{"Error Message": "Limit Reach …"}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mds.domain.models import Interval
from mds.domain.reference import Constituent, IndexName
from mds.errors import ProviderError, RateLimited
from mds.providers.sim.reference import sim_constituents
from mds.providers.timeconv import NEW_YORK
from mds.simserver.app import default_error_response
from mds.simserver.context import SimContext

_INTERVALS = {"1min": Interval.M1, "5min": Interval.M5, "15min": Interval.M15, "1hour": Interval.H1}
_CONSTITUENTS: dict[str, IndexName] = {
    "/stable/sp500-constituent": "SP500",
    "/stable/nasdaq-constituent": "NASDAQ100",
    "/stable/dowjones-constituent": "DOW30",
}


class _Json(JSONResponse):
    """orjson keeps floats exact and writes NaN as null, as a JSON vendor would."""

    def render(self, content: object) -> bytes:
        import orjson

        return orjson.dumps(content)


def _range(request: Request, now: datetime, default_days: int) -> tuple[datetime, datetime] | Response:
    q = request.query_params
    try:
        to = date.fromisoformat(q["to"]) if "to" in q else now.astimezone(NEW_YORK).date()
        first = date.fromisoformat(q["from"]) if "from" in q else to - timedelta(days=default_days)
    except ValueError:
        return _Json({"Error Message": "Invalid date format. Use YYYY-MM-DD."}, status_code=400)
    start = datetime.combine(first, datetime.min.time(), NEW_YORK).astimezone(UTC)
    end = datetime.combine(to + timedelta(days=1), datetime.min.time(), NEW_YORK).astimezone(UTC)
    return start, end


def routes(ctx: SimContext) -> list[Route]:
    async def eod(request: Request) -> Response:
        now = await ctx.admit()
        symbol = request.query_params.get("symbol", "")
        span = _range(request, now, 365 * 5)
        if isinstance(span, Response):
            return span
        bars = ctx.bars(symbol, Interval.D1, *span, now)
        return _Json(
            [
                {
                    "symbol": symbol,
                    "date": b.ts.astimezone(NEW_YORK).date().isoformat(),
                    "adjOpen": b.open,
                    "adjHigh": b.high,
                    "adjLow": b.low,
                    "adjClose": b.close,
                    "volume": b.volume,
                }
                for b in reversed(bars)
            ]
        )

    async def chart(request: Request) -> Response:
        now = await ctx.admit()
        interval = _INTERVALS.get(request.path_params["interval"])
        if interval is None:
            return _Json({"Error Message": "Invalid interval."}, status_code=400)
        span = _range(request, now, 3)
        if isinstance(span, Response):
            return span
        bars = ctx.bars(request.query_params.get("symbol", ""), interval, *span, now)
        return _Json(
            [
                {
                    "date": b.ts.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S"),
                    "open": b.open,
                    "low": b.low,
                    "high": b.high,
                    "close": b.close,
                    "volume": b.volume,
                }
                for b in reversed(bars)
            ]
        )

    async def quote(request: Request) -> Response:
        now = await ctx.admit()
        symbol = request.query_params.get("symbol", "")
        q = ctx.quote(symbol, now)
        return _Json([{"symbol": symbol, "price": q.last, "timestamp": int(q.ts.timestamp())}])

    async def profile(request: Request) -> Response:
        now = await ctx.admit()
        symbol = request.query_params.get("symbol", "")
        price = ctx.quote(symbol, now).last
        p = ctx.profile(symbol, now)
        return _Json(
            [
                {
                    "symbol": p.symbol,
                    "price": price,
                    "marketCap": int(p.market_cap or 0),  # whole dollars, as FMP
                    "companyName": p.name,
                    "currency": p.currency,
                    "exchange": p.exchange,
                    "exchangeFullName": p.exchange,
                    "industry": p.industry,
                    "sector": p.sector,
                    "country": "US",
                    "isEtf": p.market_cap is None,
                    "isActivelyTrading": True,
                    "isAdr": False,
                    "isFund": False,
                }
            ]
        )

    def constituents(index: IndexName) -> Callable[[Request], Awaitable[Response]]:
        async def members(request: Request) -> Response:
            await ctx.admit()
            return _Json([_constituent(c) for c in sim_constituents(index)])

        return members

    return [
        Route("/stable/historical-price-eod/non-split-adjusted", eod, methods=["GET"]),
        Route("/stable/historical-chart/{interval}", chart, methods=["GET"]),
        Route("/stable/quote", quote, methods=["GET"]),
        Route("/stable/profile", profile, methods=["GET"]),
        *(Route(path, constituents(index), methods=["GET"]) for path, index in _CONSTITUENTS.items()),
    ]


def _constituent(c: Constituent) -> dict[str, object]:
    """One row of FMP's list; class shares with a dash (``BRK-B``), unknown facts null."""
    return {
        "symbol": c.symbol.replace(".", "-"),
        "name": c.name,
        "sector": c.sector,
        "subSector": c.sub_industry,
        "headQuarter": None,
        "dateFirstAdded": None,
        "cik": None,
        "founded": None,
    }


def error_response(err: ProviderError) -> Response:
    if isinstance(err, RateLimited):
        return _Json(
            {
                "Error Message": "Limit Reach . Please upgrade your plan or visit our documentation "
                "for more details at https://site.financialmodelingprep.com/"
            },
            status_code=429,
            headers={"Retry-After": str(int(err.retry_after))},
        )
    return default_error_response(err)
