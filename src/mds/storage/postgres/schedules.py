"""Schedules and job runs on PostgreSQL: :class:`~mds.storage.base.ScheduleStore` and
:class:`~mds.storage.base.JobRunStore`.

``jsonb`` travels as JSON text both ways (asyncpg's default for the type). Firing a
schedule is a compare-and-set on its row: a concurrent firer waits for the row lock and
then finds ``last_due_at`` moved. Claiming a run counts other rows, which no row lock
guards, so claims of one schedule and of one task are serialised by transaction-level
advisory locks (see :meth:`PostgresSchedules.claim_run`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from mds.domain.models import ensure_utc
from mds.domain.schedules import FINISHED, JobRun, RunStatus, Schedule, Trigger
from mds.storage.postgres.connection import PostgresPool

_SCHEDULE_COLS = (
    "name, task, cron, timezone, calendar, when_expr, args, kwargs, metadata, enabled,"
    " paused_snapshot, last_due_at, since"
)
_UPSERT_SCHEDULE = (
    f"INSERT INTO schedules ({_SCHEDULE_COLS})"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb, $10, $11::jsonb, $12, $13)"
    " ON CONFLICT (name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SCHEDULE_COLS.split(", ")[1:])
    + ", revision = nextval('schedules_revision_seq')"
)
# Everything but id, in the order _run_params binds it: what says which run it is, then
# what changes over its life (_change_params).
_RUN_FIELDS = (
    "task, schedule, trigger, logical_date, queued_at, created_by, status, queue, priority, due_at,"
    " params, metadata, counters, error, note, attempt, started_at, finished_at, duration_s, lease_until,"
    " logs"
)
_RUN_COLS = "id, " + _RUN_FIELDS
_INSERT_RUN = (
    f"INSERT INTO job_runs ({_RUN_FIELDS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb,"
    " $12::jsonb, $13::jsonb, $14, $15, $16, $17, $18, $19, $20, $21::jsonb) RETURNING id"
)
# What a worker changes while a run goes through its life, in the order _change_params
# binds it; id, task, schedule, trigger, logical_date, queued_at and created_by say which
# run it is and stay.
_UPDATE_RUN = (
    "UPDATE job_runs SET status = $1, queue = $2, priority = $3, due_at = $4, params = $5::jsonb,"
    " metadata = $6::jsonb, counters = $7::jsonb, error = $8, note = $9, attempt = $10,"
    " started_at = $11, finished_at = $12, duration_s = $13, lease_until = $14, logs = $15::jsonb"
    " WHERE id = $16 RETURNING id"
)
# A lease that ran out does not count: its worker is gone, expire_runs will fail it.
_RUNNING = "status = 'running' AND lease_until > $2"
# First keys of the two-key pg_advisory_xact_lock, whose key space is apart from the
# one-key form the migrator uses; the second key is hashtext() of the name.
_SCHEDULE_LOCK = 0x6D647373  # "mdss"
_TASK_LOCK = 0x6D647374  # "mdst"
_LOCK = "SELECT pg_advisory_xact_lock($1, hashtext($2))"


def _utc(ts: datetime | None) -> datetime | None:
    return None if ts is None else ensure_utc(ts)


def _schedule_params(s: Schedule) -> tuple[Any, ...]:
    snapshot = None if s.paused_snapshot is None else json.dumps(s.paused_snapshot)
    return (
        s.name,
        s.task,
        s.cron,
        s.timezone,
        s.calendar,
        s.when,
        json.dumps(s.args),
        json.dumps(s.kwargs),
        json.dumps(s.metadata.model_dump(mode="json")),
        s.enabled,
        snapshot,
        _utc(s.last_due_at),
        _utc(s.since),
    )


def _schedule(row: asyncpg.Record) -> Schedule:
    snapshot = row["paused_snapshot"]
    return Schedule.model_validate(
        {
            "name": row["name"],
            "task": row["task"],
            "cron": row["cron"],
            "timezone": row["timezone"],
            "calendar": row["calendar"],
            "when": row["when_expr"],
            "args": json.loads(row["args"]),
            "kwargs": json.loads(row["kwargs"]),
            "metadata": json.loads(row["metadata"]),
            "enabled": row["enabled"],
            "paused_snapshot": None if snapshot is None else json.loads(snapshot),
            "last_due_at": row["last_due_at"],
            "since": row["since"],
        }
    )


def _run_params(r: JobRun) -> tuple[Any, ...]:
    identity = (
        r.task,
        r.schedule,
        Trigger(r.trigger).value,
        r.logical_date,
        ensure_utc(r.queued_at),
        r.created_by,
    )
    return (*identity, *_change_params(r))


def _change_params(r: JobRun) -> tuple[Any, ...]:
    return (
        RunStatus(r.status).value,
        r.queue,
        r.priority,
        _utc(r.due_at),
        json.dumps(r.params),
        json.dumps(r.metadata),
        json.dumps(r.counters),
        r.error,
        r.note,
        r.attempt,
        _utc(r.started_at),
        _utc(r.finished_at),
        r.duration_s,
        _utc(r.lease_until),
        json.dumps(r.logs),
    )


def _run(row: asyncpg.Record) -> JobRun:
    return JobRun(
        id=row["id"],
        task=row["task"],
        schedule=row["schedule"],
        trigger=Trigger(row["trigger"]),
        logical_date=row["logical_date"],
        status=RunStatus(row["status"]),
        queue=row["queue"],
        priority=row["priority"],
        due_at=row["due_at"],
        params=json.loads(row["params"]),
        metadata=json.loads(row["metadata"]),
        counters=json.loads(row["counters"]),
        error=row["error"],
        note=row["note"],
        attempt=row["attempt"],
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_s=row["duration_s"],
        lease_until=row["lease_until"],
        created_by=row["created_by"],
        logs=json.loads(row["logs"]),
    )


class PostgresSchedules:
    """The :class:`~mds.storage.base.ScheduleStore` and :class:`~mds.storage.base.JobRunStore`
    parts of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def put_schedule(self, schedule: Schedule) -> None:
        await self.db.execute(_UPSERT_SCHEDULE, *_schedule_params(schedule))

    async def get_schedule(self, name: str) -> Schedule | None:
        row = await self.db.fetchrow(f"SELECT {_SCHEDULE_COLS} FROM schedules WHERE name = $1", name)
        return None if row is None else _schedule(row)

    async def schedules(self) -> list[Schedule]:
        rows = await self.db.fetch(f"SELECT {_SCHEDULE_COLS} FROM schedules ORDER BY name")
        return [_schedule(r) for r in rows]

    async def delete_schedule(self, name: str) -> bool:
        deleted = await self.db.write(
            lambda conn: conn.fetchval("DELETE FROM schedules WHERE name = $1 RETURNING name", name)
        )
        return deleted is not None

    async def schedules_changed_at(self) -> tuple[int, int]:
        row = await self.db.fetchrow("SELECT count(*), coalesce(max(revision), 0) FROM schedules")
        assert row is not None
        return int(row[0]), int(row[1])

    async def fire_schedule(self, name: str, due_at: datetime, run: JobRun) -> JobRun | None:
        queued = dataclasses.replace(run, status=RunStatus.QUEUED, id=None)
        params, due = _run_params(queued), ensure_utc(due_at)

        async def fire(conn: asyncpg.Connection) -> int | None:
            # The UPDATE holds the schedule's row lock until COMMIT; a concurrent firer
            # waits for it and then re-reads last_due_at, which no longer qualifies.
            async with conn.transaction():
                marked = await conn.fetchval(
                    "UPDATE schedules SET last_due_at = $2 WHERE name = $1 AND enabled"
                    " AND (last_due_at IS NULL OR last_due_at < $2) RETURNING name",
                    name,
                    due,
                )
                if marked is None:
                    return None
                run_id: int = await conn.fetchval(_INSERT_RUN, *params)
                return run_id

        run_id = await self.db.write(fire)
        return None if run_id is None else dataclasses.replace(queued, id=run_id)

    async def create_run(self, run: JobRun) -> JobRun:
        params = _run_params(run)
        run_id = await self.db.write(lambda conn: conn.fetchval(_INSERT_RUN, *params))
        return dataclasses.replace(run, id=run_id)

    async def get_run(self, run_id: int) -> JobRun | None:
        row = await self.db.fetchrow(f"SELECT {_RUN_COLS} FROM job_runs WHERE id = $1", run_id)
        return None if row is None else _run(row)

    async def update_run(self, run: JobRun) -> None:
        """Raises LookupError when no run has ``run.id``: a lost update should not pass silently."""
        if run.id is None:
            raise ValueError("update_run needs a stored run (id is None)")
        params = (*_change_params(run), run.id)
        if await self.db.write(lambda conn: conn.fetchval(_UPDATE_RUN, *params)) is None:
            raise LookupError(f"unknown job run: {run.id}")

    async def claim_run(
        self,
        run_id: int,
        *,
        now: datetime,
        lease_until: datetime,
        single_flight: bool,
        max_concurrency: int | None,
    ) -> RunStatus | None:
        """See the protocol; raises LookupError when no run has ``run_id``.

        The run's row is locked first (a duplicate delivery waits, then sees it running),
        then the schedule's and the task's advisory locks, always in that order, and always
        both: a claim that does not check a limit can still break the count another claim
        is checking. Each count is its own statement after the locks, so under READ
        COMMITTED it sees every claim committed before this one got them.
        """
        at, until = ensure_utc(now), ensure_utc(lease_until)

        async def claim(conn: asyncpg.Connection) -> RunStatus | None:
            async with conn.transaction():
                row = await conn.fetchrow(
                    "SELECT status, schedule, task FROM job_runs WHERE id = $1 FOR UPDATE", run_id
                )
                if row is None:
                    raise LookupError(f"unknown job run: {run_id}")
                status, schedule, task = row
                if status != RunStatus.QUEUED:
                    return RunStatus(status)
                if schedule is not None:
                    await conn.execute(_LOCK, _SCHEDULE_LOCK, schedule)
                await conn.execute(_LOCK, _TASK_LOCK, task)
                if single_flight and schedule is not None:
                    sql = f"SELECT EXISTS (SELECT 1 FROM job_runs WHERE schedule = $1 AND {_RUNNING})"
                    if await conn.fetchval(sql, schedule, at):
                        return RunStatus.SKIPPED
                if max_concurrency is not None:
                    sql = f"SELECT count(*) FROM job_runs WHERE task = $1 AND {_RUNNING}"
                    if await conn.fetchval(sql, task, at) >= max_concurrency:
                        return RunStatus.QUEUED
                await conn.execute(
                    "UPDATE job_runs SET status = 'running', started_at = $2, lease_until = $3 WHERE id = $1",
                    run_id,
                    at,
                    until,
                )
                return None

        return await self.db.write(claim)

    async def renew_lease(self, run_id: int, lease_until: datetime) -> bool:
        renewed = await self.db.write(
            lambda conn: conn.fetchval(
                "UPDATE job_runs SET lease_until = $2 WHERE id = $1 AND status = 'running' RETURNING id",
                run_id,
                ensure_utc(lease_until),
            )
        )
        return renewed is not None

    async def job_runs(
        self,
        *,
        task: str | None = None,
        schedule: str | None = None,
        status: RunStatus | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[JobRun]:
        sql = f"SELECT {_RUN_COLS} FROM job_runs WHERE true"
        args: list[Any] = []
        for column, op, value in (
            ("task", "=", task),
            ("schedule", "=", schedule),
            ("status", "=", None if status is None else RunStatus(status).value),
            ("queued_at", ">=", _utc(since)),
        ):
            if value is not None:
                args.append(value)
                sql += f" AND {column} {op} ${len(args)}"
        args.append(max(0, limit))
        rows = await self.db.fetch(sql + f" ORDER BY queued_at DESC, id DESC LIMIT ${len(args)}", *args)
        return [_run(r) for r in rows]

    async def latest_runs_for(self, schedules: Sequence[str], logical_date: date) -> dict[str, JobRun]:
        if not schedules:
            return {}
        rows = await self.db.fetch(
            f"SELECT DISTINCT ON (schedule) {_RUN_COLS} FROM job_runs"
            " WHERE schedule = ANY($1::text[]) AND logical_date = $2"
            " ORDER BY schedule, queued_at DESC, id DESC",
            list(dict.fromkeys(schedules)),
            logical_date,
        )
        return {r["schedule"]: _run(r) for r in rows}

    async def expire_runs(self, *, now: datetime, note: str) -> list[JobRun]:
        rows = await self.db.write(
            lambda conn: conn.fetch(
                "UPDATE job_runs SET status = 'failed', finished_at = $1, note = $2,"
                " error = COALESCE(error, $2),"
                " duration_s = EXTRACT(EPOCH FROM $1 - started_at)::double precision"
                f" WHERE status = 'running' AND lease_until < $1 RETURNING {_RUN_COLS}",
                ensure_utc(now),
                note,
            )
        )
        return sorted((_run(r) for r in rows), key=lambda r: r.id or 0)

    async def purge_runs(self, *, finished_before: datetime) -> int:
        # A skipped run may never have started; its queued time is when it ended.
        status = await self.db.write(
            lambda conn: conn.execute(
                "DELETE FROM job_runs WHERE status = ANY($1::text[]) AND COALESCE(finished_at, queued_at) < $2",
                sorted(FINISHED),
                ensure_utc(finished_before),
            )
        )
        return int(status.split()[-1])
