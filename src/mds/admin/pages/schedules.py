"""Schedules: list, create and edit (with a cron preview and every metadata field, hooks and
alert events included), pause/resume, run now, delete, export and import.

Every change goes through :class:`mds.services.schedules.ScheduleService`, as the
``/api/v1/admin/schedules`` routes do, stamped with the logged-in key's name.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import File, Form, Query, Request, Response, UploadFile
from fastapi.responses import RedirectResponse

# Registers the `schedule_name` path convertor these routes use (as the API's do).
import mds.api.routes.schedules  # noqa: F401
from mds.admin.paging import PagingDep, page_of, url_without_page
from mds.admin.routing import error_message, page_router
from mds.admin.schedule_form import ALERT_EVENTS, fields_of, spec_of, values_of
from mds.admin.session import AdminSession
from mds.admin.templating import render
from mds.domain.schedules import DISCORD_ALIASES, Schedule
from mds.errors import InvalidRequest, MdsError
from mds.services.schedules import ScheduleService, preview_times

router = page_router()
Name = Annotated[str, "a schedule name"]
#: What the list's banner says after an action (?done=…&name=…).
DONE = {
    "created": "Created {name}.",
    "updated": "Saved {name}.",
    "paused": "Paused {name}.",
    "resumed": "Resumed {name}.",
    "deleted": "Deleted {name}.",
    "ran": "Queued a run of {name}: job run #{run}.",
    "imported": "Imported: {created} created, {updated} updated.",
}
IMPORT_MAX_BYTES = 2_000_000


def _service(request: Request) -> ScheduleService:
    service: ScheduleService = request.app.state.runtime.schedules
    return service


def _back(done: str, **params: Any) -> Response:
    return RedirectResponse("/admin/schedules?" + urlencode({"done": done, **params}), status_code=303)


@router.get("/schedules")
async def schedules(
    request: Request,
    session: AdminSession,
    paging: PagingDep,
    q: Annotated[str, Query(max_length=64)] = "",
    state: Annotated[str, Query(pattern="^(|active|paused)$")] = "",
    done: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    service = _service(request)
    rows = [
        s
        for s in await service.all()
        if (not q or q.lower() in s.name or q.lower() in s.task)
        and (not state or (state == "paused") != s.enabled)
    ]
    page = page_of(rows, paging)
    nxt = {s.name: service.next_fires(s, 1) for s in page.items if s.enabled}
    params = request.query_params
    banner = ""
    if done in DONE:
        banner = DONE[done].format(
            name=params.get("name", ""),
            run=params.get("run", ""),
            created=params.get("created", "0"),
            updated=params.get("updated", "0"),
        )
    return render(
        request,
        "schedules.html",
        active="schedules",
        page=page,
        url=url_without_page(request),
        next_fire={k: v[0] if v else None for k, v in nxt.items()},
        q=q,
        state=state,
        banner=banner,
    )


def _form(
    request: Request, values: dict[str, Any], *, editing: str | None, error: str = "", status: int = 200
) -> Response:
    service = _service(request)
    return render(
        request,
        "schedule_form.html",
        status_code=status,
        active="schedules",
        f=values,
        editing=editing,
        error=error,
        tasks=service.catalog.names(),
        queues=list(service.settings.TASK_QUEUES),
        events=ALERT_EVENTS,
        aliases=DISCORD_ALIASES,
    )


@router.get("/schedules/new")
async def new_schedule(
    request: Request, session: AdminSession, task: Annotated[str, Query(max_length=64)] = ""
) -> Response:
    service = _service(request)
    values = fields_of(None)
    if task in service.catalog:
        # Start from the catalog's default for the task (timing and metadata guard rails).
        default = service.catalog[task].default
        values = fields_of(default) | {"name": ""}
    return _form(request, values, editing=None)


@router.post("/schedules")
async def create_schedule(request: Request, session: AdminSession) -> Response:
    values = values_of(await request.form())
    try:
        spec = spec_of(values)
        await _service(request).create(spec, by=session.name)
    except MdsError as exc:
        return _form(request, values, editing=None, error=error_message(exc), status=_status(exc))
    return _back("created", name=spec.name)


def _status(exc: MdsError) -> int:
    from mds.admin.routing import error_status

    return error_status(exc)


@router.post("/schedules/preview")
async def preview(request: Request, session: AdminSession) -> Response:
    """The next five fire times of the form's timing (a fragment the form swaps in)."""
    form = await request.form()
    values = values_of(form)
    market = values.get("timing") == "market"
    try:
        timing = _Timing(
            cron=None if market else (str(values.get("cron", "")).strip() or None),
            timezone=str(values.get("timezone", "") or "UTC").strip(),
            calendar=(str(values.get("calendar", "")).strip() or None) if market else None,
            when=(str(values.get("when", "")).strip() or None) if market else None,
        )
        times = preview_times(timing, start=request.app.state.runtime.clock.now(), count=5)
    except (MdsError, ValueError) as exc:
        return render(
            request,
            "_preview.html",
            times=[],
            error=error_message(exc) if isinstance(exc, MdsError) else str(exc),
        )
    return render(request, "_preview.html", times=times, error="")


