"""The symbol page: a candlestick chart of one symbol's stored bars (``static/symbol.js``
draws it with the vendored lightweight-charts), gaps and confirmed-empty bar times marked,
the provider of each bar on hover, an adjust toggle and an as_of picker.

``/admin/symbol/bars.json`` feeds the chart (session-protected like every admin route); it
answers JSON errors itself, since a script, not a person, reads them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from mds.admin.pages.chart_data import PERIODS, chart_data
from mds.admin.routing import error_message, error_status, page_router
from mds.admin.session import AdminSession
from mds.admin.templating import render
from mds.api.params import parse_ts
from mds.api.problems import problem
from mds.corporate.adjust import Adjust
from mds.domain.models import Interval
from mds.errors import InvalidRequest, MdsError
from mds.runtime import Runtime

router = page_router()

#: The chart's intervals, as the page offers them.
INTERVALS = tuple(i.value for i in PERIODS)
ADJUSTS = tuple(a.value for a in Adjust)
#: At most this many suggestions under the symbol picker.
SUGGESTIONS = 20


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidRequest(field, f"{value!r} is not one of {', '.join(allowed)}")
    return value


@router.get("/symbol")
async def symbol_page(
    request: Request,
    session: AdminSession,
    symbol: Annotated[str, Query(max_length=24)] = "",
    interval: Annotated[str, Query(max_length=4)] = "1d",
    adjust: Annotated[str, Query(max_length=8)] = "raw",
    as_of: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    runtime = _runtime(request)
    wanted = symbol.strip().upper()
    known = bool(wanted) and await runtime.market.has_symbol(wanted)
    return render(
        request,
        "symbol.html",
        active="symbol",
        symbol=wanted,
        known=known,
        interval=interval if interval in INTERVALS else "1d",
        adjust=adjust if adjust in ADJUSTS else "raw",
        # The picker is a datetime-local input: UTC without the zone, to the minute.
        as_of=as_of.strip().removesuffix("Z")[:16],
        intervals=INTERVALS,
        adjusts=ADJUSTS,
        periods={i.value: p for i, p in PERIODS.items()},
    )


@router.get("/symbol/options")
async def symbol_options(
    request: Request, session: AdminSession, symbol: Annotated[str, Query(max_length=24)] = ""
) -> HTMLResponse:
    """``<option>``s of active symbols starting with ``symbol`` (the picker's datalist; htmx
    sends the input's own value)."""
    prefix = symbol.strip().upper()
    found: list[str] = []
    if prefix:
        for entry in await _runtime(request).store.universe():
            if entry.symbol.startswith(prefix):
                found.append(entry.symbol)
    found.sort()
    return render(request, "_symbol_options.html", symbols=found[:SUGGESTIONS])


@router.get("/symbol/bars.json")
async def symbol_bars(
    request: Request,
    session: AdminSession,
    symbol: Annotated[str, Query(max_length=24)] = "",
    interval: Annotated[str, Query(max_length=4)] = "1d",
    adjust: Annotated[str, Query(max_length=8)] = "raw",
    as_of: Annotated[str, Query(max_length=40)] = "",
    period: Annotated[str, Query(max_length=8)] = "",
) -> Response:
    """The chart's data (see :func:`mds.admin.pages.chart_data.chart_data`), or a
    problem+json naming what is wrong (and the field, when one is at fault)."""
    runtime = _runtime(request)
    try:
        if not symbol.strip():
            raise InvalidRequest("symbol", "pick a symbol")
        body: dict[str, Any] = await chart_data(
            runtime.market,
            runtime.store,
            runtime.calendar,
            runtime.clock,
            symbol=symbol.strip().upper(),
            interval=Interval(_choice("interval", interval, INTERVALS)),
            adjust=Adjust(_choice("adjust", adjust, ADJUSTS)),
            as_of=parse_ts("as_of", as_of.strip() or None),
            period=period.strip() or None,
        )
    except MdsError as exc:
        status = error_status(exc)
        field = exc.field if isinstance(exc, InvalidRequest) else None
        return problem(status, HTTPStatus(status).phrase, error_message(exc), field=field)
    return JSONResponse(body)
