"""The scheduler's two limits (issue 15): the leader's tick over 1,000 schedules, and fire latency.

**Tick** (target: under 5 ms p99). ``schedules`` schedules (cron in six zones: hourly,
daily, weekday, weekly, monthly, every 5 and 15 minutes; and XNYS market-relative ones:
after the close, before and after the open; the mix is in the answer) are stored in a
SQLite store and planned by a real :class:`~mds.ops.scheduler.Scheduler` on a
ManualClock. The clock then walks from due time to due time over ``days`` days, and each
tick is timed as the leader runs it: ``due(now)`` (finding what is due) and ``fire()``
for each due entry, with the store's compare-and-set answered in memory (a wrapper whose
``fire_schedule`` returns None, as when another scheduler fired first) so the figure is
the in-memory part: the due time, the coalescing count, the run row built, the next due
time planned. ``due_*`` is the finding alone; ``plan_ms`` the in-memory plan of every
schedule; ``reload_ms`` a reload from the store (read + plan).

**Fire latency** (target: within 1 s of the due time, wall). A real Scheduler and
TaskRunner (``TASK_WORKERS`` consumers per queue on in-process TaskQueues, or Redis with
``queue="redis"``) on a SQLite store (or PostgreSQL), running the catalog's ``ping``.
Two rounds of ``fires`` fires each: ``burst``, every schedule due at the same minute on a
clock at speed 1 (the worst case: the leader fires them one after the other), and
``paced``, five schedules due per clock minute on a clock at speed 60, clock delays
divided by the speed. The latency of a fire is its run's ``started_at - due_at``: the
scheduler waking, the store's compare-and-set, the queue, and a worker claiming the run.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mds.benchmarks.live import percentile
from mds.calendar import get_calendar
from mds.config import Settings, load_settings
from mds.domain.clock import Clock, ManualClock, SimulatedClock
from mds.domain.schedules import JobRun, RunStatus, Schedule, ScheduleMetadata
from mds.ops import timing
from mds.ops.catalog import Catalog, TaskContext
from mds.ops.runs import RunSubmitter, TaskRunner
from mds.ops.scheduler import Scheduler
from mds.queue.memory import InMemoryJobQueue
from mds.queue.tasks import TaskQueues
from mds.storage.base import Store
from mds.storage.sqlite import SqliteStore

#: A Monday, 00:00 UTC: the walk crosses sessions, a weekday boundary in every zone, a week.
T0 = datetime(2025, 10, 20, 0, 0, tzinfo=UTC)
ZONES = ("UTC", "America/New_York", "Europe/London", "Asia/Tokyo", "Australia/Sydney", "America/Chicago")
TICK_P99_MS_TARGET = 5.0
FIRE_LATENCY_TARGET_S = 1.0
#: Schedules due per clock minute in the paced round, and that round's clock speed.
PACED_PER_MINUTE = 5
PACED_SPEED = 60.0
#: The catalog tasks' services a ``ping`` run does not touch.
_NO_SERVICES: dict[str, Any] = dict.fromkeys(
    ("router", "backfiller", "indexes", "tracked", "coverage", "analysis")
)


def mix(n: int, seed: int = 15) -> list[Schedule]:
    """``n`` schedules of ``ping``: 75% cron, 25% XNYS market-relative. Cron minutes, hours
    and zones (ZONES) are drawn at random, so most schedules have a timing of their own;
    the every-5 and every-15 minute ones share theirs and fall due together."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        m, h, zone = rng.randrange(60), rng.randrange(24), rng.choice(ZONES)
        kind = i % 20
        timing: dict[str, str]
        if kind < 5:
            timing = {"cron": f"{m} * * * *"}  # hourly
        elif kind < 9:
            timing = {"cron": f"{m} {h} * * *"}  # daily
        elif kind < 11:
            timing = {"cron": f"{m} {h} * * 1-5"}  # weekdays
        elif kind == 11:
            timing = {"cron": f"{m} {h} * * {rng.randrange(7)}"}  # weekly
        elif kind == 12:
            timing = {"cron": f"{m} {h} {rng.randrange(1, 29)} * *"}  # monthly
        elif kind == 13:
            timing = {"cron": "*/15 * * * *"}
        elif kind == 14:
            timing = {"cron": "*/5 * * * *"}
        elif kind < 18:
            timing = {"calendar": "XNYS", "when": f"after_close+{rng.randrange(5, 300)}m"}  # nightly
        elif kind == 18:
            timing = {"calendar": "XNYS", "when": f"before_open-{rng.randrange(5, 120)}m"}
        else:
            timing = {"calendar": "XNYS", "when": f"after_open+{rng.randrange(0, 60)}m"}
        if "cron" in timing:
            timing["timezone"] = zone
        out.append(Schedule.model_validate({"name": f"s{i:05d}", "task": "ping", "since": T0, **timing}))
    return out


