"""LIVE_BATCH_SIZE and BACKFILL_BATCH_SIZE: an answer of N bars is stored in ceil(N/k) writes."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from mds.domain.jobs import BarsFetchJob, TimeWindow
from mds.domain.models import Interval, Tier
from mds.ingest.ingestor import write_batched
from mds.observability.metrics import Metrics
from mds.providers.sim.market import ground_truth
from tests.helpers import rows

OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)  # 90 closed 1m bars since the open


def writes(metrics: Metrics) -> float:
    """Store writes so far: write_batch_ms is observed once per write."""
    return metrics.value("write_batch_ms_count")


async def test_a_write_of_n_bars_with_batch_size_k_is_ceil_n_over_k_writes(make_pipeline) -> None:
    p = await make_pipeline()
    bars = ground_truth("AAPL", Interval.M1, OPEN, NOW)
    metrics = Metrics()
    first = await write_batched(p.store, bars, as_of=NOW, changed_since=None, batch_size=40, metrics=metrics)
    assert writes(metrics) == math.ceil(len(bars) / 40) == 3
    assert (first.inserted, first.revised, first.unchanged) == (90, 0, 0)
    assert rows(await p.store.read_bars("AAPL", Interval.M1, OPEN, NOW)) == rows(bars)
    again = await write_batched(
        p.store, bars, as_of=NOW, changed_since=None, batch_size=None, metrics=metrics
    )
    assert writes(metrics) == 4 and (again.inserted, again.unchanged) == (0, 90)  # None: one write


async def test_backfill_jobs_write_in_backfill_batch_size(make_pipeline) -> None:
    p = await make_pipeline({"BACKFILL_BATCH_SIZE": "25"})
    await p.collector.backfiller.enqueue("AAPL", Interval.M1, OPEN, NOW, Tier.T0)
    await p.drain_backfills()
    assert writes(p.metrics) == math.ceil(90 / 25)
    assert len(await p.store.read_bars("AAPL", Interval.M1, OPEN, NOW)) == 90


async def test_live_jobs_write_in_live_batch_size(make_pipeline) -> None:
    p = await make_pipeline({"LIVE_BATCH_SIZE": "60"})
    job = BarsFetchJob(symbols=["AAPL"], interval=Interval.M1, time_window=TimeWindow(start=OPEN, end=NOW))
    await p.live.put(job)
    await p.drain(p.live)
    assert writes(p.metrics) == math.ceil(90 / 60)
    assert len(await p.store.read_bars("AAPL", Interval.M1, OPEN, NOW)) == 90
