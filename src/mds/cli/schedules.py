"""`mds schedules list|add|pause|resume|delete|run|export|import|seed|jobs|tasks`: the schedules API from a shell.

The commands work on the store DATABASE_URL names. `run` does not run the task in this
process: it stores a run for the service's leading scheduler to queue (the CLI holds no
task queues), and with ``--wait`` follows it until it finishes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mds.cli.apps import schedules_app
from mds.cli.common import EnvFile, fail, settings, with_store
from mds.errors import Conflict, InvalidRequest, NotFound

if TYPE_CHECKING:
    from mds.services.schedules import ScheduleService
    from mds.storage.base import Store

T = TypeVar("T")
By = Annotated[str, typer.Option("--by", help="Name stamped in the audit fields")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line")]
WAIT_POLL_SEC = 0.5


def _with_service(env_file: Path | None, fn: Callable[[ScheduleService], Awaitable[T]]) -> T:
    from mds.calendar import get_calendar
    from mds.domain.clock import SystemClock
    from mds.ops.catalog import Catalog
    from mds.ops.runs import RunSubmitter
    from mds.services.schedules import ScheduleService

    s = settings(env_file)

    async def run(store: Store) -> T:
        clock, catalog = SystemClock(), Catalog()
        zone = get_calendar(s.MARKET_CALENDAR).zone
        submitter = RunSubmitter(store=store, catalog=catalog, clock=clock, queues=None, zone=zone)
        service = ScheduleService(store=store, catalog=catalog, submitter=submitter, clock=clock, settings=s)
        return await fn(service)

    try:
        return with_store(s, run)
    except InvalidRequest as exc:
        fail(f"{exc.field}: {exc.message}")
    except (NotFound, Conflict) as exc:
        fail(str(exc))


@schedules_app.command("list")
def list_schedules(as_json: JsonOpt = False, env_file: EnvFile = None) -> None:
    """Every schedule: task, timing, state and next fire time."""

    async def go(service: ScheduleService) -> list[dict[str, Any]]:
        out = []
        for s in await service.all():
            nxt = service.next_fires(s, 1) if s.enabled else []
            timing = s.cron and f"cron '{s.cron}' {s.timezone}" or f"{s.calendar} {s.when}"
            out.append(
                {
                    "name": s.name,
                    "task": s.task,
                    "timing": timing,
                    "state": "active" if s.enabled else "paused",
                    "next_fire": nxt[0].isoformat() if nxt else None,
                    "queue": s.metadata.queue,
                }
            )
        return out

    for row in _with_service(env_file, go):
        typer.echo(json.dumps(row) if as_json else "  ".join(f"{k}={v}" for k, v in row.items()))


@schedules_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Schedule name")],
    task: Annotated[str, typer.Option(help="Catalog task (see `mds schedules tasks`)")],
    cron: Annotated[str | None, typer.Option(help="Five-field cron, read in --timezone")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of the cron")] = "UTC",
    calendar: Annotated[str | None, typer.Option(help="Exchange calendar for --when (XNYS)")] = None,
    when: Annotated[str | None, typer.Option(help="after_close+30m, before_open-60m, …")] = None,
    kwargs: Annotated[str, typer.Option(help="Task parameters as a JSON object")] = "{}",
    metadata: Annotated[str, typer.Option(help="ScheduleMetadata as a JSON object")] = "{}",
    by: By = "cli",
    env_file: EnvFile = None,
) -> None:
    """Create a schedule (cron + timezone, or calendar + when)."""
    from pydantic import ValidationError

    from mds.domain.schedules import ScheduleSpec

    try:
        spec = ScheduleSpec.model_validate(
            {
                "name": name,
                "task": task,
                "cron": cron,
                "timezone": timezone,
                "calendar": calendar,
                "when": when,
                "kwargs": json.loads(kwargs),
                "metadata": json.loads(metadata),
            }
        )
    except json.JSONDecodeError as exc:
        fail(f"--kwargs/--metadata: not JSON: {exc}")
    except ValidationError as exc:
        err = exc.errors()[0]
        fail(f"{'.'.join(str(p) for p in err['loc']) or 'schedule'}: {err['msg']}")
    created = _with_service(env_file, lambda svc: svc.create(spec, by=by))
    typer.echo(f"created {created.name}")


@schedules_app.command("pause")
def pause(name: str, by: By = "cli", env_file: EnvFile = None) -> None:
    """Stop firing; args, kwargs and metadata are kept for resume."""
    _with_service(env_file, lambda svc: svc.pause(name, by=by))
    typer.echo(f"paused {name}")


@schedules_app.command("resume")
def resume(
    name: str,
    cron: Annotated[str | None, typer.Option(help="A new cron (optional)")] = None,
    by: By = "cli",
    env_file: EnvFile = None,
) -> None:
    """Fire again from now on, with what pause saved."""
    _with_service(env_file, lambda svc: svc.resume(name, by=by, cron=cron))
    typer.echo(f"resumed {name}")


@schedules_app.command("delete")
def delete(name: str, env_file: EnvFile = None) -> None:
    """Remove a schedule (its job runs stay)."""
    _with_service(env_file, lambda svc: svc.delete(name))
    typer.echo(f"deleted {name}")


@schedules_app.command("run")
def run(
    name: Annotated[str | None, typer.Argument(help="A schedule to run now")] = None,
    task: Annotated[str | None, typer.Option(help="Or a catalog task, with its default metadata")] = None,
    kwargs: Annotated[str, typer.Option(help="--task's parameters as a JSON object")] = "{}",
    wait: Annotated[float, typer.Option(help="Seconds to follow the run until it finishes (0: don't)")] = 0.0,
    by: By = "cli",
    env_file: EnvFile = None,
) -> None:
    """Queue a run now; the service's leading scheduler hands it to a worker."""
    if (name is None) == (task is None):
        fail("give a schedule NAME or --task, not both")
    try:
        params = json.loads(kwargs)
    except json.JSONDecodeError as exc:
        fail(f"--kwargs: not JSON: {exc}")

    async def go(service: ScheduleService) -> Any:
        if name is not None:
            return await service.run_now(name, by=by)
        return await service.run_task(str(task), params, by=by)

    queued = _with_service(env_file, go)
    typer.echo(f"queued run {queued.id} of {queued.task}")
    if wait <= 0:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        current = _with_service(env_file, lambda svc: svc.job(int(queued.id)))
        if current.status.finished:
            typer.echo(
                json.dumps(
                    {
                        "id": current.id,
                        "status": current.status.value,
                        "duration_s": current.duration_s,
                        "counters": current.counters,
                        "error": current.error,
                        "note": current.note,
                    },
                    default=str,
                )
            )
            if current.status.value != "succeeded":
                raise typer.Exit(1)
            return
        time.sleep(WAIT_POLL_SEC)
    fail(f"run {queued.id} did not finish within {wait:g}s (is `mds serve` or `mds scheduler` running?)")


