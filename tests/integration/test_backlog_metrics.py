"""backfill_queue_depth{tier} and backfill_oldest_age_seconds{tier} report the shared backlog
in every process: a worker process on Redis queues reports what an API process enqueued,
and /ops/dlq/stats gives the same reading."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.runtime import Runtime, open_runtime
from tests.helpers import SIM_ENV
from tests.integration.conftest import asgi_client
from tests.redis_support import delete_prefix, key_prefix, redis_url

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class StandingClock(ManualClock):
    """Time that stands still: a loop sleeping on it never wakes (ManualClock's sleep moves
    time on), so the worker's ages below are read at exactly the time it was given."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


async def backlog_metrics(rt: Runtime) -> dict[tuple[str, str], float]:
    async with asgi_client(rt) as client:
        text = (await client.get("/metrics")).text
    return {
        (s.name, s.labels["tier"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in ("backfill_queue_depth", "backfill_oldest_age_seconds")
    }


async def test_a_worker_process_reports_the_backlog_an_api_process_queued(tmp_path) -> None:
    url, prefix = redis_url(), key_prefix()
    env = {
        **SIM_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/shared.db",
        "QUEUE_BACKEND": "redis",
        "RLC_REDIS_URL": url,
        "RLC_REDIS_JOBS_KEY": f"{prefix}jobs",
        **{f"RLC_REDIS_BACKFILL_KEYS__T{i}": f"{prefix}backfills:T{i}" for i in range(3)},
        "LOCAL_SWEEP_ENABLED": "false",
        "BACKFILL_LOOKBACK_DAYS_1M": "0",
        "BACKFILL_LOOKBACK_DAYS_1D": "0",
    }
    settings = load_settings(env)
    client = aioredis.Redis.from_url(url)
    try:
        async with open_runtime(
            settings, clock=ManualClock(NOW), demo=True, collect=False, environ=env
        ) as api:
            assert api.collector is not None
            b = api.collector.backfiller
            for day in range(5):  # five T0 jobs, three T1 jobs (one day of 1m bars each)
                await b.enqueue("AAPL", Interval.M1, NOW - (day + 2) * DAY, NOW - (day + 1) * DAY, Tier.T0)
            for day in range(3):
                await b.enqueue("JPM", Interval.M1, NOW - (day + 2) * DAY, NOW - (day + 1) * DAY, Tier.T1)
            # Every job waits out a retry delay in Redis (as after a failed attempt): the worker
            # below cannot take them, so the backlog it must report holds still.
            for tier, n in ((Tier.T0, 5), (Tier.T1, 3)):
                queue = api.backfill_queues[tier]
                for _ in range(n):
                    delivery = await queue.get(timeout=1)
                    assert delivery is not None
                    await queue.nack(delivery, delay=3600)
                assert await queue.depth() == 0 and await queue.backlog() == n
            later = StandingClock(NOW + timedelta(minutes=10))
            async with open_runtime(
                settings, clock=later, demo=True, roles=frozenset({"worker"}), environ=env, consumer="w1"
            ) as worker:
                assert worker.collector is not None
                seen = await backlog_metrics(worker)
                assert seen[("backfill_queue_depth", "T0")] == 5
                assert seen[("backfill_queue_depth", "T1")] == 3
                assert seen[("backfill_queue_depth", "T2")] == 0
                # Its own index holds none of them: what the gauge used to report.
                assert worker.collector.backfiller.queued() == 0
                # Ages come from the shared ledger, on the worker's clock (10 minutes on).
                assert seen[("backfill_oldest_age_seconds", "T0")] == 600
                assert seen[("backfill_oldest_age_seconds", "T1")] == 600
                assert seen[("backfill_oldest_age_seconds", "T2")] == 0
                # The API process reads the same backlog, on its own clock; so does its DLQ view.
                there = await backlog_metrics(api)
                assert there[("backfill_queue_depth", "T0")] == 5
                assert there[("backfill_oldest_age_seconds", "T1")] == 0
                async with asgi_client(worker) as c:
                    queue = (await c.get("/ops/dlq/stats")).json()["queue"]
                assert queue["queued"] == {"T0": 5, "T1": 3, "T2": 0}
                assert queue["oldest_age_seconds_by_tier"] == {"T0": 600.0, "T1": 600.0, "T2": 0.0}
                assert queue["oldest_age_seconds"] == 600.0
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


async def test_embedded_metrics_report_the_in_process_backlog_per_tier(api) -> None:
    client, rt = api
    assert rt.collector is not None
    await rt.collector.backfiller.enqueue("AAPL", Interval.M1, NOW - 3 * DAY, NOW - 2 * DAY, Tier.T2)
    rt.clock.advance(90)  # type: ignore[attr-defined]
    seen = await backlog_metrics(rt)
    assert seen[("backfill_queue_depth", "T2")] == 1 and seen[("backfill_queue_depth", "T0")] == 0
    assert seen[("backfill_oldest_age_seconds", "T2")] == 90
