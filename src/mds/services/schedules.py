"""Schedules as a user manages them: create, change, pause, resume, run now, export, import,
preview, seed the catalog; and the catalog's tasks run on demand.

What the schedule's own model cannot check is checked here, each failure naming its field:
the task (``task``), the timing (``cron``, ``timezone``, ``calendar``, ``when``), the task's
parameters (``kwargs.<name>``), the queue (``metadata.queue``), dependencies on schedules
that exist (``metadata.dependencies``) and preflight capabilities
(``metadata.preflight_checks``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Capability
from mds.domain.schedules import JobRun, RunStatus, Schedule, ScheduleMetadata, ScheduleSpec, Trigger
from mds.errors import Conflict, InvalidRequest, NotFound
from mds.ops.catalog import Catalog
from mds.ops.runs import RunSubmitter, now_date
from mds.ops.timing import TimingError, preview, timing_for
from mds.storage.base import JobRunStore, ScheduleStore

PREVIEW_MAX = 100


class ScheduleStoreAll(ScheduleStore, JobRunStore, Protocol):
    """What the service needs of the store."""


class ScheduleService:
    def __init__(
        self,
        *,
        store: ScheduleStoreAll,
        catalog: Catalog,
        submitter: RunSubmitter,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.submitter = submitter
        self.clock = clock
        self.settings = settings

    # -- validation ------------------------------------------------------------------

    def check(self, spec: ScheduleSpec, *, known: set[str] | None = None, prefix: str = "") -> ScheduleSpec:
        """``spec`` with its task parameters normalised, or InvalidRequest naming the field.
        ``known``: schedule names dependencies may name (default: not checked)."""
        if spec.task not in self.catalog:
            raise InvalidRequest(
                f"{prefix}task",
                f"unknown task {spec.task!r}; the catalog has {', '.join(self.catalog.names())}",
            )
        try:
            timing_for(spec)
        except TimingError as exc:
            raise InvalidRequest(f"{prefix}{exc.field}", str(exc)) from exc
        kwargs = self._params(spec.task, spec.args, spec.kwargs, prefix=prefix)
        meta = spec.metadata
        if meta.queue not in self.settings.TASK_QUEUES:
            raise InvalidRequest(
                f"{prefix}metadata.queue",
                f"queue {meta.queue!r} is not one of TASK_QUEUES ({', '.join(self.settings.TASK_QUEUES)})",
            )
        for check in meta.preflight_checks:
            if check.startswith("provider:"):
                cap = check.split(":", 1)[1]
                if cap not in {c.value for c in Capability}:
                    raise InvalidRequest(
                        f"{prefix}metadata.preflight_checks", f"unknown capability {cap!r} in {check!r}"
                    )
        if known is not None:
            missing = [d for d in meta.dependencies if d not in known]
            if missing:
                raise InvalidRequest(
                    f"{prefix}metadata.dependencies", f"no schedule named {', '.join(missing)}"
                )
        return spec.model_copy(update={"kwargs": kwargs})

    def _params(
        self, task: str, args: list[Any], kwargs: dict[str, Any], *, prefix: str = ""
    ) -> dict[str, Any]:
        """The task's parameters checked by its model, or InvalidRequest naming ``kwargs.<name>``."""
        try:
            return self.catalog[task].validate_params(args, kwargs)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InvalidRequest(f"{prefix}kwargs.{where}", f"{task}: {err['msg']}") from exc
        except ValueError as exc:
            raise InvalidRequest(f"{prefix}args", str(exc)) from exc

    async def _names(self) -> set[str]:
        return {s.name for s in await self.store.schedules()}

    # -- reading ---------------------------------------------------------------------

    async def all(self) -> list[Schedule]:
        return await self.store.schedules()

    async def get(self, name: str) -> Schedule:
        s = await self.store.get_schedule(name)
        if s is None:
            raise NotFound("schedule", name)
        return s

    def next_fires(self, s: ScheduleSpec, count: int = 1, start: datetime | None = None) -> list[datetime]:
        try:
            return preview(timing_for(s), start or self.clock.now(), count)
        except TimingError:
            return []

    # -- writing ---------------------------------------------------------------------

    def _stamp(
        self, spec: ScheduleSpec, by: str, *, created: ScheduleMetadata | None = None
    ) -> ScheduleMetadata:
        now = self.clock.now()
        first = created if created is not None else spec.metadata
        return spec.metadata.model_copy(
            update={
                "created_by": first.created_by or by,
                "created_at": first.created_at or now,
                "updated_by": by,
                "updated_at": now,
            }
        )

    async def create(self, spec: ScheduleSpec, *, by: str) -> Schedule:
        if await self.store.get_schedule(spec.name) is not None:
            raise Conflict("schedule", spec.name, f"a schedule named {spec.name!r} exists; PUT changes it")
        spec = self.check(spec, known=await self._names())
        return await self._put(spec, by=by)

    async def update(self, name: str, spec: ScheduleSpec, *, by: str) -> Schedule:
        if spec.name != name:
            raise InvalidRequest("name", f"the body names {spec.name!r}, the path {name!r}")
        old = await self.get(name)
        spec = self.check(spec, known=await self._names())
        return await self._put(spec, by=by, old=old)

    async def _put(self, spec: ScheduleSpec, *, by: str, old: Schedule | None = None) -> Schedule:
        meta = self._stamp(spec, by, created=old.metadata if old else None)
        paused = old is not None and not old.enabled
        schedule = Schedule(
            **spec.model_dump(exclude={"metadata"}),
            metadata=meta,
            enabled=not paused,
            # A paused schedule written anew (PUT, import) resumes with what was written,
            # not with what it had when it was paused.
            paused_snapshot=_snapshot(spec.args, spec.kwargs, meta) if paused else None,
            last_due_at=old.last_due_at if old else None,
            since=self.clock.now(),
        )
        await self.store.put_schedule(schedule)
        return schedule

    async def delete(self, name: str) -> None:
        """Remove a schedule no other schedule depends on (its job runs stay)."""
        dependents = [s.name for s in await self.store.schedules() if name in s.metadata.dependencies]
        if dependents:
            raise Conflict(
                "schedule", name, f"{name} is a dependency of {', '.join(dependents)}; change those first"
            )
        if not await self.store.delete_schedule(name):
            raise NotFound("schedule", name)

    async def pause(self, name: str, *, by: str) -> Schedule:
        """Stop firing; args, kwargs and metadata are kept aside for resume."""
        s = await self.get(name)
        if not s.enabled:
            return s
        paused = s.model_copy(
            update={
                "enabled": False,
                "paused_snapshot": _snapshot(s.args, s.kwargs, s.metadata),
                "metadata": s.metadata.model_copy(update={"updated_by": by, "updated_at": self.clock.now()}),
                "since": self.clock.now(),
            }
        )
        await self.store.put_schedule(paused)
        return paused

    async def resume(self, name: str, *, by: str, cron: str | None = None) -> Schedule:
        """Fire again from now on (no catch-up for the paused time), with the args, kwargs and
        metadata saved at pause; ``cron`` replaces the timing when given."""
        s = await self.get(name)
        if s.enabled:
            return s
        snap = s.paused_snapshot or {}
        update: dict[str, Any] = {
            "args": snap.get("args", s.args),
            "kwargs": snap.get("kwargs", s.kwargs),
            "metadata": ScheduleMetadata.model_validate(snap["metadata"])
            if "metadata" in snap
            else s.metadata,
        }
        if cron is not None:
            update.update(cron=cron, calendar=None, when=None)
        spec = self.check(
            ScheduleSpec.model_validate({**s.spec().model_dump(), **update}), known=await self._names()
        )
        resumed = Schedule(
            **spec.model_dump(exclude={"metadata"}),
            metadata=spec.metadata.model_copy(update={"updated_by": by, "updated_at": self.clock.now()}),
            enabled=True,
            paused_snapshot=None,
            last_due_at=s.last_due_at,
            since=self.clock.now(),
        )
        await self.store.put_schedule(resumed)
        return resumed

    # -- export / import / seed ------------------------------------------------------

    async def export(self) -> list[dict[str, Any]]:
        """Every schedule as the import file holds it (paused ones with ``enabled: false``)."""
        out = []
        for s in await self.store.schedules():
            entry = s.spec().export()
            entry["enabled"] = s.enabled
            out.append(entry)
        return out

    async def import_(self, entries: Sequence[dict[str, Any]], *, by: str) -> dict[str, list[str]]:
        """Write every entry (create or replace), all or nothing: one bad entry refuses the
        whole file, naming ``[i].field``. Audit fields from the file are kept for
        ``created_*``; ``updated_*`` is stamped with the importer."""
        specs: list[tuple[ScheduleSpec, bool]] = []
        for i, raw in enumerate(entries):
            if not isinstance(raw, dict):
                raise InvalidRequest(f"[{i}]", "each entry must be an object")
            body = dict(raw)
            enabled = body.pop("enabled", True)
            if not isinstance(enabled, bool):
                raise InvalidRequest(f"[{i}].enabled", "must be true or false")
            try:
                specs.append((ScheduleSpec.model_validate(body), enabled))
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                raise InvalidRequest(f"[{i}].{where}" if where else f"[{i}]", err["msg"]) from exc
        names = [s.name for s, _ in specs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InvalidRequest("name", f"{', '.join(twice)} listed twice")
        known = await self._names() | set(names)
        checked = [(self.check(s, known=known, prefix=f"[{i}]."), e) for i, (s, e) in enumerate(specs)]
        created: list[str] = []
        updated: list[str] = []
        for spec, enabled in checked:
            old = await self.store.get_schedule(spec.name)
            s = await self._put(spec, by=by, old=old)
            (updated if old else created).append(spec.name)
            if not enabled:
                await self.pause(s.name, by=by)
            elif old is not None and not old.enabled:
                await self.resume(s.name, by=by)
        return {"created": created, "updated": updated}

    async def seed(self, *, by: str = "catalog", overwrite: bool = False) -> list[str]:
        """Write each catalog task's default schedule that is not there yet (all with
        ``overwrite``); the ones seeded paused are written paused."""
        have = await self._names()
        written = []
        for d in self.catalog.tasks.values():
            if d.default.name in have and not overwrite:
                continue
            old = await self.store.get_schedule(d.default.name)
            # Parameters normalised as create and import store them, so export → import
            # of a seeded schedule gives the same entry back.
            kwargs = d.validate_params(d.default.args, d.default.kwargs)
            await self._put(d.default.model_copy(update={"kwargs": kwargs}), by=by, old=old)
            if d.paused:
                await self.pause(d.default.name, by=by)
            written.append(d.default.name)
        return written

    # -- running ---------------------------------------------------------------------

    async def run_now(self, name: str, *, by: str, kwargs: dict[str, Any] | None = None) -> JobRun:
        """Queue a run of the schedule now, with its args, kwargs and metadata (paused or
        not); ``kwargs`` override the schedule's for this run."""
        s = await self.get(name)
        params = self._params(s.task, s.args, {**s.kwargs, **(kwargs or {})})
        try:
            zone = timing_for(s).zone
        except TimingError:
            zone = self.submitter.zone
        run = self.submitter.new_run(
            s.task,
            trigger=Trigger.RUN_NOW,
            metadata=s.metadata,
            kwargs=params,
            schedule=s.name,
            logical_date=now_date(self.clock, zone),
            created_by=by,
        )
        return await self.submitter.submit(run)

    async def run_task(self, task: str, kwargs: dict[str, Any] | None = None, *, by: str) -> JobRun:
        """Queue one catalog task now with its default metadata but no dependencies (not tied
        to a schedule, it does not wait for tonight's chain)."""
        if task not in self.catalog:
            raise InvalidRequest(
                "task", f"unknown task {task!r}; the catalog has {', '.join(self.catalog.names())}"
            )
        params = self._params(task, [], kwargs or {})
        # Asked for now: the nightly chain's ordering (dependencies) is the schedules' business.
        meta = self.catalog[task].default.metadata.model_copy(update={"dependencies": []})
        run = self.submitter.new_run(task, trigger=Trigger.TASK, metadata=meta, kwargs=params, created_by=by)
        return await self.submitter.submit(run)

    async def jobs(
        self,
        *,
        task: str | None = None,
        schedule: str | None = None,
        status: RunStatus | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[JobRun]:
        return await self.store.job_runs(
            task=task, schedule=schedule, status=status, since=since, limit=limit
        )

    async def job(self, run_id: int) -> JobRun:
        run = await self.store.get_run(run_id)
        if run is None:
            raise NotFound("job run", str(run_id))
        return run


def _snapshot(args: list[Any], kwargs: dict[str, Any], metadata: ScheduleMetadata) -> dict[str, Any]:
    """What pause keeps aside and resume restores."""
    return {"args": list(args), "kwargs": dict(kwargs), "metadata": metadata.model_dump(mode="json")}


def preview_times(spec: Any, *, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``start`` (in the schedule's zone), or InvalidRequest."""
    try:
        return preview(timing_for(spec), start, min(count, PREVIEW_MAX))
    except TimingError as exc:
        raise InvalidRequest(exc.field, str(exc)) from exc
