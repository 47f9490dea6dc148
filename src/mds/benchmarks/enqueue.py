"""How fast a start-up gap scan's backfills are enqueued, and what a queued job costs.

Each of ``jobs / 3`` symbols misses three hours of one session's 1m bars; the real
Backfiller cuts them against the active jobs, chunks them by the hour (three jobs a
symbol), persists the rows and queues the jobs in in-process queues, on a fresh SQLite
file or a fresh PostgreSQL database (``mds_bench_<uuid>`` on MDS_BENCH_DATABASE_URL, as
in :mod:`mds.benchmarks.pg`, dropped afterwards). ``jobs_per_s`` is created jobs over
the wall time of that ``enqueue_gaps`` call.

``bytes_per_queued_job`` comes from a second scan of as many new symbols, run under
tracemalloc after the timed one (tracing slows what it watches): what stays allocated
once the call's result is dropped (the Backfiller's index entries and the queues' jobs),
per job created.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.ingest.backfill import Backfiller
from mds.ingest.gaps import Gap
from mds.observability.metrics import Metrics
from mds.queue.memory import InMemoryJobQueue
from mds.storage.base import BackfillLedger
from mds.storage.postgres import PostgresStore
from mds.storage.sqlite import SqliteStore

OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
GAP = timedelta(hours=3)
CHUNK_MINUTES = 60
JOBS_PER_SYMBOL = 3


def _gaps(prefix: str, symbols: int) -> list[Gap]:
    return [Gap(f"{prefix}{i:05d}", Interval.M1, OPEN, OPEN + GAP, 180) for i in range(symbols)]


async def _measure(store: BackfillLedger, backend: str, jobs: int) -> dict[str, object]:
    symbols = max(1, jobs // JOBS_PER_SYMBOL)
    settings = load_settings(
        {"BACKFILL_CHUNK_MINUTES": str(CHUNK_MINUTES), "BACKFILL_MAX_QUEUE_T1": str(4 * jobs + 10)}
    )
    queues = {t: InMemoryJobQueue() for t in Tier}
    backfiller = Backfiller(
        store=store, queues=queues, settings=settings, clock=ManualClock(OPEN + GAP), metrics=Metrics()
    )
    try:
        gaps = _gaps("S", symbols)
        t = time.perf_counter()
        created = len((await backfiller.enqueue_gaps(gaps, Tier.T1)).created)
        seconds = time.perf_counter() - t
        more = _gaps("M", symbols)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            traced = len((await backfiller.enqueue_gaps(more, Tier.T1)).created)
            gc.collect()
            held = sum(d.size_diff for d in tracemalloc.take_snapshot().compare_to(before, "filename"))
        finally:
            tracemalloc.stop()
    finally:
        for q in queues.values():
            await q.close()
    return {
        "benchmark": "enqueue",
        "backend": backend,
        "jobs": created,
        "seconds": round(seconds, 3),
        "jobs_per_s": round(created / seconds),
        "bytes_per_queued_job": round(held / max(traced, 1)),
    }


async def _sqlite(jobs: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-enqueue-"))
    store = SqliteStore(workdir / "enqueue.db")
    try:
        await store.open()
        return await _measure(store, "sqlite", jobs)
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)


async def _postgres(jobs: int) -> dict[str, object]:
    from mds.benchmarks.pg import create_db, drop_db

    url = await create_db()
    try:
        store = PostgresStore(url, pool_max=4)
        await store.open()
        try:
            return await _measure(store, "postgres", jobs)
        finally:
            await store.close()
    finally:
        await drop_db(url)


def run(backend: str = "sqlite", jobs: int = 24_000) -> dict[str, object]:
    """Enqueue about ``jobs`` backfill jobs (``jobs / 3`` symbols) on ``backend``."""
    if backend == "sqlite":
        return asyncio.run(_sqlite(jobs))
    if backend == "postgres":
        return asyncio.run(_postgres(jobs))
    raise ValueError(f"backend: {backend!r}; use sqlite or postgres")
