"""SqliteConnections: the SQLite store's two connections and the threads that own them.

Threading: every call runs off the event loop on one of two single-thread executors. The
writer thread owns the only write connection, so a whole write transaction (staging,
history copy, upsert) is one hop to that thread. That is why this is not aiosqlite, which
costs a thread hop per statement. The reader thread owns a second, ``query_only``
connection; in WAL mode it reads a consistent snapshot while a write is in progress.
Both threads take live work before queued backfill work (``mds.storage.lanes``).

``:memory:`` databases use one connection for both roles: two connections would need a
shared cache, and shared-cache readers fail at once with "database table is locked"
(not a retryable busy) whenever the writer holds a transaction.

Everything that talks to the database (the store's parts, the analysis store, tests) goes
through :meth:`SqliteConnections.on_reader`, :meth:`~SqliteConnections.on_writer` and
:meth:`~SqliteConnections.transaction`: a plain function of a ``sqlite3.Connection``,
run in one hop on the right thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from mds.errors import StorageError
from mds.storage.lanes import LaneExecutor

T = TypeVar("T")


class SqliteConnections:
    """The writer and reader connections of one SQLite database, each on its own thread.

    Args:
        path: Database file (its directory must exist) or ``":memory:"``.
        busy_timeout_ms: How long a connection waits for another process's lock.
    """

    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.memory = path == ":memory:"
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._writer: Executor | None = None
        self._reader: Executor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None

    @property
    def started(self) -> bool:
        """Whether :meth:`open_writer` has run (and :meth:`close` not since)."""
        return self._writer is not None

    async def open_writer(self) -> None:
        """Start the writer thread and connect; the store migrates before the reader opens."""
        self._writer = LaneExecutor("mds-sqlite-writer")
        self._wconn = await self._hop(self._writer, self._connect, False)

    async def open_reader(self) -> None:
        """Start the reader thread and its ``query_only`` connection (``:memory:``: share the writer's)."""
        if self.memory:
            self._reader, self._rconn = self._writer, self._wconn
        else:
            self._reader = LaneExecutor("mds-sqlite-reader")
            self._rconn = await self._hop(self._reader, self._connect, True)

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE
        # themselves so the lock is taken up front and busy_timeout applies to it.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            # PRAGMA values cannot be bound parameters; the only one formatted is an int.
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            if not self.memory:
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

    @staticmethod
    async def _hop(executor: Executor, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: {exc}") from exc

    async def on_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with the reader connection on the reader thread (one hop).

        Raises:
            StorageError: The store is not open, or SQLite raised.
        """
        if self._reader is None or self._rconn is None:
            raise StorageError("the store is not open")
        conn = self._rconn
        return await self._hop(self._reader, fn, conn)

    async def on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with the writer connection on the writer thread, outside any transaction.

        Raises:
            StorageError: The store is not open, or SQLite raised.
        """
        if self._writer is None or self._wconn is None:
            raise StorageError("the store is not open")
        conn = self._wconn
        return await self._hop(self._writer, fn, conn)

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one write transaction on the writer thread (one hop in all).

        ``BEGIN IMMEDIATE`` takes the write lock up front; an exception from ``fn`` rolls
        the transaction back and propagates (``sqlite3.Error`` as StorageError).
        """

        def run(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self.on_writer(run)
