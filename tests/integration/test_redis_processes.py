"""Against a real Redis: one scheduler leads and a standby takes over; with USE_RLC a worker
consumes the external coordinator's JSON jobs from the seeds' list and dead-letters bad ones;
processes sharing the backfill queues keep the tier caps and strict tier priority exactly."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.jobs import parse_job
from mds.domain.models import Interval, Tier
from mds.domain.records import BackfillStatus
from mds.ingest.backfill import Backfiller
from mds.ingest.dispatch import Dispatcher
from mds.observability.metrics import Metrics
from mds.ops.leader import LeaderLock
from mds.providers.sim.market import ground_truth
from mds.queue.base import Delivery, JobQueue
from mds.queue.redis import RedisJobQueue
from mds.runtime import open_runtime
from mds.storage.sqlite import SqliteStore
from tests.helpers import SIM_ENV
from tests.redis_support import delete_prefix, key_prefix, redis_url

H0 = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _collect_cancelled_redis_connections() -> Iterator[None]:
    """Collect, here, the Redis sockets a runtime closed mid-command leaves to the GC.

    When a worker runtime closes while a redis-py command is in flight, redis-py drops that
    connection without closing its socket (a known loose end, see README); left to the GC,
    its ResourceWarning lands in whichever later test happens to run a collection.
    """
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


async def test_one_leader_and_a_standby_that_takes_over() -> None:
    client = aioredis.Redis.from_url(redis_url())
    key = key_prefix() + "leader"
    try:
        a = LeaderLock(client, key, ttl=0.6, name="a")
        b = LeaderLock(client, key, ttl=0.6, name="b")
        assert await a.try_acquire() and not await b.try_acquire()
        standby = asyncio.create_task(b.acquire())
        await asyncio.sleep(0.3)
        assert not standby.done() and await a.renew()  # the leader renews; the standby waits
        # The leader dies without releasing: its lock expires and the standby leads.
        await asyncio.wait_for(standby, timeout=3)
        assert b.held and await client.get(key) == b"b"
        assert not await a.renew()  # the old leader learns it lost, and cannot release b's lock
        await a.release()
        assert await client.get(key) == b"b"
        await b.release()
        assert await client.get(key) is None
    finally:
        await client.delete(key)
        await client.aclose()


async def test_use_rlc_worker_consumes_the_coordinators_jobs(tmp_path) -> None:
    url, prefix = redis_url(), key_prefix()
    env = {
        **SIM_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/rlc.db",
        "QUEUE_BACKEND": "redis",
        "USE_RLC": "true",
        "RLC_REDIS_URL": url,
        "RLC_REDIS_JOBS_KEY": f"{prefix}jobs",
        **{f"RLC_REDIS_BACKFILL_KEYS__T{i}": f"{prefix}backfills:T{i}" for i in range(3)},
        "BACKFILL_LOOKBACK_DAYS_1M": "0",
        "BACKFILL_LOOKBACK_DAYS_1D": "0",
    }
    settings = load_settings(env)
    client = aioredis.Redis.from_url(url)
    start, end = datetime(2025, 10, 8, 13, 30, tzinfo=UTC), datetime(2025, 10, 8, 14, 0, tzinfo=UTC)
    job = {
        "job_id": "rlc-1",
        "type": "bars_fetch",
        "symbols": ["AAPL", "MSFT"],
        "interval": "1m",
        "time_window": {"start": "2025-10-08T13:30:00Z", "end": "2025-10-08T14:00:00Z"},
        "priority": "T0",
    }
    try:
        # The coordinator pushes with LPUSH; one of its jobs is malformed.
        await client.lpush(f"{prefix}jobs", json.dumps(job))
        await client.lpush(f"{prefix}jobs", json.dumps({**job, "job_id": "bad", "symbols": []}))
        clock = ManualClock(datetime(2025, 10, 8, 15, 0, tzinfo=UTC))
        async with open_runtime(
            settings, clock=clock, roles=frozenset({"worker"}), environ=env, demo=True
        ) as rt:
            for _ in range(100):
                stored = [await rt.store.read_bars(s, Interval.M1, start, end) for s in ("AAPL", "MSFT")]
                if all(len(b) == 30 for b in stored):
                    break
                await asyncio.sleep(0.1)
            for symbol, bars in zip(("AAPL", "MSFT"), stored, strict=True):
                truth = ground_truth(symbol, Interval.M1, start, end)
                assert [(b.ts, b.close) for b in bars] == [(t.ts, t.close) for t in truth]
            assert rt.collector is not None and rt.collector._sweeper is None  # USE_RLC: no sweeper here
        dead = [json.loads(x) for x in await client.lrange(f"{prefix}jobs:dlq", 0, -1)]
        assert len(dead) == 1 and "symbols" in dead[0]["reason"] and "bad" in dead[0]["raw"]
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


@dataclass
class BackfillProcess:
    """What one MDS process holds for backfills: its own store connection, Redis client and
    queue instances (one consumer name), over the tier keys every process shares."""

    backfiller: Backfiller
    client: aioredis.Redis
    store: SqliteStore

    async def close(self) -> None:
        for q in self.backfiller.queues.values():
            await q.close()
        await self.client.aclose()
        await self.store.close()


@pytest.fixture
async def backfill_processes(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[BackfillProcess]]]:
    url, prefix = redis_url(), key_prefix()
    opened: list[BackfillProcess] = []

    async def start(name: str, **env: str) -> BackfillProcess:
        settings = load_settings({"BACKFILL_CHUNK_MINUTES": "60", **env})
        store = SqliteStore(tmp_path / "shared.db")  # one database, as the processes share PostgreSQL
        await store.open()
        client = aioredis.Redis.from_url(url)
        queues: dict[Tier, JobQueue] = {
            t: RedisJobQueue(client, f"{prefix}backfills:{t.value}", consumer=name, poll_interval=0.1)
            for t in Tier
        }
        clock = ManualClock(datetime(2025, 10, 8, 15, 0, tzinfo=UTC))
        backfiller = Backfiller(
            store=store, queues=queues, settings=settings, clock=clock, metrics=Metrics(), shared=True
        )
        opened.append(BackfillProcess(backfiller, client, store))
        return opened[-1]

    yield start
    for p in opened:
        await p.close()
    client = aioredis.Redis.from_url(url)
    await delete_prefix(client, prefix)
    await client.aclose()


async def test_processes_racing_to_enqueue_backfills_stop_exactly_at_the_tier_cap(backfill_processes) -> None:
    cap = 10
    a = await backfill_processes("proc-a", BACKFILL_MAX_QUEUE_T1=str(cap))
    b = await backfill_processes("proc-b", BACKFILL_MAX_QUEUE_T1=str(cap))
    queue_a = a.backfiller.queues[Tier.T1]
    assert isinstance(queue_a, RedisJobQueue)
    # A job of proc-a failed once and waits out its retry delay: it holds a place under the cap.
    [retried] = (await a.backfiller.enqueue("RETRY", Interval.M1, H0, H0 + HOUR, Tier.T1)).created
    d = await queue_a.get(timeout=1.0)
    assert d is not None and d.job.backfill_id == retried.id
    await queue_a.nack(d, delay=60.0, job=d.job.model_copy(update={"attempts": 1}))
    assert await queue_a.depth() == 0  # the retry is invisible to depth ...
    assert await b.backfiller.queues[Tier.T1].backlog() == 1  # ... not to the other process

    # Both processes find 15 gaps each at once; every enqueue sees room before any is queued.
    results = await asyncio.gather(
        *(
            p.backfiller.enqueue(f"{tag}{i}", Interval.M1, H0, H0 + HOUR, Tier.T1)
            for i in range(15)
            for p, tag in ((a, "A"), (b, "B"))
        )
    )
    created = [rec for r in results for rec in r.created]
    refused = [why for r in results for why in r.refused]
    assert len(created) == cap - 1 and refused == ["cap"] * (30 - (cap - 1))

    queued_ids = {parse_job(raw).backfill_id for raw in await a.client.lrange(queue_a.key, 0, -1)}
    assert await a.client.zcard(queue_a.delayed_key) == 1
    assert queued_ids == {rec.id for rec in created}
    assert await queue_a.backlog() == cap

    def counted(name: str) -> float:
        return sum(p.backfiller.metrics.value(name, tier="T1") for p in (a, b))

    assert counted("backfill_jobs_dropped_total") == len(refused)
    assert counted("backfill_jobs_enqueued_total") == cap  # the retried job and the nine
    # The store agrees with the queue: what is active is exactly what is queued or retrying,
    # and a row made for a job the queue then refused is closed, not left active.
    active = await a.store.active_backfills()
    assert {r.id for r in active} == queued_ids | {retried.id}
    closed = await a.store.list_backfills(status=BackfillStatus.DONE, limit=100)
    assert all(r.last_error and r.last_error.startswith("refused") for r in closed)
    assert len(active) + len(closed) == len(await a.store.list_backfills(limit=100))
    # A later gap of a refused symbol is not taken for a duplicate of its closed row.
    loser = next(f"{t}{i}" for i in range(15) for t in "AB" if f"{t}{i}" not in {c.symbol for c in created})
    d2 = await queue_a.get(timeout=1.0)
    assert d2 is not None
    await queue_a.ack(d2)
    again = await b.backfiller.enqueue(loser, Interval.M1, H0, H0 + HOUR, Tier.T1)
    assert len(again.created) == 1 and await queue_a.backlog() == cap


async def test_dispatch_holds_lower_tiers_back_for_a_retry_pending_in_another_process(
    backfill_processes,
) -> None:
    a = await backfill_processes("proc-a")
    b = await backfill_processes("proc-b")
    queue_a = a.backfiller.queues[Tier.T0]
    [hot] = (await a.backfiller.enqueue("HOT", Interval.M1, H0, H0 + HOUR, Tier.T0)).created
    d = await queue_a.get(timeout=1.0)
    assert d is not None and d.job.backfill_id == hot.id
    await queue_a.nack(d, delay=1.0)  # proc-a's T0 job failed once; it is due again in 1 s
    await b.backfiller.enqueue("COLD", Interval.M1, H0, H0 + HOUR, Tier.T1)

    started: list[str] = []

    async def handler(delivery: Delivery) -> None:
        started.append(delivery.job.symbol)
        await b.backfiller.queues[delivery.job.priority].ack(delivery)
        b.backfiller.finished(delivery.job)

    bf = b.backfiller
    dispatcher = Dispatcher(bf, handler, bf.settings, bf.clock)
    task = asyncio.get_running_loop().create_task(dispatcher.run())
    try:
        await asyncio.sleep(0.6)
        assert started == []  # T1 waits although proc-b has nothing of T0 in its own memory
        for _ in range(100):
            if len(started) == 2:
                break
            await asyncio.sleep(0.05)
        assert started == ["HOT", "COLD"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
