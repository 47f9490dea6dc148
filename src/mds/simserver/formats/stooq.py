"""`mds sim-server --format stooq`: the sim market as Stooq's daily CSV download.

Answers ``/q/d/l/?s=aapl.us&i=d&d1=YYYYMMDD&d2=YYYYMMDD`` with
``Date,Open,High,Low,Close,Volume`` rows (exchange-local dates), ``No data`` when
empty, and, like Stooq, throttles with a 200 "Exceeded the daily hits limit" body.
"""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mds.domain.models import Interval
from mds.errors import ProviderError, RateLimited
from mds.providers import timeconv
from mds.simserver.context import SimContext


def _cell(value: float) -> str:
    return "" if math.isnan(value) else repr(value)


def _symbol(stooq: str) -> str:
    return stooq.lower().removesuffix(".us").replace("-", ".").upper()


def routes(ctx: SimContext) -> list[Route]:
    async def download(request: Request) -> Response:
        now = await ctx.admit()
        q = request.query_params
        if q.get("i", "d") != "d":
            return PlainTextResponse("No data")
        try:
            first = datetime.strptime(q["d1"], "%Y%m%d").date()
            last = datetime.strptime(q["d2"], "%Y%m%d").date()
        except (KeyError, ValueError):
            return PlainTextResponse("No data")
        start = datetime.combine(first, time(), timeconv.NEW_YORK)
        end = datetime.combine(last + timedelta(days=1), time(), timeconv.NEW_YORK)
        bars = ctx.bars(_symbol(q.get("s", "")), Interval.D1, start, end, now)
        if not bars:
            return PlainTextResponse("No data")
        lines = ["Date,Open,High,Low,Close,Volume"]
        for b in bars:
            day = timeconv.local_date(b.ts).isoformat()
            cells = ",".join(_cell(x) for x in (b.open, b.high, b.low, b.close))
            lines.append(f"{day},{cells},{int(b.volume)}")
        return Response("\r\n".join(lines) + "\r\n", media_type="text/csv")

    return [Route("/q/d/l/", download, methods=["GET"])]


def error_response(err: ProviderError) -> Response:
    """Stooq answers its throttle with a 200 text body; other faults keep their status."""
    if isinstance(err, RateLimited):
        return PlainTextResponse("Exceeded the daily hits limit")
    status = int(err.code) if err.code.isdigit() else 500
    return PlainTextResponse(err.message or err.kind, status_code=status)
