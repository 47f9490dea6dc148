"""Schedules, job runs and the task catalog (seed 004's paths), all behind the ``admin`` role.

Thin over :class:`mds.services.schedules.ScheduleService` (``runtime.schedules``): the
service validates, stamps the audit fields with the API key's name, and queues runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import Convertor, register_url_convertor

from mds.api.deps import CallerDep, RuntimeDep
from mds.api.params import INT64_MAX, TIME_PATTERN, parse_ts
from mds.api.problems import problem_responses
from mds.domain.schedules import WHEN_PATTERN, JobRun, RunStatus, Schedule, ScheduleEntry, ScheduleSpec
from mds.errors import InvalidRequest
from mds.serialize import iso
from mds.services.schedules import PREVIEW_MAX, ScheduleService, preview_times


class _ScheduleName(Convertor[str]):
    """A schedule name in a path, never one of the fixed paths beside it (so `DELETE
    …/export` is a 405, not the deletion of a schedule named export)."""

    regex = r"(?!(?:export|import|preview)(?:/|$))[a-z0-9][a-z0-9_.\-]{0,63}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("schedule_name", _ScheduleName())

schedules_router = APIRouter(
    prefix="/api/v1/admin/schedules", tags=["schedules"], responses=problem_responses(404, 409, 422, 500)
)
tasks_router = APIRouter(
    prefix="/api/v1/market-data/admin", tags=["schedules"], responses=problem_responses(404, 422, 500)
)


async def get_schedules(request: Request) -> ScheduleService:
    service: ScheduleService | None = getattr(request.app.state.runtime, "schedules", None)
    if service is None:
        raise RuntimeError("runtime.schedules is not set: the schedule service is not wired")
    return service


SchedulesDep = Annotated[ScheduleService, Depends(get_schedules)]


class ScheduleOut(ScheduleSpec):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(description="False while paused")
    paused: bool = Field(description="Paused: args, kwargs and metadata are kept for resume")
    last_due_at: str | None = Field(description="Due time of the newest fire (UTC)")
    next_fire: str | None = Field(
        description="The next fire time, in the schedule's zone (null while paused)"
    )


class SchedulesOut(BaseModel):
    schedules: list[ScheduleOut] = Field(description="Every schedule, by name")


class ResumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cron: str | None = Field(default=None, description="A new cron for the resumed schedule (optional)")


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cron: str | None = Field(default=None, description="Five-field cron, read in `timezone`")
    timezone: str = Field(default="UTC", description="IANA time zone")
    calendar: str | None = Field(default=None, description="Exchange calendar for `when` (XNYS)")
    when: str | None = Field(
        default=None, pattern=WHEN_PATTERN, description="after_close+30m, before_open-60m, …"
    )
    start: str | None = Field(
        default=None,
        pattern=TIME_PATTERN,
        description="Fire times after this instant, ISO 8601 with a zone (default now)",
    )
    count: int = Field(default=5, ge=1, le=PREVIEW_MAX, description="How many fire times")


class PreviewOut(BaseModel):
    next: list[str] = Field(description="The next fire times, ISO 8601 with the zone's offset")


class JobRunOut(BaseModel):
    id: int = Field(description="The run's id (job_runs)")
    task: str = Field(description="The catalog task")
    schedule: str | None = Field(description="The schedule that fired it (null for a task run or admin POST)")
    trigger: str = Field(description="schedule, run_now, task or api")
    logical_date: str = Field(description="The date the run is for (the session date of nightly tasks)")
    status: RunStatus = Field(description="queued, running, succeeded, failed, timed_out or skipped")
    queue: str = Field(description="The task queue it travels on")
    priority: int = Field(description="0 most urgent … 9")
    due_at: str | None = Field(description="The due time a scheduled fire was for (UTC)")
    queued_at: str = Field(description="When it was queued (UTC)")
    started_at: str | None = Field(description="When its last try started (UTC)")
    finished_at: str | None = Field(description="When it finished (UTC)")
    duration_s: float | None = Field(description="Clock seconds from start to finish")
    attempt: int = Field(description="Retries so far")
    counters: dict[str, Any] = Field(description="What the task did: fetched, inserted, bars, symbols, …")
    error: str | None = Field(description="Why it failed or timed out")
    note: str | None = Field(description="Why it was skipped, deferred or is waiting")
    params: dict[str, Any] = Field(description="args and kwargs")
    metadata: dict[str, Any] = Field(description="The schedule's metadata as the run was queued")
    created_by: str | None = Field(description="The API key that asked for it, when one did")


class JobRunDetailOut(JobRunOut):
    logs: list[str] = Field(
        description="The run's last log lines (time, level, logger: message), oldest first"
    )


class JobRunsOut(BaseModel):
    jobs: list[JobRunOut] = Field(description="Job runs, newest first")


class TaskOut(BaseModel):
    name: str = Field(description="The task's name (seed 004's)")
    description: str = Field(description="What it does")
    params: dict[str, Any] = Field(description="JSON schema of the task's kwargs")
    default_schedule: dict[str, Any] = Field(description="What `mds schedules seed` writes for it")
    seeded_paused: bool = Field(description="Seeded paused: there to resume or run now")


class TasksOut(BaseModel):
    tasks: list[TaskOut] = Field(description="The catalog, by name")


class TaskRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str = Field(description="A catalog task (GET /admin/tasks)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="The task's parameters")


class DeletedOut(BaseModel):
    deleted: str = Field(description="The schedule removed")


class ImportOut(BaseModel):
    created: list[str] = Field(description="Schedules the file added")
    updated: list[str] = Field(description="Schedules the file replaced")


def _by(caller: str | None) -> str:
    return caller or "unauthenticated"


def schedule_out(service: ScheduleService, s: Schedule) -> dict[str, Any]:
    nxt = service.next_fires(s, 1) if s.enabled else []
    return {
        **s.spec().model_dump(mode="json"),
        "enabled": s.enabled,
        "paused": not s.enabled,
        "last_due_at": iso(s.last_due_at) if s.last_due_at else None,
        "next_fire": nxt[0].isoformat() if nxt else None,
    }


def run_out(r: JobRun) -> dict[str, Any]:
    return {
        "id": r.id,
        "task": r.task,
        "schedule": r.schedule,
        "trigger": r.trigger.value,
        "logical_date": r.logical_date.isoformat(),
        "status": r.status,
        "queue": r.queue,
        "priority": r.priority,
        "due_at": iso(r.due_at) if r.due_at else None,
        "queued_at": iso(r.queued_at),
        "started_at": iso(r.started_at) if r.started_at else None,
        "finished_at": iso(r.finished_at) if r.finished_at else None,
        "duration_s": r.duration_s,
        "attempt": r.attempt,
        "counters": r.counters,
        "error": r.error,
        "note": r.note,
        "params": r.params,
        "metadata": r.metadata,
        "created_by": r.created_by,
    }


# -- schedules (the fixed paths before /{name}) ----------------------------------------


@schedules_router.get("", response_model=SchedulesOut, operation_id="listSchedules")
async def list_schedules(service: SchedulesDep) -> dict[str, Any]:
    """Every schedule with its metadata, state and next fire time."""
    return {"schedules": [schedule_out(service, s) for s in await service.all()]}


@schedules_router.post("", status_code=201, response_model=ScheduleOut, operation_id="createSchedule")
async def create_schedule(spec: ScheduleSpec, service: SchedulesDep, caller: CallerDep) -> dict[str, Any]:
    """Create a schedule: `cron` + `timezone`, or `calendar` + `when` (market-relative).
    409 when the name is taken; 422 names the field that is wrong."""
    return schedule_out(service, await service.create(spec, by=_by(caller)))


@schedules_router.post("/preview", response_model=PreviewOut, operation_id="previewSchedule")
async def preview_schedule(body: PreviewIn, runtime: RuntimeDep) -> dict[str, Any]:
    """The next `count` fire times of a cron expression in a time zone (croniter's answer,
    DST included), or of a market-relative `when` on an exchange calendar (early closes and
    holidays included)."""
    if body.cron is None and (body.calendar is None or body.when is None):
        raise InvalidRequest("cron", "give `cron`, or `calendar` and `when`")
    start = parse_ts("start", body.start) or runtime.clock.now()
    times = preview_times(body, start=start, count=body.count)
    return {"next": [t.isoformat() for t in times]}


@schedules_router.get("/export", operation_id="exportSchedules")
async def export_schedules(service: SchedulesDep) -> list[dict[str, Any]]:
    """Every schedule as a JSON array (name, task, cron or calendar/when, timezone, args,
    kwargs, metadata, enabled), for version control; `POST /import` takes it back."""
    return await service.export()


@schedules_router.post("/import", response_model=ImportOut, operation_id="importSchedules")
async def import_schedules(
    service: SchedulesDep, caller: CallerDep, entries: list[ScheduleEntry] = Body(max_length=1000)
) -> dict[str, Any]:
    """Create or replace every schedule in the array, all or nothing (422 names `[i].field`)."""
    return await service.import_([e.model_dump() for e in entries], by=_by(caller))


@schedules_router.get("/{name:schedule_name}", response_model=ScheduleOut, operation_id="getSchedule")
async def get_schedule(name: str, service: SchedulesDep) -> dict[str, Any]:
    return schedule_out(service, await service.get(name))


@schedules_router.put("/{name:schedule_name}", response_model=ScheduleOut, operation_id="updateSchedule")
async def update_schedule(
    name: str, spec: ScheduleSpec, service: SchedulesDep, caller: CallerDep
) -> dict[str, Any]:
    """Replace the schedule (the body's `name` must be the path's)."""
    return schedule_out(service, await service.update(name, spec, by=_by(caller)))


@schedules_router.delete("/{name:schedule_name}", response_model=DeletedOut, operation_id="deleteSchedule")
async def delete_schedule(name: str, service: SchedulesDep) -> dict[str, Any]:
    """Remove it; its job runs stay. 409 while another schedule depends on it."""
    await service.delete(name)
    return {"deleted": name}


@schedules_router.post(
    "/{name:schedule_name}/pause", response_model=ScheduleOut, operation_id="pauseSchedule"
)
async def pause_schedule(name: str, service: SchedulesDep, caller: CallerDep) -> dict[str, Any]:
    """Stop firing; args, kwargs and metadata are saved for resume."""
    return schedule_out(service, await service.pause(name, by=_by(caller)))


@schedules_router.post(
    "/{name:schedule_name}/resume", response_model=ScheduleOut, operation_id="resumeSchedule"
)
async def resume_schedule(
    name: str, service: SchedulesDep, caller: CallerDep, body: ResumeIn | None = Body(default=None)
) -> dict[str, Any]:
    """Fire again from now on with what pause saved (no catch-up for the paused time)."""
    return schedule_out(service, await service.resume(name, by=_by(caller), cron=body.cron if body else None))


@schedules_router.post(
    "/{name:schedule_name}/run-now", status_code=202, response_model=JobRunOut, operation_id="runScheduleNow"
)
async def run_schedule_now(name: str, service: SchedulesDep, caller: CallerDep) -> dict[str, Any]:
    """Queue a run now with the schedule's args, kwargs and metadata; the answer is the
    queued job run (follow it in `GET /api/v1/market-data/admin/jobs`)."""
    return run_out(await service.run_now(name, by=_by(caller)))


# -- job runs and the catalog ----------------------------------------------------------


@tasks_router.get("/jobs", response_model=JobRunsOut, operation_id="listJobRuns")
async def list_jobs(
    service: SchedulesDep,
    task: str | None = None,
    schedule: str | None = None,
    status: RunStatus | None = None,
    since: Annotated[
        str | None,
        Query(
            pattern=TIME_PATTERN, description="Runs queued at or after this instant (ISO 8601 with a zone)"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Job runs, newest first: every task execution (scheduled, run-now, task run, admin POST)."""
    runs = await service.jobs(
        task=task, schedule=schedule, status=status, since=parse_ts("since", since), limit=limit
    )
    return {"jobs": [run_out(r) for r in runs]}


