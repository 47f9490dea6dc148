"""SqliteStore: the embedded default Store, on the standard library's ``sqlite3``.

Threading: every call runs off the event loop on one of two single-thread executors. The
writer thread owns the only write connection, so a whole write transaction (staging,
history copy, upsert) is one hop to that thread. That is why this is not aiosqlite, which
costs a thread hop per statement. The reader thread owns a second, ``query_only``
connection; in WAL mode it reads a consistent snapshot while a write is in progress.
Both threads take live work before queued backfill work (``mds.storage.lanes``).

``:memory:`` databases use one connection for both roles: two connections would need a
shared cache, and shared-cache readers fail at once with "database table is locked"
(not a retryable busy) whenever the writer holds a transaction.

Point-in-time layout (hand-written; no library does PIT bars): ``candles`` holds the
current revision of each bar, ``candle_history`` the superseded ones with
``superseded_at``. See ``migrations/sqlite/0001_initial.sql`` for units.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mds.domain.models import Bar, BarStatus, Interval, Quote, Tier
from mds.domain.records import (
    BackfillRecord,
    BackfillStatus,
    Cursor,
    UniverseEntry,
    WriteResult,
)
from mds.errors import NotFound, StorageError
from mds.storage import _sqlite_continuity as cont
from mds.storage import _sqlite_sql as q
from mds.storage.base import NewBackfill
from mds.storage.lanes import LaneExecutor
from mds.storage.migrate import SQLITE_MIGRATIONS, apply_sqlite, discover

T = TypeVar("T")


class SqliteStore:
    """The Store protocol on a SQLite file (or ``":memory:"``).

    Args:
        path: Database file (its directory must exist) or ``":memory:"``.
        busy_timeout_ms: How long a connection waits for another process's lock.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self._memory = self.path == ":memory:"
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._writer: Executor | None = None
        self._reader: Executor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None

    # ----------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect both connections and apply pending migrations."""
        if self._writer is not None:
            return
        self._writer = LaneExecutor("mds-sqlite-writer")
        try:
            self._wconn = await self._hop(self._writer, self._connect, False)
            await self.migrate()
            await self._hop(self._writer, lambda: self._w().execute(q.STAGE_DDL))
            if self._memory:
                self._reader, self._rconn = self._writer, self._wconn
            else:
                self._reader = LaneExecutor("mds-sqlite-reader")
                self._rconn = await self._hop(self._reader, self._connect, True)
        except BaseException:
            await self.close()
            raise

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE
        # themselves so the lock is taken up front and busy_timeout applies to it.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            # PRAGMA values cannot be bound parameters; the only one formatted is an int.
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            if not self._memory:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA temp_store = MEMORY")
            if read_only:
                conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Close both connections and stop both threads; safe to call twice."""
        for executor, attr in ((self._reader, "_rconn"), (self._writer, "_wconn")):
            conn = getattr(self, attr)
            setattr(self, attr, None)
            if executor is not None and conn is not None:
                await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        for executor in {self._reader, self._writer} - {None}:
            executor.shutdown(wait=True)  # type: ignore[union-attr]
        self._reader = self._writer = None

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the versions applied."""
        migrations = discover(SQLITE_MIGRATIONS)
        return await self._on_writer(lambda conn: apply_sqlite(conn, migrations))

    async def ping(self) -> None:
        """Run ``SELECT 1``; raise StorageError when the store cannot answer."""
        await self._on_reader(lambda conn: conn.execute("SELECT 1").fetchone())

    async def backend_info(self) -> dict[str, Any]:
        """The embedded backend: no TimescaleDB, rollups computed on read."""
        version = await self._on_reader(lambda conn: conn.execute("SELECT sqlite_version()").fetchone()[0])
        return {
            "backend": "sqlite",
            "timescaledb": False,
            "mode": "embedded",
            "rollups": "on_read",
            "server_version": version,
        }

    # ---------------------------------------------------------------- plumbing
    def _w(self) -> sqlite3.Connection:
        assert self._wconn is not None
        return self._wconn

    @staticmethod
    async def _hop(executor: Executor, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: {exc}") from exc

    async def _on_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None or self._rconn is None:
            raise StorageError("the store is not open")
        conn = self._rconn
        return await self._hop(self._reader, fn, conn)

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None or self._wconn is None:
            raise StorageError("the store is not open")
        conn = self._wconn
        return await self._hop(self._writer, fn, conn)

    async def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one write transaction on the writer thread (one hop in all)."""

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._on_writer(run)

    # --------------------------------------------------------------------- bars
    async def write_bars(self, bars: Sequence[Bar], *, as_of: datetime) -> WriteResult:
        """Store a batch in one transaction; the counts are over distinct bar keys.

        ``as_of`` stamps every bar (the bars' own ``as_of`` is ignored). When one key
        appears twice in ``bars`` the later one wins. Changed bars move their current row
        to ``candle_history`` with ``superseded_at = as_of`` and become a new revision.
        """
        stamp = q.micros(as_of)
        # Keyed by the primary key so a repeated key keeps its last bar.
        staged: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        for b in bars:
            key = (b.symbol, Interval(b.interval).value, q.secs(b.ts))
            staged[key] = (
                *key,
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume,
                b.provider,
                BarStatus(b.status).value,
                int(b.adjusted),
            )
        if not staged:
            return WriteResult()

        def run(conn: sqlite3.Connection) -> WriteResult:
            conn.execute("DELETE FROM temp.stage_bars")
            conn.executemany(
                "INSERT INTO temp.stage_bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                staged.values(),
            )
            inserted, revised = conn.execute(q.CLASSIFY).fetchone()
            if revised:
                conn.execute(q.TO_HISTORY, (stamp,))
            if inserted or revised:
                conn.execute(q.UPSERT, (stamp,))
            # A bar that exists is not empty: new bars drop their "no trades" evidence.
            if inserted and conn.execute(cont.ANY_EMPTY_ROWS).fetchone()[0]:
                for sql in cont.CLEAR_STAGED:
                    conn.execute(sql)
            conn.execute("DELETE FROM temp.stage_bars")
            return WriteResult(inserted, revised, len(staged) - inserted - revised)

        return await self._transaction(run)

    async def read_bars(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        *,
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> list[Bar]:
        """Bars with ``start <= ts < end``, ascending; ``limit`` keeps the newest N.

        With ``as_of=T``: current rows learned at or before T, plus history rows that were
        current at T (``as_of <= T < superseded_at``). Without it only ``candles`` is read.
        """
        if limit is not None and limit <= 0:
            return []
        rng = (symbol, interval.value, q.secs(start), q.secs(end))
        if as_of is None:
            sql = f"SELECT {q.BAR_COLS} FROM candles WHERE {q.RANGE}"
            params: tuple[Any, ...] = rng
        else:
            t = q.micros(as_of)
            sql = (
                f"SELECT {q.BAR_COLS} FROM candles WHERE {q.RANGE} AND as_of <= ?"
                f" UNION ALL SELECT {q.BAR_COLS} FROM candle_history"
                f" WHERE {q.RANGE} AND as_of <= ? AND superseded_at > ?"
            )
            params = (*rng, t, *rng, t, t)
        if limit is None:
            sql += " ORDER BY ts"
        else:
            sql += " ORDER BY ts DESC LIMIT ?"
            params = (*params, limit)
        rows = await self._on_reader(lambda conn: conn.execute(sql, params).fetchall())
        if limit is not None:
            rows.reverse()
        return [q.bar(r) for r in rows]

    async def bar_timestamps(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        """Epoch seconds of the current bars in range, ascending."""
        params = (symbol, interval.value, q.secs(start), q.secs(end))
        sql = f"SELECT ts FROM candles WHERE {q.RANGE} ORDER BY ts"
        rows = await self._on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [r[0] for r in rows]

    async def latest_bar(self, symbol: str, interval: Interval) -> Bar | None:
        sql = f"SELECT {q.BAR_COLS} FROM candles WHERE symbol = ? AND interval = ? ORDER BY ts DESC LIMIT 1"
        params = (symbol, interval.value)
        row = await self._on_reader(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else q.bar(row)

    async def bar_revisions(self, symbol: str, interval: Interval, ts: datetime) -> list[Bar]:
        """Every revision of one bar, oldest first."""
        key = (symbol, interval.value, q.secs(ts))
        where = "symbol = ? AND interval = ? AND ts = ?"
        sql = (
            f"SELECT {q.BAR_COLS} FROM candle_history WHERE {where}"
            f" UNION ALL SELECT {q.BAR_COLS} FROM candles WHERE {where} ORDER BY revision"
        )
        rows = await self._on_reader(lambda conn: conn.execute(sql, (*key, *key)).fetchall())
        return [q.bar(r) for r in rows]

    # ------------------------------------------------------------------- quotes
    async def write_quotes(self, quotes: Sequence[Quote]) -> int:
        """Store quotes; a second quote with the same (symbol, ts, provider) is ignored.

        Returns:
            How many quotes were new.
        """
        rows = [
            (
                x.symbol,
                q.micros(x.ts),
                x.bid,
                x.ask,
                x.bid_size,
                x.ask_size,
                x.last,
                x.provider,
                None if x.as_of is None else q.micros(x.as_of),
            )
            for x in quotes
        ]
        if not rows:
            return 0

        def run(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO quotes_l1 (symbol, ts, bid, ask, bid_size, ask_size, last,"
                " provider, as_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            return conn.total_changes - before

        return await self._transaction(run)

    async def latest_quote(self, symbol: str) -> Quote | None:
        sql = (
            "SELECT symbol, ts, bid, ask, last, bid_size, ask_size, provider, as_of"
            " FROM quotes_l1 WHERE symbol = ? ORDER BY ts DESC, as_of DESC LIMIT 1"
        )
        row = await self._on_reader(lambda conn: conn.execute(sql, (symbol,)).fetchone())
        if row is None:
            return None
        sym, ts, bid, ask, last, bid_size, ask_size, provider, as_of = row
        return Quote(
            symbol=sym,
            ts=q.from_micros(ts),
            bid=bid,
            ask=ask,
            last=last,
            bid_size=bid_size,
            ask_size=ask_size,
            provider=provider,
            as_of=None if as_of is None else q.from_micros(as_of),
        )

    # ----------------------------------------------------------------- universe
    async def upsert_universe(
        self, entries: Sequence[UniverseEntry], *, version_tag: str, source_meta: dict[str, Any]
    ) -> None:
        """Make ``entries`` the universe (others become inactive) and record a version.

        A repeated ``version_tag`` updates that version's metadata instead of failing, so
        re-running the same universe load is harmless.
        """
        now = q.now_micros()
        rows = [(e.symbol, Tier(e.tier).value, int(e.active), e.name, e.exchange, now) for e in entries]
        symbols = json.dumps([e.symbol for e in entries])
        meta = json.dumps(source_meta, sort_keys=True, default=str)

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO symbol_universe (symbol, tier, active, name, exchange, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (symbol) DO UPDATE SET"
                " tier = excluded.tier, active = excluded.active, name = excluded.name,"
                " exchange = excluded.exchange, updated_at = excluded.updated_at",
                rows,
            )
            conn.execute(
                "UPDATE symbol_universe SET active = 0, updated_at = ?"
                " WHERE active = 1 AND symbol NOT IN (SELECT value FROM json_each(?))",
                (now, symbols),
            )
            conn.execute(
                "INSERT INTO universe_versions (version_tag, source_meta, created_at)"
                " VALUES (?, ?, ?) ON CONFLICT (version_tag) DO UPDATE SET"
                " source_meta = excluded.source_meta, created_at = excluded.created_at",
                (version_tag, meta, now),
            )

        await self._transaction(run)

    async def universe(self, *, tier: Tier | None = None, active_only: bool = True) -> list[UniverseEntry]:
        """Universe entries sorted by tier, then symbol."""
        sql = "SELECT symbol, tier, active, name, exchange FROM symbol_universe WHERE 1 = 1"
        params: list[Any] = []
        if tier is not None:
            sql += " AND tier = ?"
            params.append(Tier(tier).value)
        if active_only:
            sql += " AND active = 1"
        sql += " ORDER BY tier, symbol"
        rows = await self._on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [UniverseEntry(s, Tier(t), bool(a), n, x) for s, t, a, n, x in rows]

    async def get_symbol(self, symbol: str) -> UniverseEntry | None:
        sql = "SELECT symbol, tier, active, name, exchange FROM symbol_universe WHERE symbol = ?"
        row = await self._on_reader(lambda conn: conn.execute(sql, (symbol,)).fetchone())
        if row is None:
            return None
        s, t, a, n, x = row
        return UniverseEntry(s, Tier(t), bool(a), n, x)

    # ------------------------------------------------------------------ cursors
    async def get_cursor(self, symbol: str, interval: Interval, source: str) -> Cursor | None:
        sql = (
            "SELECT last_ts, updated_at FROM ingestion_cursor"
            " WHERE symbol = ? AND interval = ? AND source = ?"
        )
        params = (symbol, interval.value, source)
        row = await self._on_reader(lambda conn: conn.execute(sql, params).fetchone())
        if row is None:
            return None
        return Cursor(symbol, interval, source, q.from_secs(row[0]), q.from_micros(row[1]))

    async def advance_cursor(
        self, symbol: str, interval: Interval, source: str, ts: datetime, *, now: datetime
    ) -> None:
        """Move the cursor to ``ts`` if later; a stale ``ts`` leaves it (and updated_at) be."""
        params = (symbol, interval.value, source, q.secs(ts), q.micros(now))

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO ingestion_cursor (symbol, interval, source, last_ts, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (symbol, interval, source) DO UPDATE SET"
                " last_ts = excluded.last_ts, updated_at = excluded.updated_at"
                " WHERE excluded.last_ts > ingestion_cursor.last_ts",
                params,
            )

        await self._transaction(run)

    # ------------------------------------------------------------ backfill jobs
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

        job_id = await self._transaction(run)
        record = await self.get_backfill(job_id)
        assert record is not None
        return record

    async def create_backfills(self, specs: Sequence[NewBackfill], *, now: datetime) -> list[BackfillRecord]:
        """Insert every spec as a queued job in one transaction (one writer-thread hop).

        One ``execute`` per row inside the transaction gives each row's id from
        ``lastrowid`` in order; the records are built from what was bound, not read back.
        """
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

        ids = await self._transaction(run)
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
        """Set a job's status; ``attempts``/``last_error`` change only when given.

        Raises:
            NotFound: No job has this id.
        """
        params = (BackfillStatus(status).value, q.micros(now), attempts, last_error, job_id)

        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE backfill_jobs SET status = ?, updated_at = ?,"
                " attempts = COALESCE(?, attempts), last_error = COALESCE(?, last_error)"
                " WHERE id = ?",
                params,
            ).rowcount

        if await self._transaction(run) == 0:
            raise NotFound("backfill job", str(job_id))

    async def update_backfill_range(
        self, job_id: int, start: datetime, end: datetime, *, now: datetime
    ) -> bool:
        """Widen a still-queued job to [start, end) (merging); False if it is no longer queued."""
        params = (q.secs(start), q.secs(end), q.micros(now), job_id)

        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE backfill_jobs SET start_ts = ?, end_ts = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
                params,
            ).rowcount

        return await self._transaction(run) == 1

    async def get_backfill(self, job_id: int) -> BackfillRecord | None:
        sql = f"SELECT {q.JOB_COLS} FROM backfill_jobs WHERE id = ?"
        row = await self._on_reader(lambda conn: conn.execute(sql, (job_id,)).fetchone())
        return None if row is None else q.job(row)

    async def list_backfills(
        self,
        *,
        status: BackfillStatus | None = None,
        tier: Tier | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[BackfillRecord]:
        """Jobs newest first (by ``updated_at``, then id), optionally filtered and paged."""
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
        rows = await self._on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [q.job(r) for r in rows]

    async def backfill_stats(self) -> dict[str, Any]:
        """Job counts by status and by tier, the oldest queued job's age, the DLQ size.

        Every status and tier appears, with zero counts where there are no jobs, so the
        shape is the same on an empty store.
        """

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

        counts, oldest = await self._on_reader(run)
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

    async def purge_backfills(self, *, status: BackfillStatus, older_than: datetime) -> int:
        """Delete jobs with ``status`` last updated before ``older_than``; return how many."""
        params = (BackfillStatus(status).value, q.micros(older_than))
        return await self._transaction(
            lambda conn: (
                conn.execute("DELETE FROM backfill_jobs WHERE status = ? AND updated_at < ?", params).rowcount
            )
        )

    async def requeue_backfill(self, job_id: int, *, now: datetime) -> BackfillRecord | None:
        """Put one failed job back in the queue (attempts reset, ``last_error`` kept).

        Returns:
            The requeued job, or None when no job has this id or it is not failed.
        """
        rows = await self._requeue(" AND id = ?", [job_id], now)
        return rows[0] if rows else None

    async def requeue_failed(self, *, tier: Tier | None, now: datetime) -> list[BackfillRecord]:
        """Put every failed job (of ``tier``, or of all tiers) back in the queue, by id."""
        if tier is None:
            return await self._requeue("", [], now)
        return await self._requeue(" AND priority = ?", [Tier(tier).value], now)

    async def _requeue(self, where: str, params: list[Any], now: datetime) -> list[BackfillRecord]:
        # ``where`` is one of the constant fragments above; values stay parameters.
        sql = (
            "UPDATE backfill_jobs SET status = 'queued', attempts = 0, updated_at = ?"
            f" WHERE status = 'failed'{where} RETURNING {q.JOB_COLS}"
        )
        rows = await self._transaction(lambda conn: conn.execute(sql, [q.micros(now), *params]).fetchall())
        return sorted((q.job(r) for r in rows), key=lambda j: j.id)

    async def active_backfills(
        self, symbol: str | None = None, interval: Interval | None = None
    ) -> list[BackfillRecord]:
        """Queued and running jobs, oldest first (by ``created_at``, then id)."""
        sql = f"SELECT {q.JOB_COLS} FROM backfill_jobs WHERE status IN ('queued', 'running')"
        params: list[Any] = []
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        if interval is not None:
            sql += " AND interval = ?"
            params.append(Interval(interval).value)
        sql += " ORDER BY created_at, id"
        rows = await self._on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [q.job(r) for r in rows]

    async def active_backfills_many(
        self, symbols: Sequence[str], interval: Interval
    ) -> dict[str, list[BackfillRecord]]:
        """Queued and running jobs of ``interval`` per symbol (one query), oldest first."""
        if not symbols:
            return {}
        params = (Interval(interval).value, json.dumps(list(dict.fromkeys(symbols))))
        rows = await self._on_reader(lambda conn: conn.execute(q.ACTIVE_JOBS_OF, params).fetchall())
        out: dict[str, list[BackfillRecord]] = {}
        for r in rows:
            rec = q.job(r)
            out.setdefault(rec.symbol, []).append(rec)
        return out

    # --------------------------------------------------------------- continuity
    async def scan_missing(
        self, interval: Interval, expected: np.ndarray, symbols: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Per symbol, the ``expected`` epochs neither stored nor confirmed empty.

        Only symbols with something missing appear. Reads current revisions only, on the
        reader connection (one snapshot), so writers are not held up.
        """
        fn = functools.partial(
            cont.scan_missing,
            interval=Interval(interval).value,
            expected=expected,
            symbols=list(symbols),
        )
        return await self._on_reader(fn)

    async def record_empty_evidence(
        self,
        symbol: str,
        interval: Interval,
        epochs: Sequence[int],
        provider: str,
        *,
        now: datetime,
        needed_answers: int,
        needed_providers: int,
    ) -> list[int]:
        """Record that one complete answer from ``provider`` lacked these bar times.

        Returns:
            The epochs that thereby became confirmed empty: at least ``needed_answers``
            answers lacked them, from at least ``needed_providers`` distinct providers.
            Stored bar times get no evidence.
        """
        if needed_answers < 1 or needed_providers < 1:
            raise ValueError("needed_answers and needed_providers must be at least 1")
        fn = functools.partial(
            cont.record_empty_evidence,
            symbol=symbol,
            interval=Interval(interval).value,
            epochs=list(epochs),
            provider=provider,
            now_us=q.micros(now),
            needed_answers=needed_answers,
            needed_providers=needed_providers,
        )
        return await self._transaction(fn)

    async def clear_empty_evidence(self, symbol: str, interval: Interval, epochs: Sequence[int]) -> None:
        """Forget the evidence (and any confirmation) for these bar times."""
        fn = functools.partial(
            cont.clear_empty_evidence,
            symbol=symbol,
            interval=Interval(interval).value,
            epochs=list(epochs),
        )
        await self._transaction(fn)

    async def confirmed_empty(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        """Epoch seconds of confirmed-empty bar times with ``start <= ts < end``, ascending."""
        params = (symbol, Interval(interval).value, q.secs(start), q.secs(end))
        sql = f"SELECT ts FROM confirmed_empty WHERE {q.RANGE} ORDER BY ts"
        rows = await self._on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [r[0] for r in rows]

    async def count_confirmed_empty(
        self,
        interval: Interval,
        start: datetime,
        end: datetime,
        symbols: Sequence[str] | None = None,
    ) -> int:
        """How many confirmed-empty bar times lie in ``[start, end)`` (of ``symbols``)."""
        sql = "SELECT count(*) FROM confirmed_empty WHERE interval = ? AND ts >= ? AND ts < ?"
        params: list[Any] = [Interval(interval).value, q.secs(start), q.secs(end)]
        if symbols is not None:
            sql += " AND symbol IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(dict.fromkeys(symbols))))
        row = await self._on_reader(lambda conn: conn.execute(sql, params).fetchone())
        return int(row[0])
