"""How fully a backfill backlog uses a provider's rate limit, without ever exceeding it.

A sim provider limited to R requests per clock-second serves a backlog of one-hour 1m
backfills through the real Backfiller, Dispatcher, Worker, router and SQLite store, on a
simulated clock (so a minute-long rate window costs seconds of wall time).
``utilization`` is achieved requests per clock-second divided by R.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import SimulatedClock
from mds.domain.models import Interval, Tier
from mds.ingest.backfill import Backfiller
from mds.ingest.dispatch import Dispatcher
from mds.ingest.ingestor import BarIngestor
from mds.ingest.worker import Worker
from mds.observability.metrics import Metrics
from mds.providers.sim.faults import SimFaults
from mds.providers.sim.market import SimMarket
from mds.providers.sim.provider import SimProvider
from mds.queue.memory import InMemoryJobQueue
from mds.routing.router import Router
from mds.storage.sqlite import SqliteStore

DAY = datetime(2025, 10, 8, tzinfo=UTC)


async def _run(jobs: int, rate_per_s: float, speed: float) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-drain-"))
    env = {
        "POLICY_BARS_1M": "sim",
        "POLICY_EOD": "sim",
        "POLICY_QUOTES_L1": "sim",
        "POLICY_OPTIONS_CHAIN": "sim",
        "BACKFILL_DISPATCH_RATE_PER_SEC": "1000",
        "BACKFILL_MAX_CONCURRENCY_T0": "16",
        "BACKFILL_MAX_QUEUE_T0": str(jobs + 1),
    }
    settings = load_settings(env)
    clock = SimulatedClock(DAY.replace(hour=21), speed)
    calendar = MarketCalendar()
    store = SqliteStore(str(workdir / "drain.db"))
    await store.open()
    metrics = Metrics()
    sim = SimProvider(
        "sim",
        SimMarket(calendar=calendar),
        clock,
        SimFaults(rate_limit_per_min=int(rate_per_s * 60)),
        respect_limit=True,
    )
    router = Router({"sim": sim}, settings, clock, metrics)
    queues = {t: InMemoryJobQueue() for t in Tier}
    backfiller = Backfiller(store=store, queues=queues, settings=settings, clock=clock, metrics=metrics)
    ingestor = BarIngestor(store=store, router=router, calendar=calendar, clock=clock, metrics=metrics)
    worker = Worker(
        name="bench",
        queue=queues[Tier.T0],
        ingestor=ingestor,
        backfiller=backfiller,
        store=store,
        router=router,
        settings=settings,
        clock=clock,
        metrics=metrics,
        tiers={},
    )
    open_ = DAY.replace(hour=13, minute=30)
    for i in range(jobs):  # distinct symbols: nothing merges, one request per job
        await backfiller.enqueue(f"S{i:05d}", Interval.M1, open_, open_ + timedelta(hours=1), Tier.T0)
    dispatcher = Dispatcher(backfiller, worker.process, settings, clock)
    t_clock, t_wall = clock.now(), time.perf_counter()
    task = asyncio.get_running_loop().create_task(dispatcher.run())
    try:
        await backfiller.wait_idle()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for q in queues.values():
            await q.close()
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = (clock.now() - t_clock).total_seconds()
    requests = metrics.value("provider_selected_total", capability="bars_1m", provider="sim")
    return {
        "benchmark": "drain",
        "jobs": jobs,
        "seconds": round(seconds, 2),
        "wall_seconds": round(time.perf_counter() - t_wall, 2),
        "rate_limit_per_s": rate_per_s,
        "requests": int(requests),
        "utilization": round(requests / seconds / rate_per_s, 3),
        "limit_breaches": int(
            metrics.value("provider_errors_total", provider="sim", endpoint="bars_1m", code="429")
        ),
    }


def run(jobs: int = 1200, rate_per_s: float = 5.0, speed: float = 20.0) -> dict[str, object]:
    return asyncio.run(_run(jobs, rate_per_s, speed))
