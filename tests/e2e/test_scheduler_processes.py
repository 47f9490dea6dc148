"""Two `mds scheduler` processes and a worker on Redis + PostgreSQL, on one simulated clock.

An hour of clock time (speed 60: a clock minute per wall second) with two schedules of
the `ping` task, both every minute: A returns at once, B sleeps 90 clock seconds (longer
than its cadence) under ``single_flight``. Half way through, the leading scheduler is
killed with SIGKILL; the standby takes the Redis lock once it expires (its TTL is 15 wall
seconds, a quarter of an hour of clock time) and fires the missed minutes as ONE
coalesced run, never a due time twice.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.schedules import JobRun, RunStatus, Safety, ScheduleMetadata, ScheduleSpec
from mds.ops.catalog import Catalog
from mds.ops.runs import RunSubmitter
from mds.services.schedules import ScheduleService
from mds.storage.postgres import PostgresStore
from tests.e2e.conftest import Proc, free_port, wait_for
from tests.helpers import SIM_ENV
from tests.redis_support import key_prefix, redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEED = 60.0  # clock seconds per wall second: the hour takes a wall minute
START = datetime(2025, 10, 11, 12, 0, tzinfo=UTC)  # a Saturday: no session, no live work
KILL_AT = START + timedelta(minutes=30)
END = START + timedelta(minutes=62)
MINUTE = timedelta(minutes=1)
SKIP_SLACK = timedelta(seconds=6)  # a tenth of a wall second at 60x
COALESCED = re.compile(r"^coalesced: stands for (\d+) due times since (\S+)$")


async def _create_schedules(url: str) -> None:
    """Write A and B through the service (validation, audit stamps), at the clock's start."""
    store = PostgresStore(url, pool_max=2)
    await store.open()  # migrates the fresh database before any process opens it
    try:
        clock, catalog = ManualClock(START), Catalog()
        submitter = RunSubmitter(store=store, catalog=catalog, clock=clock, queues=None)
        service = ScheduleService(
            store=store, catalog=catalog, submitter=submitter, clock=clock, settings=load_settings({})
        )
        await service.create(
            ScheduleSpec(name="a-every-minute", task="ping", cron="* * * * *", kwargs={"seconds": 0}),
            by="e2e",
        )
        await service.create(
            ScheduleSpec(
                name="b-slower-than-cadence",
                task="ping",
                cron="* * * * *",
                kwargs={"seconds": 90},
                metadata=ScheduleMetadata(safety=Safety(single_flight=True, timeout_s=600)),
            ),
            by="e2e",
        )
    finally:
        await store.close()


async def _runs(url: str) -> dict[str, list[JobRun]]:
    store = PostgresStore(url, pool_max=2)
    await store.open()
    try:
        return {
            name: sorted(await store.job_runs(schedule=name, limit=10_000), key=lambda r: r.due_at or START)
            for name in ("a-every-minute", "b-slower-than-cadence")
        }
    finally:
        await store.close()


def _wall(at: datetime, anchor: float) -> float:
    """The wall-clock epoch second at which the shared clock reads ``at``."""
    return anchor + (at - START).total_seconds() / SPEED


def _sleep_until(at: datetime, anchor: float, procs: list[Proc]) -> None:
    wait_for(lambda: time.time() >= _wall(at, anchor), 600, f"clock {at:%H:%M}", procs, allowed_exits=(-9,))


def _coalesced(run: JobRun) -> tuple[int, datetime] | None:
    m = COALESCED.match(run.note or "")
    return None if m is None else (int(m.group(1)), datetime.fromisoformat(m.group(2)))


