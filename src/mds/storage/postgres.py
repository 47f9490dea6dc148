"""PostgresStore: the production Store, on asyncpg (PostgreSQL 14+, TimescaleDB when present).

Same contract and point-in-time layout as :class:`mds.storage.sqlite.SqliteStore`:
``candles`` holds the current revision of each bar, ``candle_history`` the superseded ones
with ``superseded_at``. A bulk write COPYs the batch into a per-connection temporary
staging table and runs one merge statement (see ``_pg_sql.MERGE``); a row trigger files
replaced rows as history inside that statement. A batch whose series hold no bar yet in
its time span (a backfill, a new session) skips staging and is COPYed straight into
``candles``: every key is new, so there is nothing to merge.

Outages: writes retry connection-level failures with exponential back-off for up to
``retry_max_seconds`` and then raise StorageError, so a write that returned was committed
and nothing acknowledged is lost (a write whose COMMIT was cut off is run again, which the
idempotent merge makes harmless). Reads and ``ping`` retry once at once (to replace pooled
connections a restarted server has closed) and otherwise raise StorageError immediately.

Modes: with the ``timescaledb`` extension available, migration makes the time-series
tables hypertables with compression, retention and 5m/1h continuous aggregates. Without it
the plain schema's primary keys serve the same queries. In both, the service's 5m/15m/1h
reads are rolled up on read in the database (:meth:`read_rollup`, ``date_bin`` from each
session's open), point in time like every read. :meth:`backend_info` says which mode is on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
import numpy as np

from mds.domain import work
from mds.domain.models import Bar, BarStatus, Interval, Quote, Tier, ensure_utc
from mds.domain.records import (
    BackfillRecord,
    BackfillStatus,
    Cursor,
    UniverseEntry,
    WriteResult,
)
from mds.errors import NotFound, StorageError
from mds.storage import _pg_continuity as cont
from mds.storage import _pg_sql as q
from mds.storage.base import NewBackfill
from mds.storage.migrate import (
    POSTGRES_MIGRATIONS,
    TIMESCALEDB_MIGRATIONS,
    apply_postgres,
    discover,
)

T = TypeVar("T")
Job = Callable[[asyncpg.Connection], Awaitable[T]]

log = logging.getLogger(__name__)

_FIRST_DELAY = 0.05
_MAX_DELAY = 2.0


def _series_spans(
    records: Sequence[tuple[Any, ...]],
) -> tuple[list[str], list[str], list[datetime], list[datetime]]:
    """Per (symbol, interval) in a batch: the first and last ts, as four parallel arrays."""
    spans: dict[tuple[str, str], list[datetime]] = {}
    for r in records:
        span = spans.get((r[0], r[1]))
        if span is None:
            spans[(r[0], r[1])] = [r[2], r[2]]
        elif r[2] < span[0]:
            span[0] = r[2]
        elif r[2] > span[1]:
            span[1] = r[2]
    keys = list(spans)
    return (
        [k[0] for k in keys],
        [k[1] for k in keys],
        [spans[k][0] for k in keys],
        [spans[k][1] for k in keys],
    )


async def _copy(conn: asyncpg.Connection, table: str, records: Sequence[tuple[Any, ...]]) -> None:
    """COPY ``records`` into ``table``, failing at once if the connection drops meanwhile.

    asyncpg (0.32) waits for its flow control to allow writing again without looking at
    the connection: a COPY paused on a full socket when the server dies waits for ever
    (``connection_lost`` never wakes it; seen in test_postgres_outage, where an in-flight
    write then outlived its whole retry budget). The connection's termination listener
    does fire, so the COPY is cancelled from there and the outage retry takes over.
    """
    copy = asyncio.ensure_future(conn.copy_records_to_table(table, records=records, columns=q.BAR_COLUMNS))
    lost = asyncio.get_running_loop().create_future()

    def on_terminated(_: object) -> None:
        if not lost.done():
            lost.set_result(None)

    conn.add_termination_listener(on_terminated)
    try:
        await asyncio.wait({copy, lost}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        copy.cancel()
        await asyncio.gather(copy, return_exceptions=True)
        raise
    finally:
        conn.remove_termination_listener(on_terminated)
    if not copy.done():
        copy.cancel()
        await asyncio.gather(copy, return_exceptions=True)
        raise asyncpg.ConnectionDoesNotExistError("connection lost during COPY")
    copy.result()


async def _copy_new(conn: asyncpg.Connection, records: Sequence[tuple[Any, ...]]) -> bool:
    """COPY bars with new keys straight into candles (no staging, no per-row conflict check).

    False when a key is there after all (a concurrent writer stored it since the caller
    looked, or it repeats within the batch): the savepoint undoes the partial COPY and the
    caller merges instead, key by key.
    """
    try:
        async with conn.transaction():
            await _copy(conn, "candles", records)
    except asyncpg.UniqueViolationError:
        return False
    return True


class PostgresStore:
    """The Store protocol on PostgreSQL through an asyncpg pool.

    Args:
        dsn: ``postgresql://user@host:port/db`` (``postgres://`` works too).
        pool_min: Connections the pool keeps open.
        pool_max: Most connections the pool opens.
        statement_timeout_ms: ``statement_timeout`` of every connection (0 turns it off).
        retry_max_seconds: How long a write keeps retrying through an outage.
        connect_timeout: Seconds one connection attempt may take.
        live_reserved_connections: Pool connections that backfill work
            (``mds.domain.work``) may not hold, so live writes never wait for a backlog
            (LIVE_RESERVED_DB_CONNECTIONS).
    """

    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int = 1,
        pool_max: int = 10,
        statement_timeout_ms: int = 30_000,
        retry_max_seconds: float = 60.0,
        connect_timeout: float = 5.0,
        live_reserved_connections: int = 0,
    ) -> None:
        if dsn.startswith("postgresql+asyncpg://"):
            dsn = "postgresql://" + dsn[len("postgresql+asyncpg://") :]
        self.dsn = dsn
        self.pool_min = int(pool_min)
        self.pool_max = int(pool_max)
        self.statement_timeout_ms = int(statement_timeout_ms)
        self.retry_max_seconds = float(retry_max_seconds)
        self.connect_timeout = float(connect_timeout)
        self._pool: asyncpg.Pool | None = None
        self._timescaledb = False
        reserved = max(0, min(int(live_reserved_connections), self.pool_max - 1))
        self._backfill_slots = asyncio.Semaphore(self.pool_max - reserved) if reserved else None

    # ----------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Create the pool (retrying while the server is unreachable) and migrate."""
        if self._pool is not None:
            return
        self._pool = await self._retry("connect", self._create_pool)
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise

    async def _create_pool(self) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.pool_min,
            max_size=self.pool_max,
            timeout=self.connect_timeout,
            # Startup parameters, so the pool's RESET ALL between users keeps them.
            server_settings={
                "statement_timeout": str(self.statement_timeout_ms),
                "application_name": "mds",
                "timezone": "UTC",
            },
            init=self._init_connection,
        )
        assert pool is not None
        return pool

    @staticmethod
    async def _init_connection(conn: asyncpg.Connection) -> None:
        await conn.execute(q.STAGE_DDL)

    async def close(self) -> None:
        """Close the pool; safe to call twice."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout=10)
        except (TimeoutError, *q.TRANSIENT):
            pool.terminate()

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the versions applied.

        TimescaleDB steps run when the extension is available to this server; if they
        fail (say, the library is not in ``shared_preload_libraries``) the store logs why
        and stays in plain mode.
        """

        async def run(conn: asyncpg.Connection) -> list[str]:
            applied = await apply_postgres(conn, discover(POSTGRES_MIGRATIONS))
            available = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
            )
            if available:
                try:
                    extra = await apply_postgres(
                        conn, discover(TIMESCALEDB_MIGRATIONS), ledger="schema_migrations_timescaledb"
                    )
                    applied += [f"timescaledb/{v}" for v in extra]
                except StorageError as exc:
                    log.warning("timescaledb is available but could not be set up; plain mode: %s", exc)
            self._timescaledb = bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
                )
            )
            return applied

        return await self._write(run)

    async def ping(self) -> None:
        """Run ``SELECT 1``; raise StorageError when the database cannot answer."""
        await self._read(lambda conn: conn.fetchval("SELECT 1"))

    async def backend_info(self) -> dict[str, Any]:
        """Which backend and mode serve this store (for ``/health``).

        Returns:
            ``{"backend": "postgresql", "timescaledb": bool, "mode": "timescaledb" | "plain",
            "rollups": "in_database", "continuous_aggregates": [...], "server_version": "15.4",
            "pool": {...}}``.
        """

        async def run(conn: asyncpg.Connection) -> dict[str, Any]:
            version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            hypertables = bool(version) and bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables"
                    " WHERE hypertable_name = 'candles')"
                )
            )
            server = conn.get_server_version()
            return {
                "backend": "postgresql",
                "timescaledb": hypertables,
                "timescaledb_version": version,
                "mode": "timescaledb" if hypertables else "plain",
                # The API's 5m/15m/1h come from read_rollup in both modes; the continuous
                # aggregates serve SQL and dashboard users.
                "rollups": "in_database",
                "continuous_aggregates": ["candles_5m", "candles_1h"] if hypertables else [],
                "server_version": f"{server.major}.{server.minor}",
                "pool": {"min": self.pool_min, "max": self.pool_max, "size": pool.get_size()},
                "statement_timeout_ms": self.statement_timeout_ms,
            }

        pool = self._require_pool()
        return await self._read(run)

    # ---------------------------------------------------------------- plumbing
    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageError("the store is not open")
        return self._pool

    async def _expire(self) -> None:
        # A restarted server has closed every pooled connection; drop them all at once
        # instead of discovering each dead one with a failed query.
        if self._pool is not None:
            await self._pool.expire_connections()

    async def _retry(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` until it succeeds, retrying transient failures with back-off."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_max_seconds
        delay = _FIRST_DELAY
        while True:
            try:
                return await attempt()
            except asyncpg.PostgresError as exc:
                if not q.is_transient(exc):
                    raise StorageError(f"postgresql: {exc}") from exc
                failure: BaseException = exc
            except q.TRANSIENT as exc:
                failure = exc
            if self._pool is None and what != "connect":
                raise StorageError("the store was closed") from failure
            await self._expire()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StorageError(
                    f"postgresql unavailable ({what}) for {self.retry_max_seconds:g}s: {failure!r}"
                ) from failure
            log.warning("postgresql %s failed, retrying in %.2fs: %r", what, min(delay, remaining), failure)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_DELAY)

    @asynccontextmanager
    async def _connection(self, timeout: float) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; backfill work also takes one of its own, fewer, slots."""
        pool = self._require_pool()
        if self._backfill_slots is not None and work.is_backfill():
            async with self._backfill_slots, pool.acquire(timeout=timeout) as conn:
                yield conn
        else:
            async with pool.acquire(timeout=timeout) as conn:
                yield conn

    async def _write(self, fn: Job[T]) -> T:
        """Run ``fn`` on a pooled connection, retrying through outages (see module doc)."""

        async def attempt() -> T:
            async with self._connection(self.connect_timeout + 5) as conn:
                return await fn(conn)

        return await self._retry("write", attempt)

    async def _read(self, fn: Job[T]) -> T:
        """Run ``fn`` on a pooled connection; one immediate retry, then StorageError."""
        for tries_left in (1, 0):
            try:
                async with self._connection(self.connect_timeout) as conn:
                    return await fn(conn)
            except asyncpg.PostgresError as exc:
                if not q.is_transient(exc):
                    raise StorageError(f"postgresql: {exc}") from exc
                failure: BaseException = exc
            except q.TRANSIENT as exc:
                failure = exc
            await self._expire()
            if not tries_left:
                raise StorageError(f"postgresql unavailable: {failure!r}") from failure
        raise AssertionError("unreachable")

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._read(lambda conn: conn.fetch(sql, *args))

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self._read(lambda conn: conn.fetchrow(sql, *args))

    async def _execute(self, sql: str, *args: Any) -> str:
        return await self._write(lambda conn: conn.execute(sql, *args))

    # --------------------------------------------------------------------- bars
    async def write_bars(self, bars: Sequence[Bar], *, as_of: datetime) -> WriteResult:
        """Store a batch in one transaction; counts per distinct key.

        A batch whose keys are all new is COPYed straight into ``candles``; any other is
        COPYed into staging and merged.

        ``as_of`` stamps every bar (the bars' own ``as_of`` is ignored). When one key
        appears twice in ``bars`` the later one wins. Changed bars move their current row
        to ``candle_history`` with ``superseded_at = as_of`` and become a new revision.
        """
        stamp = ensure_utc(as_of)
        if any(b.ts.tzinfo is None for b in bars):
            raise ValueError("a bar's ts is a naive datetime with no time zone")
        # ``+ ""`` turns the str enums into their plain values at C speed (a dict lookup
        # hashes the enum in Python, and this loop is a large part of a million-bar write).
        # Repeated keys are not removed here: the COPY below then fails and the merge keeps
        # each key's last bar, which costs nothing when keys are unique (nearly always).
        records = [
            (
                b.symbol,
                b.interval + "",
                b.ts,
                float(b.open),
                float(b.high),
                float(b.low),
                float(b.close),
                float(b.volume),
                b.provider,
                stamp,
                b.status + "",
                bool(b.adjusted),
                0,
            )
            for b in bars
        ]
        if not records:
            return WriteResult()
        spans = _series_spans(records)

        async def run(conn: asyncpg.Connection) -> WriteResult:
            async with conn.transaction():
                # Every key new: straight into candles, the database's fastest path.
                if not await conn.fetchval(q.ANY_STORED_IN_SPAN, *spans) and await _copy_new(conn, records):
                    await conn.execute(q.DROP_EVIDENCE_OF_STORED, spans[0])
                    return WriteResult(len(records), 0, 0)
                await _copy(conn, "stage_bars", records)
                inserted, revised, keys = await conn.fetchrow(q.MERGE, stamp)
            return WriteResult(inserted, revised, keys - inserted - revised)

        return await self._write(run)

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
        args: list[Any] = [symbol, Interval(interval).value, ensure_utc(start), ensure_utc(end)]
        if as_of is None:
            sql = q.READ_CURRENT
        else:
            sql = q.READ_AS_OF
            args.append(ensure_utc(as_of))
        if limit is None:
            sql += " ORDER BY ts"
        else:
            sql += f" ORDER BY ts DESC LIMIT ${len(args) + 1}"
            args.append(limit)
        rows = await self._fetch(sql, *args)
        if limit is not None:
            rows.reverse()
        return [q.bar(r) for r in rows]

    async def read_rollup(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        sessions: Sequence[tuple[datetime, datetime]],
        *,
        as_of: datetime | None = None,
    ) -> list[Bar]:
        """1m bars with ``start <= ts < end`` rolled up to ``interval`` in the database.

        ``sessions``: (open, close) of every session the range touches; a bucket starts
        at its session's open plus whole intervals. ``as_of`` reads as :meth:`read_bars`
        does. A bucket's status is ``final`` when all its bars are; whether it has
        ended is the caller's to judge.
        """
        args: list[Any] = [symbol, Interval.M1.value, ensure_utc(start), ensure_utc(end)]
        if as_of is not None:
            args.append(ensure_utc(as_of))
        args += [[o for o, _ in sessions], [c for _, c in sessions], Interval(interval).delta]
        rows = await self._fetch(q.rollup_sql(as_of is not None), *args)
        return [
            Bar(
                symbol=symbol,
                interval=interval,
                ts=ts,
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
                provider=providers,
                adjusted=adjusted,
                status=BarStatus.FINAL if final else BarStatus.PROVISIONAL,
                as_of=learned,
            )
            for ts, o, h, lo, c, v, providers, final, learned, adjusted in rows
        ]

    async def bar_timestamps(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        """Epoch seconds of the current bars in range, ascending."""
        sql = f"SELECT extract(epoch FROM ts)::bigint FROM candles WHERE {q.RANGE} ORDER BY ts"
        rows = await self._fetch(sql, symbol, Interval(interval).value, ensure_utc(start), ensure_utc(end))
        return [r[0] for r in rows]

    async def latest_bar(self, symbol: str, interval: Interval) -> Bar | None:
        sql = f"SELECT {q.BAR_COLS} FROM candles WHERE symbol = $1 AND interval = $2 ORDER BY ts DESC LIMIT 1"
        row = await self._fetchrow(sql, symbol, Interval(interval).value)
        return None if row is None else q.bar(row)

    async def bar_revisions(self, symbol: str, interval: Interval, ts: datetime) -> list[Bar]:
        """Every revision of one bar, oldest first."""
        rows = await self._fetch(q.REVISIONS, symbol, Interval(interval).value, ensure_utc(ts))
        return [q.bar(r) for r in rows]

    # ------------------------------------------------------------------- quotes
    async def write_quotes(self, quotes: Sequence[Quote]) -> int:
        """Store quotes; a second quote with the same (symbol, ts, provider) is ignored.

        Returns:
            How many quotes were new.
        """
        if not quotes:
            return 0
        columns = (
            [x.symbol for x in quotes],
            [ensure_utc(x.ts) for x in quotes],
            [x.bid for x in quotes],
            [x.ask for x in quotes],
            [x.bid_size for x in quotes],
            [x.ask_size for x in quotes],
            [x.last for x in quotes],
            [x.provider for x in quotes],
            [None if x.as_of is None else ensure_utc(x.as_of) for x in quotes],
        )
        return await self._write(lambda conn: conn.fetchval(q.WRITE_QUOTES, *columns))

    async def latest_quote(self, symbol: str) -> Quote | None:
        row = await self._fetchrow(
            "SELECT symbol, ts, bid, ask, last, bid_size, ask_size, provider, as_of"
            " FROM quotes_l1 WHERE symbol = $1 ORDER BY ts DESC, as_of DESC NULLS LAST LIMIT 1",
            symbol,
        )
        return None if row is None else Quote(*row)

    # ----------------------------------------------------------------- universe
    async def upsert_universe(
        self, entries: Sequence[UniverseEntry], *, version_tag: str, source_meta: dict[str, Any]
    ) -> None:
        """Make ``entries`` the universe (others become inactive) and record a version.

        A repeated ``version_tag`` updates that version's metadata instead of failing, so
        re-running the same universe load is harmless.
        """
        symbols = [e.symbol for e in entries]
        columns = (
            symbols,
            [Tier(e.tier).value for e in entries],
            [bool(e.active) for e in entries],
            [e.name for e in entries],
            [e.exchange for e in entries],
        )
        meta = json.dumps(source_meta, sort_keys=True, default=str)

        async def run(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(q.UPSERT_UNIVERSE, *columns)
                await conn.execute(q.DEACTIVATE_OTHERS, symbols)
                await conn.execute(q.RECORD_VERSION, version_tag, meta)

        await self._write(run)

    async def universe(self, *, tier: Tier | None = None, active_only: bool = True) -> list[UniverseEntry]:
        """Universe entries sorted by tier, then symbol."""
        sql = "SELECT symbol, tier, active, name, exchange FROM symbol_universe WHERE true"
        args: list[Any] = []
        if tier is not None:
            args.append(Tier(tier).value)
            sql += " AND tier = $1"
        if active_only:
            sql += " AND active"
        rows = await self._fetch(sql + " ORDER BY tier, symbol", *args)
        return [UniverseEntry(s, Tier(t), a, n, x) for s, t, a, n, x in rows]

    async def get_symbol(self, symbol: str) -> UniverseEntry | None:
        row = await self._fetchrow(
            "SELECT symbol, tier, active, name, exchange FROM symbol_universe WHERE symbol = $1", symbol
        )
        if row is None:
            return None
        s, t, a, n, x = row
        return UniverseEntry(s, Tier(t), a, n, x)

    # ------------------------------------------------------------------ cursors
    async def get_cursor(self, symbol: str, interval: Interval, source: str) -> Cursor | None:
        row = await self._fetchrow(
            "SELECT last_ts, updated_at FROM ingestion_cursor"
            " WHERE symbol = $1 AND interval = $2 AND source = $3",
            symbol,
            Interval(interval).value,
            source,
        )
        return None if row is None else Cursor(symbol, Interval(interval), source, row[0], row[1])

    async def advance_cursor(
        self, symbol: str, interval: Interval, source: str, ts: datetime, *, now: datetime
    ) -> None:
        """Move the cursor to ``ts`` if later; a stale ``ts`` leaves it (and updated_at) be."""
        args = (symbol, Interval(interval).value, source, ensure_utc(ts), ensure_utc(now))
        await self._execute(q.ADVANCE_CURSOR, *args)

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
        args = (
            symbol,
            Interval(interval).value,
            ensure_utc(start),
            ensure_utc(end),
            Tier(priority).value,
            ensure_utc(now),
        )
        row = await self._write(lambda conn: conn.fetchrow(q.CREATE_JOB, *args))
        return q.job(row)

    async def create_backfills(self, specs: Sequence[NewBackfill], *, now: datetime) -> list[BackfillRecord]:
        """Insert every spec as a queued job with one statement (``INSERT ... SELECT unnest``).

        The rows come back from ``RETURNING``, which promises no order, so they are
        matched to the specs by content (equal specs take ids in ascending order).
        """
        if not specs:
            return []
        columns = (
            [s.symbol for s in specs],
            [Interval(s.interval).value for s in specs],
            [ensure_utc(s.start) for s in specs],
            [ensure_utc(s.end) for s in specs],
            [Tier(s.priority).value for s in specs],
        )
        rows = await self._write(lambda conn: conn.fetch(q.CREATE_JOBS, *columns, ensure_utc(now)))
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
        """Set a job's status; ``attempts``/``last_error`` change only when given.

        Raises:
            NotFound: No job has this id.
        """
        args = (BackfillStatus(status).value, ensure_utc(now), attempts, last_error, job_id)
        if q.rowcount(await self._execute(q.UPDATE_JOB, *args)) == 0:
            raise NotFound("backfill job", str(job_id))

    async def update_backfill_range(
        self, job_id: int, start: datetime, end: datetime, *, now: datetime
    ) -> bool:
        """Widen a still-queued job to [start, end) (merging); False if it is no longer queued."""
        status = await self._execute(
            "UPDATE backfill_jobs SET start_ts = $1, end_ts = $2, updated_at = $3"
            " WHERE id = $4 AND status = 'queued'",
            ensure_utc(start),
            ensure_utc(end),
            ensure_utc(now),
            job_id,
        )
        return q.rowcount(status) == 1

    async def get_backfill(self, job_id: int) -> BackfillRecord | None:
        row = await self._fetchrow(f"SELECT {q.JOB_COLS} FROM backfill_jobs WHERE id = $1", job_id)
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
        return [q.job(r) for r in await self._fetch(sql, *args)]

    async def backfill_stats(self) -> dict[str, Any]:
        """Job counts by status and by tier, the oldest queued job's age, the DLQ size.

        Every status and tier appears, with zero counts where there are no jobs, so the
        shape is the same on an empty store. One statement, so one snapshot.
        """
        statuses = [s.value for s in BackfillStatus]
        by_status = dict.fromkeys(statuses, 0)
        by_tier = {t.value: dict.fromkeys(statuses, 0) for t in Tier}
        oldest: datetime | None = None
        for tier, status, n, first in await self._fetch(q.JOB_STATS):
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

    async def purge_backfills(self, *, status: BackfillStatus, older_than: datetime) -> int:
        """Delete jobs with ``status`` last updated before ``older_than``; return how many."""
        done = await self._execute(
            "DELETE FROM backfill_jobs WHERE status = $1 AND updated_at < $2",
            BackfillStatus(status).value,
            ensure_utc(older_than),
        )
        return q.rowcount(done)

    async def requeue_backfill(self, job_id: int, *, now: datetime) -> BackfillRecord | None:
        """Put one failed job back in the queue (attempts reset, ``last_error`` kept).

        Returns:
            The requeued job, or None when no job has this id or it is not failed.
        """
        rows = await self._requeue(" AND id = $2", [job_id], now)
        return rows[0] if rows else None

    async def requeue_failed(self, *, tier: Tier | None, now: datetime) -> list[BackfillRecord]:
        """Put every failed job (of ``tier``, or of all tiers) back in the queue, by id."""
        if tier is None:
            return await self._requeue("", [], now)
        return await self._requeue(" AND priority = $2", [Tier(tier).value], now)

    async def _requeue(self, where: str, args: list[Any], now: datetime) -> list[BackfillRecord]:
        # ``where`` is one of the constant fragments above; values stay parameters.
        sql = (
            "UPDATE backfill_jobs SET status = 'queued', attempts = 0, updated_at = $1"
            f" WHERE status = 'failed'{where} RETURNING {q.JOB_COLS}"
        )
        rows = await self._write(lambda conn: conn.fetch(sql, ensure_utc(now), *args))
        return sorted((q.job(r) for r in rows), key=lambda j: j.id)

    async def active_backfills(
        self, symbol: str | None = None, interval: Interval | None = None
    ) -> list[BackfillRecord]:
        """Queued and running jobs, oldest first (by ``created_at``, then id)."""
        sql = f"SELECT {q.JOB_COLS} FROM backfill_jobs WHERE status IN ('queued', 'running')"
        args: list[Any] = []
        if symbol is not None:
            args.append(symbol)
            sql += f" AND symbol = ${len(args)}"
        if interval is not None:
            args.append(Interval(interval).value)
            sql += f" AND interval = ${len(args)}"
        rows = await self._fetch(sql + " ORDER BY created_at, id", *args)
        return [q.job(r) for r in rows]

    async def active_backfills_many(
        self, symbols: Sequence[str], interval: Interval
    ) -> dict[str, list[BackfillRecord]]:
        """Queued and running jobs of ``interval`` per symbol (one query), oldest first."""
        if not symbols:
            return {}
        rows = await self._fetch(q.ACTIVE_JOBS_OF, Interval(interval).value, list(dict.fromkeys(symbols)))
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

        Only symbols with something missing appear. Reads current revisions only, in one
        repeatable-read snapshot.
        """
        iv = Interval(interval).value
        return await self._read(lambda conn: cont.scan_missing(conn, iv, expected, list(symbols)))

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
        iv, stamp, eps = Interval(interval).value, ensure_utc(now), list(epochs)
        return await self._write(
            lambda conn: cont.record_empty_evidence(
                conn,
                symbol,
                iv,
                eps,
                provider,
                now=stamp,
                needed_answers=needed_answers,
                needed_providers=needed_providers,
            )
        )

    async def clear_empty_evidence(self, symbol: str, interval: Interval, epochs: Sequence[int]) -> None:
        """Forget the evidence (and any confirmation) for these bar times."""
        iv, eps = Interval(interval).value, list(epochs)
        await self._write(lambda conn: cont.clear_empty_evidence(conn, symbol, iv, eps))

    async def confirmed_empty(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        """Epoch seconds of confirmed-empty bar times with ``start <= ts < end``, ascending."""
        sql = f"SELECT extract(epoch FROM ts)::bigint FROM confirmed_empty WHERE {q.RANGE} ORDER BY ts"
        rows = await self._fetch(sql, symbol, Interval(interval).value, ensure_utc(start), ensure_utc(end))
        return [r[0] for r in rows]

    async def count_confirmed_empty(
        self,
        interval: Interval,
        start: datetime,
        end: datetime,
        symbols: Sequence[str] | None = None,
    ) -> int:
        """How many confirmed-empty bar times lie in ``[start, end)`` (of ``symbols``)."""
        sql = "SELECT count(*) FROM confirmed_empty WHERE interval = $1 AND ts >= $2 AND ts < $3"
        args: list[Any] = [Interval(interval).value, ensure_utc(start), ensure_utc(end)]
        if symbols is not None:
            sql += " AND symbol = ANY($4::text[])"
            args.append(list(dict.fromkeys(symbols)))
        row = await self._fetchrow(sql, *args)
        assert row is not None
        return int(row[0])