class _Timing:
    """The timing fields :func:`preview_times` reads."""

    def __init__(self, *, cron: str | None, timezone: str, calendar: str | None, when: str | None) -> None:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(timezone)
        except Exception as exc:
            raise InvalidRequest("timezone", f"unknown time zone {timezone!r}") from exc
        self.cron, self.timezone, self.calendar, self.when = cron, timezone, calendar, when


@router.get("/schedules/export")
async def export(request: Request, session: AdminSession) -> Response:
    """Every schedule as the JSON file ``POST /import`` (and this page's import) takes."""
    body = json.dumps(await _service(request).export(), indent=2, sort_keys=True)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="mds-schedules.json"'},
    )


@router.post("/schedules/import")
async def import_(request: Request, session: AdminSession, file: Annotated[UploadFile, File()]) -> Response:
    raw = await file.read(IMPORT_MAX_BYTES + 1)
    if len(raw) > IMPORT_MAX_BYTES:
        raise InvalidRequest("file", f"larger than {IMPORT_MAX_BYTES} bytes")
    try:
        entries = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest("file", f"not a JSON file: {exc}") from exc
    if not isinstance(entries, list):
        raise InvalidRequest("file", "must hold a JSON array of schedules (as Export writes it)")
    result = await _service(request).import_(entries, by=session.name)
    return _back("imported", created=len(result["created"]), updated=len(result["updated"]))


@router.get("/schedules/{name:schedule_name}")
async def edit_schedule(request: Request, session: AdminSession, name: Name) -> Response:
    s = await _service(request).get(name)
    return _form(request, fields_of(s.spec()), editing=name)


@router.post("/schedules/{name:schedule_name}")
async def update_schedule(request: Request, session: AdminSession, name: Name) -> Response:
    values = values_of(await request.form())
    values["name"] = name
    try:
        spec = spec_of(values)
        await _service(request).update(name, spec, by=session.name)
    except MdsError as exc:
        return _form(request, values, editing=name, error=error_message(exc), status=_status(exc))
    return _back("updated", name=name)


@router.post("/schedules/{name:schedule_name}/pause")
async def pause(request: Request, session: AdminSession, name: Name) -> Response:
    await _service(request).pause(name, by=session.name)
    return _back("paused", name=name)


@router.post("/schedules/{name:schedule_name}/resume")
async def resume(request: Request, session: AdminSession, name: Name) -> Response:
    await _service(request).resume(name, by=session.name)
    return _back("resumed", name=name)


@router.post("/schedules/{name:schedule_name}/run-now")
async def run_now(request: Request, session: AdminSession, name: Name) -> Response:
    run = await _service(request).run_now(name, by=session.name)
    return _back("ran", name=name, run=run.id)


@router.get("/schedules/{name:schedule_name}/delete")
async def confirm_delete(request: Request, session: AdminSession, name: Name) -> Response:
    s: Schedule = await _service(request).get(name)
    return render(request, "schedule_delete.html", active="schedules", s=s)


@router.post("/schedules/{name:schedule_name}/delete")
async def delete(
    request: Request, session: AdminSession, name: Name, confirm: Annotated[str, Form()] = ""
) -> Response:
    if confirm != name:
        raise InvalidRequest("confirm", f"type the schedule's name ({name}) to delete it")
    await _service(request).delete(name)
    return _back("deleted", name=name)
