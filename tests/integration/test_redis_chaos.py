"""Chaos on a throwaway Redis: a worker killed mid-batch, and Redis itself restarted.

Every test here starts its own ``redis-server`` on a free port and kills it at the end;
the machine's Redis is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from mds.domain.jobs import QuotesFetchJob
from mds.errors import QueueError
from mds.queue.redis import RedisJobQueue
from tests.conftest import skip_or_fail
from tests.redis_support import RedisServer, redis_server_binary

pytestmark = pytest.mark.slow

KEY = "market:jobs"
ROOT = Path(__file__).resolve().parents[2]


def job(name: str) -> QuotesFetchJob:
    return QuotesFetchJob(job_id=name, symbols=["SPY"])


def new_server(tmp_path: Path, *, appendonly: bool = False) -> RedisServer:
    if redis_server_binary() is None:
        skip_or_fail("redis-server is not installed; the chaos tests need a throwaway server")
    server = RedisServer(appendonly=appendonly, workdir=tmp_path)
    server.start()
    return server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    s = new_server(tmp_path)
    try:
        yield s
    finally:
        s.kill()


@pytest.fixture
async def client(server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(server.url, socket_timeout=5, socket_connect_timeout=1)
    try:
        yield c
    finally:
        await c.aclose()


# A worker process: takes ``take`` jobs, acks the first ``ack`` of them, says so, then
# hangs "mid-batch" until it is killed with SIGKILL.
_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    import redis.asyncio as aioredis
    from mds.queue.redis import RedisJobQueue

    async def main(url, take, ack):
        client = aioredis.Redis.from_url(url)
        q = RedisJobQueue(client, "market:jobs", consumer="worker-doomed", visibility_timeout=1.0)
        done, held = [], []
        for i in range(take):
            d = await q.get(timeout=5)
            (done if i < ack else held).append(d.job.job_id)
            if i < ack:
                await q.ack(d)
        print("acked=" + ",".join(done), "held=" + ",".join(held), flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    """
)


async def run_to_completion(q: RedisJobQueue, done: list[str], idle: float = 2.5) -> None:
    """Work until the queue has been empty for ``idle`` seconds."""
    while (d := await q.get(timeout=idle)) is not None:
        done.append(d.job.job_id)
        await q.ack(d)


async def test_a_killed_worker_loses_no_job(server: RedisServer, client: aioredis.Redis) -> None:
    names = [f"job{i:02d}" for i in range(30)]
    producer = RedisJobQueue(client, KEY)
    for n in names:
        await producer.put(job(n))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WORKER, server.url, "8", "3", stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert worker.stdout is not None
        line = (await asyncio.wait_for(worker.stdout.readline(), 20)).decode()
        acked_part, held_part = line.split()
        acked = acked_part.removeprefix("acked=").split(",")
        held = held_part.removeprefix("held=").split(",")
        assert len(acked) == 3 and len(held) == 5
        assert await client.llen(f"{KEY}:processing:worker-doomed") == 5
    finally:
        worker.send_signal(signal.SIGKILL)  # kill -9, mid-batch
        await worker.wait()

    survivor = RedisJobQueue(client, KEY, visibility_timeout=1.0, poll_interval=0.2)
    done: list[str] = []
    await run_to_completion(survivor, done)
    await survivor.close()
    # Every job completed at least once; the five the dead worker held were recovered.
    assert sorted(set(acked + done)) == names
    assert set(held) <= set(done) and survivor.recovered == 5
    assert not set(acked) & set(done)  # acked work is not redone
    assert await client.llen(KEY) == 0
    assert await client.exists(f"{KEY}:processing:worker-doomed") == 0


async def test_ingestion_resumes_after_redis_restarts(server: RedisServer, client: aioredis.Redis) -> None:
    consumer = RedisJobQueue(client, KEY, visibility_timeout=2.0, poll_interval=0.2)
    producer = RedisJobQueue(client, KEY)
    done: list[str] = []
    paused = asyncio.Event()

    async def worker() -> None:  # the shape of mds.ingest.worker.Worker.run
        while True:
            if paused.is_set():
                await asyncio.sleep(0.05)
                continue
            d = await consumer.get(timeout=0.5)
            if d is None:
                continue
            done.append(d.job.job_id)
            with contextlib.suppress(QueueError):  # redelivered later at worst: at-least-once
                await consumer.ack(d)

    task = asyncio.create_task(worker())
    try:
        for i in range(5):
            await producer.put(job(f"before{i}"))
        await wait_for(lambda: len(done) == 5)

        # Jobs still waiting when a Redis without persistence dies are gone with it:
        # this deployment mode trades them for speed (see the appendonly test below).
        paused.set()
        await asyncio.sleep(0.6)  # let a get() in progress finish
        for i in range(3):
            await producer.put(job(f"lost{i}"))
        server.kill()
        with pytest.raises(QueueError):
            await producer.put(job("while-down"))
        await asyncio.sleep(0.5)
        server.start()
        assert await producer.depth() == 0
        paused.clear()

        for i in range(5):
            await producer.put(job(f"after{i}"))
        await wait_for(lambda: sum(n.startswith("after") for n in done) == 5, timeout=15)
        assert [n for n in done if n.startswith("after")] == [f"after{i}" for i in range(5)]
        assert not [n for n in done if n.startswith("lost")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.close()


async def test_with_appendonly_no_job_is_lost_across_a_redis_crash(tmp_path: Path) -> None:
    server = new_server(tmp_path, appendonly=True)
    client = aioredis.Redis.from_url(server.url, socket_timeout=5, socket_connect_timeout=1)
    try:
        names = [f"job{i:02d}" for i in range(10)]
        producer = RedisJobQueue(client, KEY)
        for n in names:
            await producer.put(job(n))
        first = RedisJobQueue(client, KEY, consumer="w1", visibility_timeout=1.0, poll_interval=0.2)
        done: list[str] = []
        for _ in range(4):
            d = await first.get(timeout=2)
            assert d is not None
            done.append(d.job.job_id)
            if len(done) <= 2:
                await first.ack(d)
        await first.abandon()  # two taken and unacked when Redis dies

        server.kill()  # SIGKILL; appendfsync always has every write on disk already
        server.start()

        second = RedisJobQueue(client, KEY, visibility_timeout=1.0, poll_interval=0.2)
        await run_to_completion(second, done, idle=2.5)
        await second.close()
        assert sorted(set(done)) == names
        assert len(done) == 12  # the two unacked ones ran twice: at-least-once
    finally:
        await client.aclose()
        server.kill()


async def wait_for(check: object, timeout: float = 10.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