def mix_counts(schedules: list[Schedule]) -> dict[str, int]:
    """How many schedules of each kind ``mix`` made, and how many distinct timings."""
    counts: dict[str, int] = {}
    for s in schedules:
        if s.cron is None:
            key = "calendar:" + re.split(r"[+-]", s.when or "")[0]
        else:
            minute, hour, dom, _, dow = s.cron.split()
            key = "cron:" + (
                minute
                if minute.startswith("*/")
                else "hourly"
                if hour == "*"
                else "weekdays"
                if dow == "1-5"
                else "weekly"
                if dow != "*"
                else "monthly"
                if dom != "*"
                else "daily"
            )
        counts[key] = counts.get(key, 0) + 1
    counts = dict(sorted(counts.items()))
    counts["distinct_timings"] = len({(s.cron, s.timezone, s.calendar, s.when) for s in schedules})
    return counts


class _FiredElsewhere(SqliteStore):
    """A SQLite store whose compare-and-set is answered in memory (another scheduler fired
    first), so a tick is timed without the store's write."""

    async def fire_schedule(self, name: str, due_at: datetime, run: JobRun) -> JobRun | None:
        return None


def _forget_timings() -> None:
    """Drop the parsed timings (:func:`mds.ops.timing.timing_for` shares them per process)."""
    timing._cron_timing.cache_clear()
    timing._market_timing.cache_clear()


def _ms(values: list[float], q: float) -> float:
    v = percentile(values, q)
    return round((v or 0.0) * 1000, 3)


def _runner(store: Store, clock: Clock, settings: Settings, queues: TaskQueues | None) -> TaskRunner:
    catalog = Catalog()
    submitter = RunSubmitter(store=store, catalog=catalog, clock=clock, queues=queues)
    ctx = TaskContext(
        store=store, calendar=get_calendar("XNYS"), clock=clock, settings=settings, **_NO_SERVICES
    )
    return TaskRunner(submitter=submitter, ctx=ctx)


async def _tick(schedules: int, days: float) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-scheduler-tick-"))
    store = _FiredElsewhere(workdir / "tick.db")
    try:
        await store.open()
        return await _walk(store, schedules, days)
    finally:
        await store.close()
        shutil.rmtree(workdir, ignore_errors=True)


async def _walk(store: SqliteStore, schedules: int, days: float) -> dict[str, object]:
    planned = mix(schedules)
    for s in planned:
        await store.put_schedule(s)
    clock = ManualClock(T0)
    runner = _runner(store, clock, load_settings({}), None)
    scheduler = Scheduler(store=store, runner=runner, clock=clock)

    # A new leader's first plan: every timing parsed (croniter, calendars) from nothing.
    stored = await store.schedules()
    cold = []
    for _ in range(5):
        _forget_timings()
        t = time.perf_counter()
        scheduler.plan(stored)
        cold.append(time.perf_counter() - t)
    # A running leader's reload after a change: the store read, then the plan.
    reloads = []
    for _ in range(5):
        scheduler._seen = None  # the store did not change: make it read anyway
        t = time.perf_counter()
        await scheduler.reload_if_changed()
        reloads.append(time.perf_counter() - t)

    end = T0 + timedelta(days=days)
    ticks, finds, sizes = [], [], []
    while (now := scheduler.next_due()) is not None and now < end:
        clock.set(now)
        t = time.perf_counter()
        entries = scheduler.due(now)
        found = time.perf_counter()
        for entry in entries:
            await scheduler.fire(entry, now)
        ticks.append(time.perf_counter() - t)
        finds.append(found - t)
        sizes.append(len(entries))
    fires = sum(sizes)
    return {
        "schedules": schedules,
        "planned": len(scheduler._entries),
        "mix": mix_counts(planned),
        "clock_days": days,
        "ticks": len(ticks),
        "fires": fires,
        "fires_per_tick_p50": statistics.median(sizes) if sizes else 0,
        "fires_per_tick_max": max(sizes, default=0),
        "tick_p50_ms": _ms(ticks, 0.5),
        "tick_p99_ms": _ms(ticks, 0.99),
        "tick_max_ms": _ms(ticks, 1.0),
        "due_p50_ms": _ms(finds, 0.5),
        "due_p99_ms": _ms(finds, 0.99),
        "per_fire_us": round(sum(ticks) / fires * 1e6, 1) if fires else None,
        "plan_cold_ms": round(statistics.median(cold) * 1000, 2),
        "reload_ms": round(statistics.median(reloads) * 1000, 2),
    }


