"""PostgresPool: the PostgreSQL store's asyncpg pool and its outage rules.

Outages: writes retry connection-level failures with exponential back-off for up to
``retry_max_seconds`` and then raise StorageError, so a write that returned was committed
and nothing acknowledged is lost (a write whose COMMIT was cut off is run again, which the
idempotent merge makes harmless). Reads and ``ping`` retry once at once (to replace pooled
connections a restarted server has closed) and otherwise raise StorageError immediately.

Everything that talks to the database (the store's parts, the analysis store, tests) goes
through :meth:`PostgresPool.read` or :meth:`PostgresPool.write` (or their one-statement
forms ``fetch``, ``fetchrow``, ``execute``): a coroutine function of an asyncpg
connection, run on a pooled connection under those rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from mds.domain import work
from mds.errors import StorageError

T = TypeVar("T")
#: What :meth:`PostgresPool.read` and :meth:`PostgresPool.write` run.
Job = Callable[[asyncpg.Connection], Awaitable[T]]

log = logging.getLogger(__name__)

_FIRST_DELAY = 0.05
_MAX_DELAY = 2.0

# Failures worth retrying: the server or the network went away, the server is starting
# or shutting down, or a transaction lost a deadlock/serialization race (it was rolled
# back whole, so running it again is safe). A statement timeout (QueryCanceledError) is
# not among them: the same statement would time out again.
TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.InterfaceError,  # e.g. "connection is closed" on a pooled connection
    OSError,  # ConnectionRefusedError, ConnectionResetError, TimeoutError
)
# Closing the pool gives up on a graceful close after these and terminates it.
_CLOSE_FAILURES: tuple[type[BaseException], ...] = (TimeoutError, *TRANSIENT)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


class PostgresPool:
    """An asyncpg pool with the store's retry rules (see the module docstring).

    Args:
        dsn: ``postgresql://user@host:port/db`` (``postgres://`` and
            ``postgresql+asyncpg://`` work too).
        pool_min: Connections the pool keeps open.
        pool_max: Most connections the pool opens.
        statement_timeout_ms: ``statement_timeout`` of every connection (0 turns it off).
        retry_max_seconds: How long a write keeps retrying through an outage.
        connect_timeout: Seconds one connection attempt may take.
        live_reserved_connections: Pool connections that backfill work
            (``mds.domain.work``) may not hold, so live writes never wait for a backlog.
        init: Run on every new connection (the store creates its staging table).
    """

    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int,
        pool_max: int,
        statement_timeout_ms: int,
        retry_max_seconds: float,
        connect_timeout: float,
        live_reserved_connections: int,
        init: Callable[[asyncpg.Connection], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        if dsn.startswith("postgresql+asyncpg://"):
            dsn = "postgresql://" + dsn[len("postgresql+asyncpg://") :]
        self.dsn = dsn
        self.pool_min = int(pool_min)
        self.pool_max = int(pool_max)
        self.statement_timeout_ms = int(statement_timeout_ms)
        self.retry_max_seconds = float(retry_max_seconds)
        self.connect_timeout = float(connect_timeout)
        self._init = init
        self._pool: asyncpg.Pool | None = None
        reserved = max(0, min(int(live_reserved_connections), self.pool_max - 1))
        self._backfill_slots = asyncio.Semaphore(self.pool_max - reserved) if reserved else None

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def open(self) -> None:
        """Create the pool, retrying while the server is unreachable."""
        self._pool = await self._retry("connect", self._create_pool)

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
            init=self._init,
        )
        assert pool is not None
        return pool

    async def close(self) -> None:
        """Close the pool; safe to call twice."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout=10)
        except _CLOSE_FAILURES:
            pool.terminate()

    def require_pool(self) -> asyncpg.Pool:
        """The open pool.

        Raises:
            StorageError: The store is not open.
        """
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
                if not is_transient(exc):
                    raise StorageError(f"postgresql: {exc}") from exc
                failure: BaseException = exc
            except TRANSIENT as exc:
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
        # The pool lends a proxy that forwards every Connection method; asyncpg-stubs
        # types the two apart, so the yields below are told it is a Connection.
        pool = self.require_pool()
        if self._backfill_slots is not None and work.is_backfill():
            async with self._backfill_slots, pool.acquire(timeout=timeout) as conn:
                yield conn  # type: ignore[misc]
        else:
            async with pool.acquire(timeout=timeout) as conn:
                yield conn  # type: ignore[misc]

    async def write(self, fn: Job[T]) -> T:
        """Run ``fn`` on a pooled connection, retrying through outages (see the module doc).

        ``fn`` may run more than once, so it must be safe to repeat (its own transaction,
        idempotent statements).

        Raises:
            StorageError: A non-transient database error, or the outage outlasted
                ``retry_max_seconds``.
        """

        async def attempt() -> T:
            async with self._connection(self.connect_timeout + 5) as conn:
                return await fn(conn)

        return await self._retry("write", attempt)

    async def read(self, fn: Job[T]) -> T:
        """Run ``fn`` on a pooled connection; one immediate retry, then StorageError."""
        for tries_left in (1, 0):
            try:
                async with self._connection(self.connect_timeout) as conn:
                    return await fn(conn)
            except asyncpg.PostgresError as exc:
                if not is_transient(exc):
                    raise StorageError(f"postgresql: {exc}") from exc
                failure: BaseException = exc
            except TRANSIENT as exc:
                failure = exc
            await self._expire()
            if not tries_left:
                raise StorageError(f"postgresql unavailable: {failure!r}") from failure
        raise AssertionError("unreachable")

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """One reading statement's rows (under :meth:`read`'s rules)."""
        return await self.read(lambda conn: conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """One reading statement's first row, or None (under :meth:`read`'s rules)."""
        return await self.read(lambda conn: conn.fetchrow(sql, *args))

    async def execute(self, sql: str, *args: Any) -> str:
        """One writing statement; its command tag, e.g. ``"UPDATE 3"`` (under :meth:`write`'s rules)."""
        return await self.write(lambda conn: conn.execute(sql, *args))
