"""PostgreSQL keeps LIVE_RESERVED_DB_CONNECTIONS of its pool for live work.

Backfill work (``mds.domain.work.as_backfill``) holding every connection it may take
must leave a live read able to start at once.
"""

from __future__ import annotations

import asyncio
import time

from mds.domain import work
from mds.storage.postgres import PostgresStore


async def test_backfills_cannot_take_the_connections_reserved_for_live_work(
    pg_database: tuple[str, str],
) -> None:
    _, url = pg_database
    store = PostgresStore(url, pool_min=1, pool_max=3, live_reserved_connections=1)
    await store.open()
    try:

        async def slow_backfill_read() -> None:
            with work.as_backfill():
                await store.db.fetch("SELECT pg_sleep(1.5)")

        backlog = [asyncio.ensure_future(slow_backfill_read()) for _ in range(4)]
        await asyncio.sleep(0.3)  # two of them hold their two connections; two wait
        started = time.monotonic()
        rows = await store.db.fetch("SELECT 1")
        live_wait = time.monotonic() - started
        assert rows[0][0] == 1
        assert live_wait < 0.5, f"a live read waited {live_wait:.2f}s behind the backlog"
        started = time.monotonic()
        await asyncio.gather(*backlog)
        # Four 1.5 s backfill reads through two connections: two rounds, not one.
        assert time.monotonic() - started >= 1.5
    finally:
        await store.close()


async def test_without_a_reserve_backfills_may_take_the_whole_pool(pg_database: tuple[str, str]) -> None:
    _, url = pg_database
    store = PostgresStore(url, pool_min=1, pool_max=2, live_reserved_connections=0)
    await store.open()
    try:

        async def slow_backfill_read() -> None:
            with work.as_backfill():
                await store.db.fetch("SELECT pg_sleep(1.0)")

        backlog = [asyncio.ensure_future(slow_backfill_read()) for _ in range(2)]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await store.db.fetch("SELECT 1")
        assert time.monotonic() - started >= 0.4
        await asyncio.gather(*backlog)
    finally:
        await store.close()