def _latency_schedules(fires: int, *, paced: bool, since: datetime) -> list[Schedule]:
    """``fires`` schedules, each firing once in the round: all at the first minute, or
    PACED_PER_MINUTE per minute over the following minutes."""
    out = []
    for i in range(fires):
        minute = (since + timedelta(minutes=1 + (i // PACED_PER_MINUTE if paced else 0))).minute
        out.append(
            Schedule(
                name=f"lat{i:04d}",
                task="ping",
                cron=f"{minute} * * * *",
                kwargs={"seconds": 0},
                metadata=ScheduleMetadata(queue="default"),
                since=since,
            )
        )
    return out


async def _latency_round(
    store: Store, queues: TaskQueues, fires: int, *, paced: bool, workers: int
) -> dict[str, object]:
    speed = PACED_SPEED if paced else 1.0
    # Start a little before a minute boundary: one second of wall time, in clock time.
    wall = datetime.now(UTC)
    boundary = wall.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = boundary - timedelta(seconds=speed * 1.0)
    clock = SimulatedClock(start, speed)
    since = boundary - timedelta(minutes=1)  # the schedules' first due time is the boundary
    names = []
    for s in _latency_schedules(fires, paced=paced, since=since):
        s.name = f"{'paced' if paced else 'burst'}-{s.name}"
        await store.put_schedule(s)
        names.append(s.name)
    settings = load_settings({})
    runner = _runner(store, clock, settings, queues)
    scheduler = Scheduler(
        store=store, runner=runner, clock=clock, reload_seconds=settings.SCHEDULER_RELOAD_SEC
    )
    runner.start(workers)
    lead = asyncio.get_running_loop().create_task(scheduler.run())
    wanted = set(names)
    last_due = since + timedelta(minutes=1 + ((fires - 1) // PACED_PER_MINUTE if paced else 0))
    deadline = time.monotonic() + (last_due - start).total_seconds() / speed + 60.0
    runs: list[JobRun] = []
    try:
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            runs = [
                r
                for r in await store.job_runs(status=RunStatus.SUCCEEDED, limit=10 * fires)
                if r.schedule in wanted
            ]
            if len(runs) >= fires:
                break
    finally:
        lead.cancel()
        await asyncio.gather(lead, return_exceptions=True)
        await runner.stop()
        for name in names:
            await store.delete_schedule(name)
    delays = sorted(
        (r.started_at - r.due_at).total_seconds() / speed
        for r in runs
        if r.started_at is not None and r.due_at is not None
    )
    # Where the time goes: the leader firing (the run's row written and queued) ...
    fired = [(r.queued_at - r.due_at).total_seconds() / speed for r in runs if r.due_at is not None]
    within = sum(1 for d in delays if d <= FIRE_LATENCY_TARGET_S)
    return {
        "fires": fires,
        "measured": len(delays),
        "clock_speed": speed,
        "latency_p50_s": round(statistics.median(delays), 4) if delays else None,
        "latency_p99_s": round(percentile(delays, 0.99) or 0.0, 4) if delays else None,
        "latency_max_s": round(max(delays), 4) if delays else None,
        "within_target_share": round(within / fires, 4),
        # ... and of that, the part until the leader had queued the run.
        "queued_p99_s": round(percentile(fired, 0.99) or 0.0, 4) if fired else None,
    }


@asynccontextmanager
async def _store(backend: str) -> AsyncIterator[Store]:
    if backend == "sqlite":
        workdir = Path(tempfile.mkdtemp(prefix="mds-bench-scheduler-"))
        store = SqliteStore(workdir / "scheduler.db")
        try:
            await store.open()
            yield store
        finally:
            await store.close()
            shutil.rmtree(workdir, ignore_errors=True)
        return
    from mds.benchmarks.pg import create_db, drop_db
    from mds.storage.postgres import PostgresStore

    url = await create_db()
    try:
        pg = PostgresStore(url, pool_max=8)
        await pg.open()
        try:
            yield pg
        finally:
            await pg.close()
    finally:
        await drop_db(url)


@asynccontextmanager
async def _queues(kind: str, names: list[str]) -> AsyncIterator[TaskQueues]:
    if kind == "memory":
        queues = TaskQueues.build(names, lambda _: InMemoryJobQueue())
        try:
            yield queues
        finally:
            await queues.close()
        return
    import os

    from redis.asyncio import Redis

    from mds.constants import BENCH_PREFIX, task_queue_key
    from mds.domain.models import Tier
    from mds.queue.redis import RedisJobQueue
    from mds.queue.tasks import BandedQueue

    redis = Redis.from_url(os.environ.get("MDS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    prefix = f"{BENCH_PREFIX}{uuid.uuid4().hex[:8]}:jobs"

    def banded(q: str) -> BandedQueue:
        return BandedQueue(
            {
                t: RedisJobQueue(
                    redis, task_queue_key(prefix, q, t.value), consumer="bench", visibility_timeout=30.0
                )
                for t in Tier
            }
        )

    queues = TaskQueues.build(names, banded)
    try:
        yield queues
    finally:
        await queues.close()
        async for key in redis.scan_iter(match=f"{prefix}*"):
            await redis.delete(key)
        await redis.aclose()


async def _run(backend: str, queue: str, schedules: int, days: float, fires: int) -> dict[str, object]:
    settings = load_settings({})
    tick = await _tick(schedules, days)
    async with _store(backend) as store, _queues(queue, list(settings.TASK_QUEUES)) as queues:
        burst = await _latency_round(store, queues, fires, paced=False, workers=settings.TASK_WORKERS)
        paced = await _latency_round(store, queues, fires, paced=True, workers=settings.TASK_WORKERS)
    worst = [r["latency_max_s"] for r in (burst, paced)]
    return {
        "benchmark": "scheduler",
        "backend": backend,
        "queue": queue,
        "tick": tick,
        "fire_latency": {"task_workers": settings.TASK_WORKERS, "burst": burst, "paced": paced},
        "tick_p99_ms_target": TICK_P99_MS_TARGET,
        "fire_latency_target_s": FIRE_LATENCY_TARGET_S,
        "tick_pass": isinstance(tick["tick_p99_ms"], float) and tick["tick_p99_ms"] < TICK_P99_MS_TARGET,
        "fire_latency_pass": all(
            r["measured"] == fires and isinstance(w, float) and w <= FIRE_LATENCY_TARGET_S
            for r, w in zip((burst, paced), worst, strict=True)
        ),
    }


def run(
    backend: str = "sqlite", queue: str = "memory", schedules: int = 1000, days: float = 7.0, fires: int = 100
) -> dict[str, object]:
    """Tick over ``schedules`` schedules for ``days`` of clock time, then two rounds of
    ``fires`` fires; ``backend`` sqlite or postgres, ``queue`` memory or redis."""
    if backend not in ("sqlite", "postgres"):
        raise ValueError(f"backend: {backend!r}; use sqlite or postgres")
    if queue not in ("memory", "redis"):
        raise ValueError(f"queue: {queue!r}; use memory or redis")
    return asyncio.run(_run(backend, queue, schedules, days, fires))
