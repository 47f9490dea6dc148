"""The backfill job ledger on SQLite: :class:`~mds.storage.base.BackfillLedger`.

Job ranges are epoch seconds and stamps epoch microseconds (``sql.py``). Writes are one
transaction each on the writer thread; reads run on the reader connection.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillRecord, BackfillStatus
from mds.errors import NotFound
from mds.storage.base import NewBackfill
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections


class SqliteLedger:
    """The :class:`~mds.storage.base.BackfillLedger` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

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
        stamp = q.micros(now)
        params = (symbol, interval.value, q.secs(start), q.secs(end), Tier(priority).value)

        def run(conn: sqlite3.Connection) -> int:
            cur = conn.execute(q.CREATE_JOB, (*params, stamp, stamp))
            assert cur.lastrowid is not None
            return cur.lastrowid

        job_id = await self.db.transaction(run)
        record = await self.get_backfill(job_id)
        assert record is not None
        return record

    async def create_backfills(self, specs: Sequence[NewBackfill], *, now: datetime) -> list[BackfillRecord]:
        # One writer-thread hop. One ``execute`` per row inside the transaction gives each
        # row's id from ``lastrowid`` in order; the records are built from what was bound,
        # not read back.
        stamp = q.micros(now)
        rows = [
            (s.symbol, Interval(s.interval).value, q.secs(s.start), q.secs(s.end), Tier(s.priority).value)
            for s in specs
        ]
        if not rows:
            return []

        def run(conn: sqlite3.Connection) -> list[int]:
            ids = []
            for row in rows:
                cur = conn.execute(q.CREATE_JOB, (*row, stamp, stamp))
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
            return ids

        ids = await self.db.transaction(run)
        created = q.from_micros(stamp)
        return [q.new_job(i, row, created) for i, row in zip(ids, rows, strict=True)]

    async def update_backfill(
        self,
        job_id: int,
        *,
        status: BackfillStatus,
        now: datetime,
        attempts: int | None = None,
        last_error: str | None = None,
    ) -> None:
        params = (BackfillStatus(status).value, q.micros(now), attempts, last_error, job_id)

        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE backfill_jobs SET status = ?, updated_at = ?,"
                " attempts = COALESCE(?, attempts), last_error = COALESCE(?, last_error)"
                " WHERE id = ?",
                params,
            ).rowcount

        if await self.db.transaction(run) == 0:
            raise NotFound("backfill job", str(job_id))

    async def update_backfill_range(
        self, job_id: int, start: datetime, end: datetime, *, now: datetime
    ) -> bool:
        params = (q.secs(start), q.secs(end), q.micros(now), job_id)

        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE backfill_jobs SET start_ts = ?, end_ts = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
                params,
            ).rowcount

        return await self.db.transaction(run) == 1

    async def get_backfill(self, job_id: int) -> BackfillRecord | None:
        sql = f"SELECT {q.JOB_COLS} FROM backfill_jobs WHERE id = ?"
        row = await self.db.on_reader(lambda conn: conn.execute(sql, (job_id,)).fetchone())
        return None if row is None else q.job(row)

    async def list_backfills(
        self,
        *,
        status: BackfillStatus | None = None,
        tier: Tier | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[BackfillRecord]:
        sql = f"SELECT {q.JOB_COLS} FROM backfill_jobs WHERE 1 = 1"
        params: list[Any] = []
        if status is not None:
            sql += " AND status = ?"
            params.append(BackfillStatus(status).value)
        if tier is not None:
            sql += " AND priority = ?"
            params.append(Tier(tier).value)
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?"
        params += [max(0, limit), max(0, offset)]
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [q.job(r) for r in rows]

    async def backfill_stats(self) -> dict[str, Any]:
        # Both reads in one read transaction, so one snapshot.
        def run(conn: sqlite3.Connection) -> tuple[list[tuple[str, str, int]], int | None]:
            conn.execute("BEGIN")
            try:
                counts = conn.execute(
                    "SELECT priority, status, count(*) FROM backfill_jobs GROUP BY 1, 2"
                ).fetchall()
                oldest = conn.execute(
                    "SELECT min(created_at) FROM backfill_jobs WHERE status = 'queued'"
                ).fetchone()[0]
            finally:
                conn.execute("COMMIT")
            return counts, oldest

        counts, oldest = await self.db.on_reader(run)
        statuses = [s.value for s in BackfillStatus]
        by_status = dict.fromkeys(statuses, 0)
        by_tier = {t.value: dict.fromkeys(statuses, 0) for t in Tier}
        for tier, status, n in counts:
            by_status[status] += n
            by_tier[tier][status] += n
        return {
            "by_status": by_status,
            "by_tier": by_tier,
            "oldest_queued_created_at": None if oldest is None else q.from_micros(oldest),
            "failed_total": by_status[BackfillStatus.FAILED.value],
        }

    async def oldest_queued_backfills(self) -> dict[Tier, datetime]:
        # The status index bounds the scan by the backlog, not the table.
        sql = "SELECT priority, min(created_at) FROM backfill_jobs WHERE status = ? GROUP BY priority"
        rows = await self.db.on_reader(
            lambda conn: conn.execute(sql, (BackfillStatus.QUEUED.value,)).fetchall()
        )
        return {Tier(tier): q.from_micros(first) for tier, first in rows}

    async def purge_backfills(self, *, status: BackfillStatus, older_than: datetime) -> int:
        params = (BackfillStatus(status).value, q.micros(older_than))
        return await self.db.transaction(
            lambda conn: (
                conn.execute("DELETE FROM backfill_jobs WHERE status = ? AND updated_at < ?", params).rowcount
            )
        )

    async def requeue_backfill(self, job_id: int, *, now: datetime) -> BackfillRecord | None:
        rows = await self._requeue(" AND id = ?", [job_id], now)
        return rows[0] if rows else None

    async def requeue_failed(self, *, tier: Tier | None, now: datetime) -> list[BackfillRecord]:
        if tier is None:
            return await self._requeue("", [], now)
        return await self._requeue(" AND priority = ?", [Tier(tier).value], now)

    async def _requeue(self, where: str, params: list[Any], now: datetime) -> list[BackfillRecord]:
        # ``where`` is one of the constant fragments above; values stay parameters.
        sql = (
            "UPDATE backfill_jobs SET status = 'queued', attempts = 0, updated_at = ?"
            f" WHERE status = 'failed'{where} RETURNING {q.JOB_COLS}"
        )
        rows = await self.db.transaction(lambda conn: conn.execute(sql, [q.micros(now), *params]).fetchall())
        return sorted((q.job(r) for r in rows), key=lambda j: j.id)

    async def active_backfills(
        self, symbol: str | None = None, interval: Interval | None = None
    ) -> list[BackfillRecord]:
        sql = f"SELECT {q.JOB_COLS} FROM backfill_jobs WHERE status IN ('queued', 'running')"
        params: list[Any] = []
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        if interval is not None:
            sql += " AND interval = ?"
            params.append(Interval(interval).value)
        sql += " ORDER BY created_at, id"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [q.job(r) for r in rows]

    async def active_backfills_many(
        self, symbols: Sequence[str], interval: Interval
    ) -> dict[str, list[BackfillRecord]]:
        if not symbols:
            return {}
        params = (Interval(interval).value, json.dumps(list(dict.fromkeys(symbols))))
        rows = await self.db.on_reader(lambda conn: conn.execute(q.ACTIVE_JOBS_OF, params).fetchall())
        out: dict[str, list[BackfillRecord]] = {}
        for r in rows:
            rec = q.job(r)
            out.setdefault(rec.symbol, []).append(rec)
        return out
