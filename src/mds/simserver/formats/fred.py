"""`mds sim-server --format fred`: the sim macro series in FRED's wire format.

Answers the paths ``FredProvider`` sends, from :mod:`mds.providers.sim.macro` with
"today" the clock's date (UTC):

* ``/fred/series/observations``: observations dated ``observation_start..observation_end``
  whose vintages overlap ``realtime_start..realtime_end`` (both default to today, as on
  FRED), each row's realtime period clipped to the one asked, the way FRED clips it;
  values as strings, ``"."`` for a missing one, ``9999-12-31`` for "still current"; paged
  by ``offset``/``limit`` (at most 100,000); refused with FRED's 400 when the realtime
  period holds more than 2,000 vintage dates.
* ``/fred/series/vintagedates``: the series' vintage dates in the realtime period
  (default: all of them), paged by ``offset``/``limit`` (at most 10,000).

Errors use FRED's body ``{"error_code", "error_message"}``: a missing ``api_key`` (any
non-empty key is accepted), an unknown series, a bad parameter, and the fault injector's
429 and 5xx.
"""

from __future__ import annotations

from datetime import date

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mds.domain.macro import MacroObservation
from mds.errors import ProviderError, RateLimited
from mds.providers.sim.macro import known_series, sim_macro_observations, sim_vintage_dates
from mds.simserver.context import SimContext

EARLIEST, LATEST = date(1776, 7, 4), date(9999, 12, 31)
MAX_VINTAGES = 2000


class FredRefusal(Exception):
    """A request FRED answers with HTTP 400 and ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _json(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error_code": status, "error_message": message}, status)


def error_response(err: ProviderError) -> Response:
    """FRED's error body for the injected faults; FRED documents no Retry-After header."""
    if isinstance(err, RateLimited):
        return _error(429, "Too Many Requests.  Exceeded Rate Limit")
    status = int(err.code) if err.code.isdigit() else 500
    return _error(status, "Internal Server Error")


def _date(q: QueryParams, name: str, default: date) -> date:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FredRefusal(f"Bad Request.  Variable {name} is not a valid date.") from None


def _int(q: QueryParams, name: str, default: int, lo: int, hi: int) -> int:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise FredRefusal(f"Bad Request.  Variable {name} is not between {lo} and {hi}.")
    return value


def _series(q: QueryParams) -> str:
    if not q.get("api_key"):
        raise FredRefusal("Bad Request.  Variable api_key has not been set.")
    series = q.get("series_id", "")
    if not series:
        raise FredRefusal("Bad Request.  Variable series_id has not been set.")
    if not known_series(series):
        raise FredRefusal("Bad Request.  The series does not exist.")
    return series


def _realtime(q: QueryParams, default: tuple[date, date]) -> tuple[date, date]:
    start = _date(q, "realtime_start", default[0])
    end = _date(q, "realtime_end", default[1])
    if start > end:
        raise FredRefusal(
            "Bad Request.  The real-time start date of the request must be less than or equal"
            " to the real-time end date."
        )
    return start, end


def _clip(rows: list[MacroObservation], start: date, end: date) -> list[tuple[MacroObservation, date, date]]:
    """Rows whose realtime period overlaps ``start..end``, with the period clipped to it."""
    out = []
    for r in rows:
        r_end = r.realtime_end or LATEST
        if r.realtime_start <= end and r_end >= start:
            out.append((r, max(r.realtime_start, start), min(r_end, end)))
    return out


def routes(ctx: SimContext) -> list[Route]:
    seed = ctx.market.seed

    async def observations(request: Request) -> Response:
        now = await ctx.admit()
        today = now.date()
        q = request.query_params
        try:
            series = _series(q)
            obs_start = _date(q, "observation_start", EARLIEST)
            obs_end = _date(q, "observation_end", LATEST)
            rt_start, rt_end = _realtime(q, (today, today))
            limit = _int(q, "limit", 100_000, 1, 100_000)
            offset = _int(q, "offset", 0, 0, 2**31)
            vintages = [
                d for d in sim_vintage_dates(series, today=today, seed=seed) if rt_start <= d <= rt_end
            ]
            if len(vintages) > MAX_VINTAGES:
                raise FredRefusal(
                    f"Bad Request.  There are {len(vintages)} vintage dates in the specified real-time"
                    f" period: {rt_start.isoformat()} to {rt_end.isoformat()}.  This exceeds the maximum"
                    f" number of vintage dates allowed ({MAX_VINTAGES})."
                )
        except FredRefusal as exc:
            return _error(400, exc.message)
        rows = sim_macro_observations(
            series,
            start=obs_start,
            end=min(obs_end, today),
            today=min(today, rt_end),
            seed=seed,
            vintages=True,
            provider=ctx.provider,
        )
        clipped = _clip(rows, rt_start, rt_end)
        page = clipped[offset : offset + limit]
        return _json(
            {
                "realtime_start": rt_start.isoformat(),
                "realtime_end": rt_end.isoformat(),
                "observation_start": obs_start.isoformat(),
                "observation_end": obs_end.isoformat(),
                "units": "lin",
                "output_type": 1,
                "file_type": "json",
                "order_by": "observation_date",
                "sort_order": "asc",
                "count": len(clipped),
                "offset": offset,
                "limit": limit,
                "observations": [
                    {
                        "realtime_start": start.isoformat(),
                        "realtime_end": end.isoformat(),
                        "date": r.date.isoformat(),
                        "value": "." if r.value is None else repr(r.value),
                    }
                    for r, start, end in page
                ],
            }
        )

    async def vintage_dates(request: Request) -> Response:
        now = await ctx.admit()
        q = request.query_params
        try:
            series = _series(q)
            rt_start, rt_end = _realtime(q, (EARLIEST, LATEST))
            limit = _int(q, "limit", 10_000, 1, 10_000)
            offset = _int(q, "offset", 0, 0, 2**31)
        except FredRefusal as exc:
            return _error(400, exc.message)
        dates = [d for d in sim_vintage_dates(series, today=now.date(), seed=seed) if rt_start <= d <= rt_end]
        return _json(
            {
                "realtime_start": rt_start.isoformat(),
                "realtime_end": rt_end.isoformat(),
                "order_by": "vintage_date",
                "sort_order": "asc",
                "count": len(dates),
                "offset": offset,
                "limit": limit,
                "vintage_dates": [d.isoformat() for d in dates[offset : offset + limit]],
            }
        )

    return [
        Route("/fred/series/observations", observations, methods=["GET"]),
        Route("/fred/series/vintagedates", vintage_dates, methods=["GET"]),
    ]
