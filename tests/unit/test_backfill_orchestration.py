"""Backfill orchestration: chunks, duplicates, merging, caps, restore, strict tier priority."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillStatus
from mds.ingest.backfill import Backfiller, Dispatcher, subtract
from mds.observability.metrics import Metrics
from mds.queue.base import Delivery
from mds.queue.memory import InMemoryJobQueue
from mds.storage.sqlite import SqliteStore

T = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T + timedelta(hours=hours)


@pytest.fixture
async def make(tmp_path):  # type: ignore[no-untyped-def]
    made = []

    async def build(**env: str) -> Backfiller:
        store = SqliteStore(str(tmp_path / f"b{len(made)}.db"))
        await store.open()
        queues = {t: InMemoryJobQueue() for t in Tier}
        b = Backfiller(
            store=store, queues=queues, settings=load_settings(env), clock=ManualClock(T), metrics=Metrics()
        )
        made.append(b)
        return b

    yield build
    for b in made:
        for q in b.queues.values():
            await q.close()
        await b.store.close()


def test_subtract() -> None:
    assert subtract(h(0), h(4), []) == [(h(0), h(4))]
    assert subtract(h(0), h(4), [(h(1), h(2))]) == [(h(0), h(1)), (h(2), h(4))]
    assert subtract(h(0), h(4), [(h(-1), h(5))]) == []
    assert subtract(h(0), h(4), [(h(3), h(6)), (h(-2), h(1))]) == [(h(1), h(3))]


async def test_long_ranges_are_chunked(make) -> None:
    b = await make(BACKFILL_CHUNK_MINUTES="60")
    r = await b.enqueue("AAPL", Interval.M1, h(0), h(2.5), Tier.T1)
    assert [(x.start, x.end) for x in r.created] == [(h(0), h(1)), (h(1), h(2)), (h(2), h(2.5))]
    assert b.queued(Tier.T1) == 3 and await b.queues[Tier.T1].depth() == 3


async def test_duplicates_are_refused_and_overlaps_cut_to_what_is_new(make) -> None:
    b = await make(BACKFILL_CHUNK_MINUTES="60")
    first = await b.enqueue("AAPL", Interval.M1, h(0), h(1), Tier.T0)
    again = await b.enqueue("AAPL", Interval.M1, h(0.25), h(0.75), Tier.T0)
    assert again.created == [] and again.merged_into == [] and again.refused == ["duplicate"]
    # Overlapping and longer than a chunk when merged: only the uncovered hour is queued.
    more = await b.enqueue("AAPL", Interval.M1, h(0.5), h(2), Tier.T0)
    assert [(x.start, x.end) for x in more.created] == [(h(1), h(2))] and more.merged_into == []
    assert b.metrics.value("backfill_jobs_enqueued_total", tier="T0") == len(first.created) + len(
        more.created
    )
    # Another symbol or interval is not a duplicate.
    assert (await b.enqueue("MSFT", Interval.M1, h(0), h(1), Tier.T0)).created
    assert (await b.enqueue("AAPL", Interval.D1, h(0), h(1), Tier.T0)).created


async def test_adjacent_queued_job_grows_instead_of_a_new_one(make) -> None:
    b = await make(BACKFILL_CHUNK_MINUTES="240")
    [rec] = (await b.enqueue("AAPL", Interval.M1, h(0), h(1), Tier.T1)).created
    r = await b.enqueue("AAPL", Interval.M1, h(1), h(2), Tier.T1)
    assert r.created == [] and r.merged_into == [rec.id]
    stored = await b.store.get_backfill(rec.id)
    assert (stored.start, stored.end) == (h(0), h(2))
    delivery = await b.queues[Tier.T1].get(timeout=0.1)
    current = b.current(delivery.job)
    assert (current.time_window.start, current.time_window.end) == (h(0), h(2))
    # A running job is not widened.
    b.started(current)
    await b.store.update_backfill(rec.id, status=BackfillStatus.RUNNING, now=T)
    r2 = await b.enqueue("AAPL", Interval.M1, h(2), h(3), Tier.T1)
    assert r2.merged_into == [] and len(r2.created) == 1


async def test_cap_keeps_the_oldest_and_counts_refusals(make) -> None:
    b = await make(BACKFILL_MAX_QUEUE_T2="2")
    for i in range(2):
        assert (await b.enqueue(f"S{i}", Interval.M1, h(0), h(1), Tier.T2)).created
    refused = await b.enqueue("S9", Interval.M1, h(0), h(1), Tier.T2)
    assert refused.created == [] and refused.refused == ["cap"]
    assert b.metrics.value("backfill_jobs_dropped_total", tier="T2") == 1
    assert b.queued(Tier.T2) == 2
    assert {j.symbol for j in await b.store.active_backfills()} == {"S0", "S1"}
    # Other tiers have their own caps.
    assert (await b.enqueue("S9", Interval.M1, h(0), h(1), Tier.T1)).created


async def test_concurrent_enqueues_in_one_process_stop_exactly_at_the_cap(make) -> None:
    # Gap scans of several symbols run at once; each sees room before any row is written.
    b = await make(BACKFILL_MAX_QUEUE_T2="3")
    results = await asyncio.gather(*(b.enqueue(f"S{i}", Interval.M1, h(0), h(1), Tier.T2) for i in range(8)))
    created = [rec for r in results for rec in r.created]
    assert len(created) == 3 and sum(len(r.refused) for r in results) == 5
    assert b.queued(Tier.T2) == 3 and await b.queues[Tier.T2].backlog() == 3
    assert b.metrics.value("backfill_jobs_dropped_total", tier="T2") == 5
    assert {r.id for r in await b.store.active_backfills()} == {rec.id for rec in created}
    # A row written for a job the cap then refused is closed, so restore does not queue it.
    assert await b.restore() == 0


async def test_restore_requeues_what_the_store_says_is_active(make) -> None:
    b = await make()
    a = await b.store.create_backfill("AAPL", Interval.M1, h(0), h(1), Tier.T0, now=T)
    r = await b.store.create_backfill("MSFT", Interval.M1, h(0), h(1), Tier.T1, now=T)
    await b.store.update_backfill(r.id, status=BackfillStatus.RUNNING, now=T, attempts=2)
    done = await b.store.create_backfill("SPY", Interval.M1, h(0), h(1), Tier.T1, now=T)
    await b.store.update_backfill(done.id, status=BackfillStatus.DONE, now=T)
    assert await b.restore() == 2
    assert (await b.store.get_backfill(r.id)).status is BackfillStatus.QUEUED
    d1 = await b.queues[Tier.T1].get(timeout=0.1)
    assert d1.job.backfill_id == r.id and d1.job.attempts == 2
    assert (await b.queues[Tier.T0].get(timeout=0.1)).job.backfill_id == a.id
    assert await b.restore() == 0  # already queued: not twice


async def test_dispatcher_strict_priority_concurrency_and_pace(make) -> None:
    b = await make(BACKFILL_MAX_CONCURRENCY_T0="2", BACKFILL_DISPATCH_RATE_PER_SEC="4")
    for i in range(4):
        await b.enqueue(f"A{i}", Interval.M1, h(0), h(1), Tier.T0)
    for i in range(2):
        await b.enqueue(f"B{i}", Interval.M1, h(0), h(1), Tier.T1)
    started: list[tuple[str, int]] = []
    peak = {"T0": 0}
    running = {"T0": 0}
    release = asyncio.Event()

    async def handler(d: Delivery) -> None:
        tier = d.job.priority.value
        started.append((d.job.symbol, b.queued(Tier.T0)))
        if tier == "T0":
            running["T0"] += 1
            peak["T0"] = max(peak["T0"], running["T0"])
            await release.wait()
            running["T0"] -= 1
        await b.queues[d.job.priority].ack(d)
        b.finished(d.job)

    clock = b.clock
    t0 = clock.now()
    dispatcher = Dispatcher(b, handler, b.settings, clock)
    task = asyncio.get_running_loop().create_task(dispatcher.run())
    await asyncio.sleep(0.3)
    assert [s for s, _ in started] == ["A0", "A1"]  # T0 is full: nothing else starts, not even T1
    release.set()
    for _ in range(100):
        if b.active() == 0:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    order = [s for s, _ in started]
    assert order[:4] == ["A0", "A1", "A2", "A3"] and set(order[4:]) == {"B0", "B1"}
    assert peak["T0"] == 2
    # Six dispatches at 4/s take at least 1.25 s of clock time.
    assert (clock.now() - t0).total_seconds() >= 1.25


async def test_shared_queues_count_the_queue_not_this_processs_memory(tmp_path) -> None:
    # With Redis, another process runs what this one queues; its finishing never reaches
    # this process. The cap must follow the queue, or this process would refuse forever.
    store = SqliteStore(str(tmp_path / "shared.db"))
    await store.open()
    queues = {t: InMemoryJobQueue() for t in Tier}
    settings = load_settings({"BACKFILL_MAX_QUEUE_T1": "2"})
    b = Backfiller(
        store=store, queues=queues, settings=settings, clock=ManualClock(T), metrics=Metrics(), shared=True
    )
    try:
        for round_ in range(3):
            for i in range(2):
                assert (await b.enqueue(f"R{round_}S{i}", Interval.M1, h(0), h(1), Tier.T1)).created
            assert (await b.enqueue("EXTRA", Interval.M1, h(0), h(1), Tier.T1)).refused == ["cap"]
            # "Another worker" takes both jobs and finishes them.
            for _ in range(2):
                d = await queues[Tier.T1].get(timeout=0.1)
                await queues[Tier.T1].ack(d)
                await store.update_backfill(d.job.backfill_id, status=BackfillStatus.DONE, now=T)
        assert b.active() == 0
        # A retry handed back to the shared queue is forgotten here (another worker may run it).
        [rec] = (await b.enqueue("RETRY", Interval.M1, h(0), h(1), Tier.T1)).created
        d = await queues[Tier.T1].get(timeout=0.1)
        job = await b.refresh(d.job)
        b.started(job)
        assert b.active(Tier.T1) == 1
        b.retrying(job)
        assert b.active(Tier.T1) == 0 and rec.id == job.backfill_id
    finally:
        for q in queues.values():
            await q.close()
        await store.close()


async def test_a_dispatcher_cancelled_as_work_arrives_stops(make) -> None:
    # asyncio.wait_for on 3.11 swallowed a cancel that landed as its wait completed, and the
    # dispatcher looped on forever (it hung `mds bench drain` at its very end).
    b = await make()

    async def process(delivery: Delivery) -> None:
        await b.queues[delivery.job.priority].ack(delivery)

    dispatcher = Dispatcher(b, process, b.settings, b.clock)
    for _ in range(20):
        task = asyncio.get_running_loop().create_task(dispatcher.run())
        await asyncio.sleep(0.01)  # parked in its wait for work
        b.wakeup.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=2)
