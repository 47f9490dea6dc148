"""The tracked page: ``tracked:all`` and ``tracked:new`` (from the tracked service, as
``GET /api/v1/market-data/tracked`` lists them), filtered and paged on the server, with
optional columns read for the page's rows only, and quick actions through the services
and catalog tasks the API uses.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from mds.admin.pages.listing import matching, page_within
from mds.admin.pages.tracked_view import COLUMNS, chosen, fill_rows
from mds.admin.paging import PagingDep, url_without_page
from mds.admin.routing import page_router
from mds.admin.session import AdminSession
from mds.admin.templating import render
from mds.api.routes.analysis import get_analysis
from mds.domain.reference import TICKER_PATTERN
from mds.errors import InvalidRequest
from mds.runtime import Runtime
from mds.services.tracked import clean_symbols, queue_daily_backfill

router = page_router()

Tab = Literal["all", "new"]
#: After an action: a code naming what happened (``n``: a count, ``symbol``: the row's).
NOTICES = {
    "updated": "Tracked set rebuilt: {n} symbols (tracked:all and tracked:new published).",
    "backfill_new": "Queued the backfill_new_tracked task (run {n}); see Jobs.",
    "backfill": "Daily backfill of {symbol}: {n} job(s) queued for its missing sessions.",
    "recomputed": "Recomputed the technical snapshot of {symbol}.",
    "profiles": "Queued the refresh_company_profiles task (run {n}): market caps; see Jobs.",
}


_NOTICE_PARAMS = frozenset({"done", "n", "symbol"})


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _back(target: str, **notice: str | int) -> str:
    """Where an action returns to: the tracked page as it was (never another site), with
    ``notice`` in place of the previous action's."""
    url = urlsplit(target)
    path = url.path if url.path == "/admin/tracked" and not url.netloc else "/admin/tracked"
    kept = [(k, v) for k, v in parse_qsl(url.query) if k not in _NOTICE_PARAMS]
    query = urlencode([*kept, *notice.items()])
    return f"{path}?{query}" if query else path


@router.get("/tracked")
async def tracked_page(
    request: Request,
    session: AdminSession,
    paging: PagingDep,
    tab: Annotated[Tab, Query()] = "all",
    q: Annotated[str, Query(max_length=40)] = "",
    cols: Annotated[list[str] | None, Query(max_length=len(COLUMNS))] = None,
    done: Annotated[str, Query(max_length=40)] = "",
    n: Annotated[int, Query(ge=0)] = 0,
    symbol: Annotated[str, Query(max_length=24, pattern=f"^$|{TICKER_PATTERN}")] = "",
) -> Response:
    runtime = _runtime(request)
    # "new" counts stored sessions per tracked symbol: only the tab that shows it pays for it.
    tracked = await runtime.tracked.tracked_set(with_new=tab == "new")
    members = sorted(tracked.new if tab == "new" else tracked.all)
    page = page_within(matching(members, q), paging)
    columns = chosen(cols or [])
    rows = await fill_rows(
        page.items,
        columns,
        new=tracked.new,
        market=runtime.market,
        analysis=(await get_analysis(request)).analysis,
        reference=runtime.store,
        profiles=runtime.store,
        now=runtime.clock.now(),
    )
    notice = NOTICES[done].format(n=n, symbol=symbol) if done in NOTICES else ""
    return render(
        request,
        "tracked.html",
        active="tracked",
        tab=tab,
        q=q,
        total_all=len(tracked.all),
        page=page,
        rows=rows,
        columns=columns,
        headers=[COLUMNS[c] for c in columns],
        all_columns=COLUMNS,
        page_url=_back(url_without_page(request)),
        back=_back(str(request.url)),
        indices=tracked.index_counts,
        notice=notice,
        collector=runtime.collector is not None,
    )


@router.post("/tracked/update")
async def update_tracked(
    request: Request, session: AdminSession, back: Annotated[str, Form(max_length=2048)] = ""
) -> Response:
    """Rebuild the tracked set and publish it (the ``update_tracked_symbol_cache`` task, run
    here and recorded as a job run)."""
    runtime = _runtime(request)
    async with runtime.runs.recorded("update_tracked_symbol_cache", created_by=session.name) as counters:
        tracked = await runtime.tracked.refresh()
        counters.update(symbols=len(tracked.all), new=len(tracked.new))
    return RedirectResponse(_back(back, done="updated", n=len(tracked.all)), status_code=303)


@router.post("/tracked/backfill")
async def backfill_symbol(
    request: Request,
    session: AdminSession,
    symbol: Annotated[str, Form(max_length=24)],
    back: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    """Queue what one symbol misses of its last BACKFILL_TRACKED_SESSIONS daily bars."""
    runtime = _runtime(request)
    [sym] = clean_symbols([symbol], field="symbol")
    if runtime.collector is None:
        raise InvalidRequest("symbol", "this process runs no collector; send backfills to a worker")
    await runtime.market.require_symbol(sym)
    result = await queue_daily_backfill(
        [sym],
        store=runtime.store,
        calendar=runtime.calendar,
        clock=runtime.clock,
        backfiller=runtime.collector.backfiller,
        sessions=runtime.settings.BACKFILL_TRACKED_SESSIONS,
    )
    target = _back(back, done="backfill", n=len(result.created), symbol=sym)
    return RedirectResponse(target, status_code=303)


@router.post("/tracked/recompute")
async def recompute_symbol(
    request: Request,
    session: AdminSession,
    symbol: Annotated[str, Form(max_length=24)],
    back: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    """Recompute and cache one symbol's technical snapshot (its ATR and stage cells)."""
    [sym] = clean_symbols([symbol], field="symbol")
    await (await get_analysis(request)).refresh([sym])
    return RedirectResponse(_back(back, done="recomputed", symbol=sym), status_code=303)


# Last: the other /tracked/<name> posts must match first.
#: Page buttons that queue a catalog task for the workers: path -> (task, notice code).
QUEUED_TASKS = {
    "backfill-new": ("backfill_new_tracked", "backfill_new"),
    "refresh-profiles": ("refresh_company_profiles", "profiles"),  # market caps
}


@router.post("/tracked/{action}")
async def queue_task(
    request: Request,
    session: AdminSession,
    action: Literal["backfill-new", "refresh-profiles"],
    back: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    """Queue the catalog task behind a page button (workers run it); Jobs lists the run."""
    task, done = QUEUED_TASKS[action]
    run = await _runtime(request).schedules.run_task(task, by=session.name)
    return RedirectResponse(_back(back, done=done, n=run.id or 0), status_code=303)
