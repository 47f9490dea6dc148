"""Against a real Redis: one scheduler leads and a standby takes over; with USE_RLC a worker
consumes the external coordinator's JSON jobs from the seeds' list and dead-letters bad ones."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import redis.asyncio as aioredis

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval
from mds.ops.leader import LeaderLock
from mds.providers.sim.market import ground_truth
from mds.runtime import open_runtime
from tests.redis_support import delete_prefix, key_prefix, redis_url


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
        **{f"POLICY_{c}": "sim,sim_backup" for c in ("BARS_1M", "EOD", "QUOTES_L1", "OPTIONS_CHAIN")},
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
