"""The backfill job ledger on PostgreSQL: :class:`~mds.storage.base.BackfillLedger`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mds.domain.models import Interval, Tier, ensure_utc
from mds.domain.records import BackfillRecord, BackfillStatus
from mds.errors import NotFound
from mds.storage.base import NewBackfill
from mds.storage.postgres import sql as q
from mds.storage.postgres.connection import PostgresPool


class PostgresLedger:
    """The :class:`~mds.storage.base.BackfillLedger` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def create_backfill(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        priority: Tier,
        *,
        now: datetime,
    ) -> BackfillRecord:
        args = (
            symbol,
            Interval(interval).value,
            ensure_utc(start),
            ensure_utc(end),
            Tier(priority).value,
            ensure_utc(now),
        )
        row = await self.db.write(lambda conn: conn.fetchrow(q.CREATE_JOB, *args))
        assert row is not None  # INSERT ... RETURNING one row
        return q.job(row)

    async def create_backfills(self, specs: Sequence[NewBackfill], *, now: datetime) -> list[BackfillRecord]:
        # One statement (``INSERT ... SELECT unnest``). The rows come back from
        # ``RETURNING``, which promises no order, so they are matched to the specs by
        # content (equal specs take ids in ascending order).
        if not specs:
            return []
        columns = (
            [s.symbol for s in specs],
            [Interval(s.interval).value for s in specs],
            [ensure_utc(s.start) for s in specs],
            [ensure_utc(s.end) for s in specs],
            [Tier(s.priority).value for s in specs],
        )
        rows = await self.db.write(lambda conn: conn.fetch(q.CREATE_JOBS, *columns, ensure_utc(now)))
        by_spec: dict[tuple[Any, ...], list[BackfillRecord]] = {}
        for rec in sorted((q.job(r) for r in rows), key=lambda r: r.id, reverse=True):
            by_spec.setdefault(q.job_key(rec), []).append(rec)
        return [by_spec[tuple(key)].pop() for key in zip(*columns, strict=True)]

    async def update_backfill(
        self,
        job_id: int,
        *,
        status: BackfillStatus,
        now: datetime,
        attempts: int | None = None,
        last_error: str | None = None,
    ) -> None:
        args = (BackfillStatus(status).value, ensure_utc(now), attempts, last_error, job_id)
        if q.rowcount(await self.db.execute(q.UPDATE_JOB, *args)) == 0:
            raise NotFound("backfill job", str(job_id))

    async def update_backfill_range(
        self, job_id: int, start: datetime, end: datetime, *, now: datetime
    ) -> bool:
        status = await self.db.execute(
            "UPDATE backfill_jobs SET start_ts = $1, end_ts = $2, updated_at = $3"
            " WHERE id = $4 AND status = 'queued'",
            ensure_utc(start),
            ensure_utc(end),
            ensure_utc(now),
            job_id,
        )
        return q.rowcount(status) == 1

    async def get_backfill(self, job_id: int) -> BackfillRecord | None:
        row = await self.db.fetchrow(f"SELECT {q.JOB_COLS} FROM backfill_jobs WHERE id = $1", job_id)
        return None if row is None else q.job(row)

    async def list_backfills(
        self,
        *,
        status: BackfillStatus | None = None,
        tier: Tier | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[BackfillRecord]:
        sql = f"SELECT {q.JOB_COLS} FROM backfill_jobs WHERE true"
        args: list[Any] = []
        if status is not None:
            args.append(BackfillStatus(status).value)
            sql += f" AND status = ${len(args)}"
        if tier is not None:
            args.append(Tier(tier).value)
            sql += f" AND priority = ${len(args)}"
        args += [max(0, limit), max(0, offset)]
        sql += f" ORDER BY updated_at DESC, id DESC LIMIT ${len(args) - 1} OFFSET ${len(args)}"
        return [q.job(r) for r in await self.db.fetch(sql, *args)]

    async def backfill_stats(self) -> dict[str, Any]:
        # One statement, so one snapshot.
        statuses = [s.value for s in BackfillStatus]
        by_status = dict.fromkeys(statuses, 0)
        by_tier = {t.value: dict.fromkeys(statuses, 0) for t in Tier}
        oldest: datetime | None = None
        for tier, status, n, first in await self.db.fetch(q.JOB_STATS):
            by_status[status] += n
            by_tier[tier][status] += n
            if first is not None and (oldest is None or first < oldest):
                oldest = first
        return {
            "by_status": by_status,
            "by_tier": by_tier,
            "oldest_queued_created_at": oldest,
            "failed_total": by_status[BackfillStatus.FAILED.value],
        }

    async def oldest_queued_backfills(self) -> dict[Tier, datetime]:
        # The status index bounds the scan by the backlog, not the table.
        rows = await self.db.fetch(
            "SELECT priority, min(created_at) FROM backfill_jobs WHERE status = $1 GROUP BY priority",
            BackfillStatus.QUEUED.value,
        )
        return {Tier(tier): first for tier, first in rows}

    async def purge_backfills(self, *, status: BackfillStatus, older_than: datetime) -> int:
        done = await self.db.execute(
            "DELETE FROM backfill_jobs WHERE status = $1 AND updated_at < $2",
            BackfillStatus(status).value,
            ensure_utc(older_than),
        )
        return q.rowcount(done)

    async def requeue_backfill(self, job_id: int, *, now: datetime) -> BackfillRecord | None:
        rows = await self._requeue(" AND id = $2", [job_id], now)
        return rows[0] if rows else None

    async def requeue_failed(self, *, tier: Tier | None, now: datetime) -> list[BackfillRecord]:
        if tier is None:
            return await self._requeue("", [], now)
        return await self._requeue(" AND priority = $2", [Tier(tier).value], now)

    async def _requeue(self, where: str, args: list[Any], now: datetime) -> list[BackfillRecord]:
        # ``where`` is one of the constant fragments above; values stay parameters.
        sql = (
            "UPDATE backfill_jobs SET status = 'queued', attempts = 0, updated_at = $1"
            f" WHERE status = 'failed'{where} RETURNING {q.JOB_COLS}"
        )
        rows = await self.db.write(lambda conn: conn.fetch(sql, ensure_utc(now), *args))
        return sorted((q.job(r) for r in rows), key=lambda j: j.id)

    async def active_backfills(
        self, symbol: str | None = None, interval: Interval | None = None
    ) -> list[BackfillRecord]:
        sql = f"SELECT {q.JOB_COLS} FROM backfill_jobs WHERE status IN ('queued', 'running')"
        args: list[Any] = []
        if symbol is not None:
            args.append(symbol)
            sql += f" AND symbol = ${len(args)}"
        if interval is not None:
            args.append(Interval(interval).value)
            sql += f" AND interval = ${len(args)}"
        rows = await self.db.fetch(sql + " ORDER BY created_at, id", *args)
        return [q.job(r) for r in rows]

    async def active_backfills_many(
        self, symbols: Sequence[str], interval: Interval
    ) -> dict[str, list[BackfillRecord]]:
        if not symbols:
            return {}
        rows = await self.db.fetch(q.ACTIVE_JOBS_OF, Interval(interval).value, list(dict.fromkeys(symbols)))
        out: dict[str, list[BackfillRecord]] = {}
        for r in rows:
            rec = q.job(r)
            out.setdefault(rec.symbol, []).append(rec)
        return out