@tasks_router.get("/jobs/{run_id}", response_model=JobRunDetailOut, operation_id="getJobRun")
async def get_job(
    run_id: Annotated[int, Path(ge=1, le=INT64_MAX, description="Id of a job run")], service: SchedulesDep
) -> dict[str, Any]:
    """One job run with its params, metadata, counters, error and log lines."""
    run = await service.job(run_id)
    return {**run_out(run), "logs": run.logs}


@tasks_router.get("/tasks", response_model=TasksOut, operation_id="listTasks")
async def list_tasks(service: SchedulesDep) -> dict[str, Any]:
    """The task catalog: each task, its parameters and its default schedule."""
    return {
        "tasks": [
            {
                "name": d.name,
                "description": d.description,
                "params": d.params.model_json_schema(),
                "default_schedule": d.default.export(),
                "seeded_paused": d.paused,
            }
            for d in (service.catalog[n] for n in service.catalog.names())
        ]
    }


@tasks_router.post("/tasks/run", status_code=202, response_model=JobRunOut, operation_id="runTask")
async def run_task(body: TaskRunIn, service: SchedulesDep, caller: CallerDep) -> dict[str, Any]:
    """Queue one catalog task now, with its default metadata; the answer is the queued run."""
    return run_out(await service.run_task(body.task, body.kwargs, by=_by(caller)))
