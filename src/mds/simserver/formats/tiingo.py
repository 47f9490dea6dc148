"""`mds sim-server --format tiingo`: the sim market in Tiingo's wire format.

Answers the paths ``TiingoProvider`` sends: EOD prices (session date stamped
``T00:00:00.000Z``, raw and ``adj*`` fields) and IEX intraday prices (bar starts in UTC
ISO-8601, volume only when ``columns`` asks for it). Both take inclusive
exchange-local ``startDate``/``endDate``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mds.domain.models import Interval
from mds.errors import ProviderError, RateLimited
from mds.providers.timeconv import NEW_YORK, local_date
from mds.simserver.context import SimContext

_RESAMPLE = {"1min": Interval.M1, "5min": Interval.M5, "15min": Interval.M15, "1hour": Interval.H1}


def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, headers=headers, media_type="application/json")


def error_response(err: ProviderError) -> Response:
    """Tiingo's error body: ``{"detail": ...}``."""
    status = int(err.code) if err.code.isdigit() else 500
    headers = {"Retry-After": str(int(err.retry_after))} if isinstance(err, RateLimited) else None
    return _json({"detail": err.message or err.kind}, status, headers)


def _range(request: Request) -> tuple[datetime, datetime]:
    """Inclusive local dates → [midnight of the first, midnight after the last) in New York."""
    first = date.fromisoformat(request.query_params["startDate"])
    last = date.fromisoformat(request.query_params.get("endDate", first.isoformat()))
    return (
        datetime.combine(first, time(0), NEW_YORK),
        datetime.combine(last + timedelta(days=1), time(0), NEW_YORK),
    )


def routes(ctx: SimContext) -> list[Route]:
    async def daily(request: Request) -> Response:
        now = await ctx.admit()
        try:
            start, end = _range(request)
        except (KeyError, ValueError):
            return _json({"detail": "Error: startDate must be YYYY-MM-DD"}, 400)
        rows = []
        for b in ctx.bars(request.path_params["ticker"], Interval.D1, start, end, now):
            rows.append(
                {
                    "date": f"{local_date(b.ts).isoformat()}T00:00:00.000Z",
                    "close": b.close,
                    "high": b.high,
                    "low": b.low,
                    "open": b.open,
                    "volume": b.volume,
                    # No corporate actions in the sim market: adjusted equals raw.
                    "adjClose": b.close,
                    "adjHigh": b.high,
                    "adjLow": b.low,
                    "adjOpen": b.open,
                    "adjVolume": b.volume,
                    "divCash": 0.0,
                    "splitFactor": 1.0,
                }
            )
        return _json(rows)

    async def iex(request: Request) -> Response:
        now = await ctx.admit()
        interval = _RESAMPLE.get(request.query_params.get("resampleFreq", "5min"))
        if interval is None:
            return _json({"detail": "Error: resampleFreq is not supported"}, 400)
        try:
            start, end = _range(request)
        except (KeyError, ValueError):
            return _json({"detail": "Error: startDate must be YYYY-MM-DD"}, 400)
        with_volume = "volume" in request.query_params.get("columns", "")
        rows = []
        for b in ctx.bars(request.path_params["ticker"], interval, start, end, now):
            row: dict[str, object] = {
                "date": b.ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "close": b.close,
                "high": b.high,
                "low": b.low,
                "open": b.open,
            }
            if with_volume:
                row["volume"] = b.volume
            rows.append(row)
        return _json(rows)

    return [
        Route("/tiingo/daily/{ticker}/prices", daily, methods=["GET"]),
        Route("/iex/{ticker}/prices", iex, methods=["GET"]),
    ]