@schedules_app.command("export")
def export(
    file: Annotated[Path | None, typer.Argument(help="Write here (default: standard output)")] = None,
    env_file: EnvFile = None,
) -> None:
    """Every schedule as a JSON array, for version control."""
    entries = _with_service(env_file, lambda svc: svc.export())
    text = json.dumps(entries, indent=2, sort_keys=True) + "\n"
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text)
        typer.echo(f"exported {len(entries)} schedules to {file}")


@schedules_app.command("import")
def import_(file: Path, by: By = "cli", env_file: EnvFile = None) -> None:
    """Create or replace the schedules of an export file, all or nothing."""
    try:
        entries = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"{file}: {exc}")
    if not isinstance(entries, list):
        fail(f"{file}: expected a JSON array of schedules")
    result = _with_service(env_file, lambda svc: svc.import_(entries, by=by))
    typer.echo(f"imported: {len(result['created'])} created, {len(result['updated'])} updated")


@schedules_app.command("seed")
def seed(
    overwrite: Annotated[bool, typer.Option(help="Replace existing catalog schedules too")] = False,
    by: By = "catalog",
    env_file: EnvFile = None,
) -> None:
    """Write each catalog task's default schedule that is not there yet."""
    written = _with_service(env_file, lambda svc: svc.seed(by=by, overwrite=overwrite))
    typer.echo(f"seeded {len(written)} schedules" + (f": {', '.join(written)}" if written else ""))


@schedules_app.command("jobs")
def jobs(
    task: Annotated[str | None, typer.Option(help="Only this task")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOpt = False,
    env_file: EnvFile = None,
) -> None:
    """Recent job runs, newest first."""
    runs = _with_service(env_file, lambda svc: svc.jobs(task=task, limit=limit))
    for r in runs:
        row = {
            "id": r.id,
            "task": r.task,
            "schedule": r.schedule,
            "status": r.status.value,
            "queued_at": r.queued_at.isoformat(),
            "duration_s": r.duration_s,
            "error": r.error,
            "note": r.note,
        }
        typer.echo(json.dumps(row) if as_json else "  ".join(f"{k}={v}" for k, v in row.items()))


@schedules_app.command("tasks")
def tasks(as_json: JsonOpt = False) -> None:
    """The task catalog: each task, its default timing and what it does."""
    from mds.ops.catalog import Catalog

    catalog = Catalog()
    for name in catalog.names():
        d = catalog[name]
        timing = (
            d.default.cron
            and f"cron '{d.default.cron}' {d.default.timezone}"
            or f"{d.default.calendar} {d.default.when}"
        )
        row = {"task": name, "default": timing, "paused": d.paused, "does": d.description}
        typer.echo(json.dumps(row) if as_json else "  ".join(f"{k}={v}" for k, v in row.items()))