def test_two_schedulers_fire_each_minute_once_hold_single_flight_and_hand_over(
    tmp_path: Path, pg_url: str
) -> None:
    url, prefix = redis_url(), key_prefix()
    jobs_key = f"{prefix}jobs"
    leader_key = f"{jobs_key}:scheduler-leader"
    asyncio.run(_create_schedules(pg_url))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "POLICY_", "DATABASE_URL"))}
    env = {
        **base,
        **SIM_ENV,
        "QUEUE_BACKEND": "redis",
        "RLC_REDIS_URL": url,
        "RATE_LIMIT_STORAGE_URI": url,
        "RLC_REDIS_JOBS_KEY": jobs_key,
        **{f"RLC_REDIS_BACKFILL_KEYS__T{i}": f"{prefix}backfills:T{i}" for i in range(3)},
        "DATABASE_URL": pg_url,
        "SCHEDULER_CATALOG_SEED": "false",  # only A and B exist
        "TASK_WORKERS": "4",  # B's 90 s run must not hold A's runs back
        # No gap scans: the processes do nothing but schedule and run tasks.
        "BACKFILL_LOOKBACK_DAYS_1M": "0",
        "BACKFILL_LOOKBACK_DAYS_5M": "0",
        "BACKFILL_LOOKBACK_DAYS_1D": "0",
    }
    anchor = time.time() + 8.0  # every process's clock reads START at this wall-clock second
    clock = ["--clock", START.isoformat(), "--speed", f"{SPEED:g}", "--clock-anchor", f"{anchor}"]
    client = redis.Redis.from_url(url, decode_responses=True)
    procs: list[Proc] = []
    try:
        procs.append(
            Proc(
                ["worker", *clock, "--metrics-port", str(free_port()), "--name", "w1"],
                env,
                tmp_path / "w.log",
            )
        )
        for i in range(2):
            procs.append(
                Proc(["scheduler", *clock, "--metrics-port", str(free_port())], env, tmp_path / f"s{i}.log")
            )
        schedulers = procs[1:]

        _sleep_until(KILL_AT, anchor, procs)
        holder = client.get(leader_key)
        assert holder is not None, "no scheduler holds the lock half way through the hour"
        leader = next(p for p in schedulers if holder.endswith(f":{p.p.pid}"))
        standby = next(p for p in schedulers if p is not leader)
        # The standby fired nothing and never led: it waited for the lock.
        assert "leadership acquired" not in standby.log.read_text()
        before = asyncio.run(_runs(pg_url))["a-every-minute"]
        leader.p.send_signal(signal.SIGKILL)
        leader.p.wait()
        killed_at = START + timedelta(seconds=(time.time() - anchor) * SPEED)

        wait_for(
            lambda: client.get(leader_key) == holder.rsplit(":", 1)[0] + f":{standby.p.pid}",
            60,
            "the standby to take the lock",
            procs,
            allowed_exits=(-9,),
        )
        _sleep_until(END, anchor, procs)
        runs = asyncio.run(_runs(pg_url))
    finally:
        for pr in procs:
            pr.stop()
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()

    # -- A: one run per due minute, the handover's missed minutes as one coalesced run ------
    a = runs["a-every-minute"]
    due = [r.due_at for r in a]
    assert all(d is not None for d in due)
    assert len(set(due)) == len(due), "a due time fired twice"
    assert all(d.second == 0 and d.microsecond == 0 for d in due if d is not None)
    assert before and due[: len(before)] == [r.due_at for r in before]  # the old leader's fires stand
    first, last = due[0], due[-1]
    assert first is not None and last is not None
    # The first minute due is 12:01; a leader that came up later (a loaded machine) fires
    # the minutes since as one coalesced run.
    if first > START + MINUTE:
        assert _coalesced(a[0]) == ((first - START) // MINUTE, START + MINUTE), a[0].note
    assert last >= END - 3 * MINUTE, f"no fires near the end of the hour: {last}"
    for prev, run in zip(a, a[1:], strict=False):
        assert prev.due_at is not None and run.due_at is not None
        gap = run.due_at - prev.due_at
        if gap == MINUTE:
            assert _coalesced(run) is None, run.note
            continue
        # Minutes nobody fired (the handover, or a tick late by more than a minute) are
        # covered by exactly this run: it stands for every due time since the last fire.
        assert _coalesced(run) == (gap // MINUTE, prev.due_at + MINUTE), (prev.due_at, run.due_at, run.note)
    # The new leader's first fire: the lock outlives its holder by up to 15 wall seconds
    # (a quarter hour of clock time), so it stands for every minute since the old leader's last.
    handover = next(i for i, r in enumerate(a) if r.due_at is not None and r.due_at > killed_at)
    assert handover > 0 and _coalesced(a[handover]) is not None, [(r.due_at, r.note) for r in a]
    settled = [r for r in a if r.due_at is not None and r.due_at <= END - 3 * MINUTE]
    assert {r.status for r in settled} == {RunStatus.SUCCEEDED}, [
        (r.due_at, r.status, r.note) for r in settled
    ]

    # -- B: single flight, a run fired while another runs is skipped ------------------------
    b = runs["b-slower-than-cadence"]
    b_due = [r.due_at for r in b]
    assert len(set(b_due)) == len(b_due), "a due time of B fired twice"
    ran = sorted((r for r in b if r.status == RunStatus.SUCCEEDED), key=lambda r: r.started_at or START)
    skipped = [r for r in b if r.status == RunStatus.SKIPPED]
    # The runs that started, the one still running when the processes stopped included.
    started = sorted(
        (r for r in b if r.status in (RunStatus.SUCCEEDED, RunStatus.RUNNING)),
        key=lambda r: r.started_at or END,
    )
    assert len(ran) >= 10 and len(skipped) >= 10, (len(ran), len(skipped))
    for r in ran:
        assert r.started_at is not None and r.finished_at is not None
        assert r.finished_at - r.started_at >= timedelta(seconds=90)  # it really slept past its cadence
    for prev, run in zip(started, started[1:], strict=False):
        assert prev.finished_at is not None, f"run {prev.id} still runs while {run.id} started"
        assert run.started_at is not None and run.started_at >= prev.finished_at, (
            f"runs {prev.id} and {run.id} overlapped"
        )
    for r in skipped:
        assert r.note == "single-flight: a run of b-slower-than-cadence is still running", r.note
        assert r.started_at is None and r.finished_at is not None
        # Skipped while a run of B ran: its decision time falls inside one (give or take the
        # few clock seconds between the claim and the skip's time stamp at 60x).
        assert any(
            x.started_at is not None and x.started_at <= r.finished_at <= (x.finished_at or END) + SKIP_SLACK
            for x in started
        ), f"run {r.id} was skipped at {r.finished_at} with no run of B going"
    b_settled = [r for r in b if r.due_at is not None and r.due_at <= END - 5 * MINUTE]
    assert {r.status for r in b_settled} <= {RunStatus.SUCCEEDED, RunStatus.SKIPPED}, [
        (r.due_at, r.status, r.note, r.error) for r in b_settled
    ]
