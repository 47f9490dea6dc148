"""Schedules and job runs on SQLite: :class:`~mds.storage.base.ScheduleStore` and
:class:`~mds.storage.base.JobRunStore`.

Times are epoch microseconds (``sql.py``), ``logical_date`` an ISO date, the dict and list
fields JSON text. Every compare-and-set (firing a schedule, claiming a run) is one
``BEGIN IMMEDIATE`` transaction on the writer thread: SQLite lets one writer in at a time,
across processes too, so a check and the write it guards cannot interleave with another.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from mds.domain.schedules import FINISHED, JobRun, RunStatus, Schedule, Trigger
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

_SCHEDULE_COLS = (
    "name, task, cron, timezone, calendar, when_expr, args, kwargs, metadata, enabled,"
    " paused_snapshot, last_due_at, since"
)
# Everything but id, in the order _run reads it.
_RUN_FIELDS = (
    "task, schedule, trigger, logical_date, status, queue, priority, due_at, params, metadata,"
    " counters, error, note, attempt, queued_at, started_at, finished_at, duration_s, lease_until,"
    " created_by, logs"
)
_RUN_COLS = "id, " + _RUN_FIELDS
# The insert binds what says which run it is, then what changes over its life (_change_params).
_INSERT_FIELDS = (
    "task, schedule, trigger, logical_date, queued_at, created_by, status, queue, priority, due_at,"
    " params, metadata, counters, error, note, attempt, started_at, finished_at, duration_s, lease_until,"
    " logs"
)
_INSERT_RUN = f"INSERT INTO job_runs ({_INSERT_FIELDS}) VALUES ({', '.join('?' * 21)})"
_UPSERT_SCHEDULE = (
    f"INSERT INTO schedules ({_SCHEDULE_COLS}) VALUES ({', '.join('?' * 13)})"
    " ON CONFLICT (name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SCHEDULE_COLS.split(", ")[1:])
)
# What a worker changes while a run goes through its life, in the order _change_params
# binds it; id, task, schedule, trigger, logical_date, queued_at and created_by say which
# run it is and stay.
_UPDATE_RUN = (
    "UPDATE job_runs SET status = ?, queue = ?, priority = ?, due_at = ?, params = ?, metadata = ?,"
    " counters = ?, error = ?, note = ?, attempt = ?, started_at = ?, finished_at = ?, duration_s = ?,"
    " lease_until = ?, logs = ? WHERE id = ?"
)
# A lease that ran out does not count: its worker is gone, expire_runs will fail it.
_RUNNING = "status = 'running' AND lease_until > ?"


def _micros(ts: datetime | None) -> int | None:
    return None if ts is None else q.micros(ts)


def _time(value: int | None) -> datetime | None:
    return None if value is None else q.from_micros(value)


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
        int(s.enabled),
        snapshot,
        _micros(s.last_due_at),
        _micros(s.since),
    )


def _schedule(row: tuple[Any, ...]) -> Schedule:
    name, task, cron, tz, calendar, when, args, kwargs, meta, enabled, snapshot, last_due, since = row
    return Schedule.model_validate(
        {
            "name": name,
            "task": task,
            "cron": cron,
            "timezone": tz,
            "calendar": calendar,
            "when": when,
            "args": json.loads(args),
            "kwargs": json.loads(kwargs),
            "metadata": json.loads(meta),
            "enabled": bool(enabled),
            "paused_snapshot": None if snapshot is None else json.loads(snapshot),
            "last_due_at": _time(last_due),
            "since": _time(since),
        }
    )


def _run_params(r: JobRun) -> tuple[Any, ...]:
    identity = (
        r.task,
        r.schedule,
        Trigger(r.trigger).value,
        r.logical_date.isoformat(),
        q.micros(r.queued_at),
        r.created_by,
    )
    return (*identity, *_change_params(r))


def _change_params(r: JobRun) -> tuple[Any, ...]:
    return (
        RunStatus(r.status).value,
        r.queue,
        r.priority,
        _micros(r.due_at),
        json.dumps(r.params),
        json.dumps(r.metadata),
        json.dumps(r.counters),
        r.error,
        r.note,
        r.attempt,
        _micros(r.started_at),
        _micros(r.finished_at),
        r.duration_s,
        _micros(r.lease_until),
        json.dumps(r.logs),
    )


def _run(row: tuple[Any, ...]) -> JobRun:
    (
        run_id, task, schedule, trigger, logical, status, queue, priority, due, params, meta,
        counters, error, note, attempt, queued, started, finished, duration, lease, created_by, logs,
    ) = row  # fmt: skip
    return JobRun(
        id=run_id,
        task=task,
        schedule=schedule,
        trigger=Trigger(trigger),
        logical_date=date.fromisoformat(logical),
        status=RunStatus(status),
        queue=queue,
        priority=priority,
        due_at=_time(due),
        params=json.loads(params),
        metadata=json.loads(meta),
        counters=json.loads(counters),
        error=error,
        note=note,
        attempt=attempt,
        queued_at=q.from_micros(queued),
        started_at=_time(started),
        finished_at=_time(finished),
        duration_s=duration,
        lease_until=_time(lease),
        created_by=created_by,
        logs=json.loads(logs),
    )


def _insert_run(conn: sqlite3.Connection, params: tuple[Any, ...]) -> int:
    cur = conn.execute(_INSERT_RUN, params)
    assert cur.lastrowid is not None
    return cur.lastrowid


class SqliteSchedules:
    """The :class:`~mds.storage.base.ScheduleStore` and :class:`~mds.storage.base.JobRunStore`
    parts of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def put_schedule(self, schedule: Schedule) -> None:
        params = _schedule_params(schedule)

        def put(conn: sqlite3.Connection) -> None:
            conn.execute(_UPSERT_SCHEDULE, params)
            # One writer at a time: the revision grows with every write.
            conn.execute(
                "UPDATE schedules SET revision = (SELECT max(revision) + 1 FROM schedules) WHERE name = ?",
                (schedule.name,),
            )

        await self.db.transaction(put)

    async def get_schedule(self, name: str) -> Schedule | None:
        sql = f"SELECT {_SCHEDULE_COLS} FROM schedules WHERE name = ?"
        row = await self.db.on_reader(lambda conn: conn.execute(sql, (name,)).fetchone())
        return None if row is None else _schedule(row)

    async def schedules(self) -> list[Schedule]:
        sql = f"SELECT {_SCHEDULE_COLS} FROM schedules ORDER BY name"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql).fetchall())
        return [_schedule(r) for r in rows]

    async def delete_schedule(self, name: str) -> bool:
        deleted = await self.db.transaction(
            lambda conn: conn.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount
        )
        return bool(deleted)

    async def schedules_changed_at(self) -> tuple[int, int]:
        count, revision = await self.db.on_reader(
            lambda conn: conn.execute("SELECT count(*), coalesce(max(revision), 0) FROM schedules").fetchone()
        )
        return int(count), int(revision)

    async def fire_schedule(self, name: str, due_at: datetime, run: JobRun) -> JobRun | None:
        queued = dataclasses.replace(run, status=RunStatus.QUEUED, id=None)
        params, due = _run_params(queued), q.micros(due_at)

        def fire(conn: sqlite3.Connection) -> int | None:
            marked = conn.execute(
                "UPDATE schedules SET last_due_at = ? WHERE name = ? AND enabled = 1"
                " AND (last_due_at IS NULL OR last_due_at < ?)",
                (due, name, due),
            ).rowcount
            return _insert_run(conn, params) if marked else None

        run_id = await self.db.transaction(fire)
        return None if run_id is None else dataclasses.replace(queued, id=run_id)

    async def create_run(self, run: JobRun) -> JobRun:
        params = _run_params(run)
        run_id = await self.db.transaction(lambda conn: _insert_run(conn, params))
        return dataclasses.replace(run, id=run_id)

    async def get_run(self, run_id: int) -> JobRun | None:
        sql = f"SELECT {_RUN_COLS} FROM job_runs WHERE id = ?"
        row = await self.db.on_reader(lambda conn: conn.execute(sql, (run_id,)).fetchone())
        return None if row is None else _run(row)

    async def update_run(self, run: JobRun) -> None:
        """Raises LookupError when no run has ``run.id``: a lost update should not pass silently."""
        if run.id is None:
            raise ValueError("update_run needs a stored run (id is None)")
        params = _change_params(run)
        changed = await self.db.transaction(
            lambda conn: conn.execute(_UPDATE_RUN, (*params, run.id)).rowcount
        )
        if not changed:
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
        """See the protocol; raises LookupError when no run has ``run_id``."""
        at, until = q.micros(now), q.micros(lease_until)

        def claim(conn: sqlite3.Connection) -> RunStatus | None:
            row = conn.execute(
                "SELECT status, schedule, task FROM job_runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise LookupError(f"unknown job run: {run_id}")
            status, schedule, task = row
            if status != RunStatus.QUEUED:
                return RunStatus(status)
            if single_flight and schedule is not None:
                sql = f"SELECT EXISTS (SELECT 1 FROM job_runs WHERE schedule = ? AND {_RUNNING})"
                if conn.execute(sql, (schedule, at)).fetchone()[0]:
                    return RunStatus.SKIPPED
            if max_concurrency is not None:
                sql = f"SELECT count(*) FROM job_runs WHERE task = ? AND {_RUNNING}"
                if conn.execute(sql, (task, at)).fetchone()[0] >= max_concurrency:
                    return RunStatus.QUEUED
            conn.execute(
                "UPDATE job_runs SET status = 'running', started_at = ?, lease_until = ? WHERE id = ?",
                (at, until, run_id),
            )
            return None

        return await self.db.transaction(claim)

    async def renew_lease(self, run_id: int, lease_until: datetime) -> bool:
        params = (q.micros(lease_until), run_id)
        renewed = await self.db.transaction(
            lambda conn: (
                conn.execute(
                    "UPDATE job_runs SET lease_until = ? WHERE id = ? AND status = 'running'", params
                ).rowcount
            )
        )
        return bool(renewed)

    async def job_runs(
        self,
        *,
        task: str | None = None,
        schedule: str | None = None,
        status: RunStatus | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[JobRun]:
        sql = f"SELECT {_RUN_COLS} FROM job_runs WHERE 1 = 1"
        params: list[Any] = []
        if task is not None:
            sql += " AND task = ?"
            params.append(task)
        if schedule is not None:
            sql += " AND schedule = ?"
            params.append(schedule)
        if status is not None:
            sql += " AND status = ?"
            params.append(RunStatus(status).value)
        if since is not None:
            sql += " AND queued_at >= ?"
            params.append(q.micros(since))
        sql += " ORDER BY queued_at DESC, id DESC LIMIT ?"
        params.append(max(0, limit))
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [_run(r) for r in rows]

    async def latest_runs_for(self, schedules: Sequence[str], logical_date: date) -> dict[str, JobRun]:
        if not schedules:
            return {}
        # The names are one JSON parameter; rows come newest first within each schedule,
        # so the first one seen per name is its latest.
        sql = (
            f"SELECT {_RUN_COLS} FROM job_runs WHERE logical_date = ?"
            " AND schedule IN (SELECT value FROM json_each(?))"
            " ORDER BY schedule, queued_at DESC, id DESC"
        )
        params = (logical_date.isoformat(), json.dumps(list(dict.fromkeys(schedules))))
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        latest: dict[str, JobRun] = {}
        for row in rows:
            run = _run(row)
            assert run.schedule is not None
            latest.setdefault(run.schedule, run)
        return latest

    async def expire_runs(self, *, now: datetime, note: str) -> list[JobRun]:
        at = q.micros(now)
        sql = (
            "UPDATE job_runs SET status = 'failed', finished_at = :now, note = :note,"
            " error = COALESCE(error, :note), duration_s = (:now - started_at) / 1e6"
            f" WHERE status = 'running' AND lease_until < :now RETURNING {_RUN_COLS}"
        )
        rows = await self.db.transaction(lambda conn: conn.execute(sql, {"now": at, "note": note}).fetchall())
        return sorted((_run(r) for r in rows), key=lambda r: r.id or 0)

    async def purge_runs(self, *, finished_before: datetime) -> int:
        # A skipped run may never have started; its queued time is when it ended.
        sql = (
            "DELETE FROM job_runs WHERE status IN (SELECT value FROM json_each(:finished))"
            " AND COALESCE(finished_at, queued_at) < :before"
        )
        args = {"finished": json.dumps(sorted(FINISHED)), "before": q.micros(finished_before)}
        return await self.db.transaction(lambda conn: conn.execute(sql, args).rowcount)
