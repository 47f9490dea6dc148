"""The foreground run behind `mds backfill`: drain the ranges, show a progress bar.

It opens the same runtime as the service (store, providers, router) and drains the
requested ranges through the same Backfiller and Dispatcher, so limits, retries and
the DLQ behave exactly as they do inside `mds serve`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mds.config import Settings
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillStatus
from mds.ingest.backfill import Backfiller
from mds.ingest.dispatch import Dispatcher
from mds.ingest.ingestor import BarIngestor
from mds.ingest.worker import Worker
from mds.queue.memory import InMemoryJobQueue
from mds.runtime import open_runtime
from mds.services.bar_cache import SeriesGenerations


async def run_backfill(
    settings: Settings,
    environ: Mapping[str, str],
    symbols: list[str],
    interval: Interval,
    start: datetime,
    end: datetime,
    *,
    demo: bool = False,
) -> dict[str, object]:
    """Enqueue ``symbols``' ranges, drain them, and report jobs, failures and bars written."""
    t0 = time.perf_counter()
    async with open_runtime(settings, demo=demo, collect=False, environ=environ) as rt:
        queues = {t: InMemoryJobQueue() for t in Tier}
        backfiller = Backfiller(
            store=rt.store, queues=queues, settings=settings, clock=rt.clock, metrics=rt.metrics
        )
        ingestor = BarIngestor(
            store=rt.store,
            router=rt.router,
            calendar=rt.calendar,
            clock=rt.clock,
            metrics=rt.metrics,
            generations=SeriesGenerations(rt.cache),
        )
        tiers = {e.symbol: e.tier for e in await rt.store.universe()}
        worker = Worker(
            name="cli-backfill",
            queue=queues[Tier.T0],
            ingestor=ingestor,
            backfiller=backfiller,
            store=rt.store,
            router=rt.router,
            settings=settings,
            clock=rt.clock,
            metrics=rt.metrics,
            tiers=tiers,
        )
        ids: list[int] = []
        for symbol in symbols:
            result = await backfiller.enqueue(symbol, interval, start, end, tiers.get(symbol, Tier.T1))
            ids += [r.id for r in result.created] + result.merged_into
        dispatcher = Dispatcher(backfiller, worker.process, settings, rt.clock)
        task = asyncio.get_running_loop().create_task(dispatcher.run())
        columns = (TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        try:
            with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
                bar = progress.add_task("jobs", total=len(ids))
                while backfiller.active() > 0:
                    progress.update(bar, completed=len(ids) - backfiller.active())
                    await asyncio.sleep(0.1)
                progress.update(bar, completed=len(ids))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            for q in queues.values():
                await q.close()
        records = [await rt.store.get_backfill(i) for i in ids]
        failed = [r for r in records if r is not None and r.status is BackfillStatus.FAILED]
        return {
            "symbols": len(symbols),
            "interval": interval.value,
            "jobs": len(ids),
            "done": sum(1 for r in records if r is not None and r.status is BackfillStatus.DONE),
            "failed": len(failed),
            "errors": {str(r.id): r.last_error for r in failed},
            "bars_written": int(
                rt.metrics.value("bars_written_total", interval=interval.value, outcome="inserted")
                + rt.metrics.value("bars_written_total", interval=interval.value, outcome="revised")
            ),
            "seconds": round(time.perf_counter() - t0, 3),
        }
