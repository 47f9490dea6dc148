"""Task runs with their metadata enforced: timeout, retry, dependencies, maintenance windows,
preflight checks, single-flight and max_concurrency, abandoned leases, and the runs admin
POSTs record inline.

Each test builds the parts in process (no sockets): a store, test tasks added to the real
catalog, in-memory task queues, a RunSubmitter and a TaskRunner whose consumers take the
runs. Time is a ``VirtualClock``: it moves only when nothing is left to do, so a backoff or
a timeout of minutes passes at once and every recorded time is exact. Runs are submitted
at ``T0`` unless a test says otherwise, and each test reads the recorded ``job_run`` back.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import Clock, VirtualClock
from mds.domain.schedules import (
    Hooks,
    JobRun,
    MaintenanceWindow,
    RunStatus,
    ScheduleMetadata,
    ScheduleSpec,
    Trigger,
)
from mds.observability.metrics import Metrics
from mds.ops.catalog import Catalog, Counters, TaskContext, TaskDef
from mds.ops.hooks import events_for
from mds.ops.runs import LEASE_SEC, RECHECK_SEC, RunSubmitter, TaskRunner
from mds.providers.base import Provider
from mds.providers.registry import build_providers
from mds.queue.memory import InMemoryJobQueue
from mds.queue.tasks import TaskQueues
from mds.routing.router import Router
from mds.storage.base import Store
from mds.storage.postgres import PostgresStore
from mds.storage.sqlite import SqliteStore
from tests.conftest import skip_or_fail
from tests.helpers import SIM_ENV, utc
from tests.pgserver import PgProvider, Unavailable, drop_database

CAL = MarketCalendar()
#: A Wednesday, 09:00 in New York; DAY is its session (the runs' logical date).
T0 = utc(2026, 3, 4, 14, 0)
DAY = date(2026, 3, 4)
#: Clock seconds per real second. A runner puts a waiting run off by ``wait / speed`` real
#: seconds, and that real timer is the slack the bench has to go idle before the clock
#: reaches it: a 10 s backoff is 100 ms here. The maintenance-window tests wait an hour,
#: 0.1 s at WINDOW_SPEED.
SPEED = 100.0
WINDOW_SPEED = 36_000.0
#: The test tasks use none of the services; the preflight checks read only store, calendar
#: and router.
NO_SERVICES: dict[str, Any] = dict.fromkeys(("backfiller", "indexes", "tracked", "coverage", "analysis"))


def secs(n: float) -> timedelta:
    return timedelta(seconds=n)


# -- test tasks ---------------------------------------------------------------------------


@dataclass
class Tape:
    """What the test tasks did: when each started and ended, and how many held at once."""

    starts: defaultdict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    ends: defaultdict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    holding: int = 0
    most_holding: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)


class AnyParams(BaseModel):
    model_config = ConfigDict(extra="allow")


def tasks_for(tape: Tape) -> list[TaskDef]:
    async def record(ctx: TaskContext, counters: Counters) -> None:
        """Succeed at once, noting the call."""
        tape.starts["record"].append(ctx.clock.now())
        counters["calls"] = len(tape.starts["record"])

    async def slow(ctx: TaskContext, counters: Counters, seconds: float, steps: int = 1) -> None:
        """Sleep ``seconds`` of clock time in ``steps`` parts, counting the parts done."""
        tape.starts["slow"].append(ctx.clock.now())
        for i in range(steps):
            await ctx.clock.sleep(seconds / steps)
            counters["steps_done"] = i + 1
        tape.ends["slow"].append(ctx.clock.now())

    async def flaky(ctx: TaskContext, counters: Counters, fails: int) -> None:
        """Fail the first ``fails`` calls, then succeed."""
        calls = tape.starts["flaky"]
        calls.append(ctx.clock.now())
        counters["call"] = len(calls)
        if len(calls) <= fails:
            raise RuntimeError(f"flaky failure {len(calls)} of {fails}")

    async def hold(ctx: TaskContext, counters: Counters) -> None:
        """Run until the test sets ``tape.release``, counting how many hold at once."""
        tape.holding += 1
        tape.most_holding = max(tape.most_holding, tape.holding)
        try:
            await tape.release.wait()
        finally:
            tape.holding -= 1

    async def gives_up(ctx: TaskContext, counters: Counters) -> None:
        """Fail with a TimeoutError of its own (a vendor call that timed out, say)."""
        raise TimeoutError("upstream took too long")

    return [
        TaskDef(
            fn.__name__,
            fn,
            fn.__doc__ or "",
            AnyParams,
            ScheduleSpec(name=fn.__name__, task=fn.__name__, cron="0 * * * *"),
        )
        for fn in (record, slow, flaky, hold, gives_up)
    ]


class Notifier:
    """Records what the runner hands its hooks."""

    def __init__(self) -> None:
        self.calls: list[tuple[JobRun, Hooks]] = []

    async def notify(self, run: JobRun, hooks: Hooks) -> None:
        self.calls.append((run, hooks))


# -- the bench ----------------------------------------------------------------------------


@dataclass
class Bench:
    store: Store
    clock: Clock
    queues: TaskQueues
    submitter: RunSubmitter
    runner: TaskRunner
    notifier: Notifier
    metrics: Metrics
    tape: Tape
    finished: defaultdict[int, asyncio.Event]
    driven: bool

    def new_run(
        self,
        task: str,
        *,
        schedule: str | None = None,
        kwargs: dict[str, Any] | None = None,
        logical_date: date = DAY,
        **metadata: Any,
    ) -> JobRun:
        """A run of ``task`` with ``metadata`` (ScheduleMetadata fields, as dicts)."""
        return self.submitter.new_run(
            task,
            trigger=Trigger.RUN_NOW if schedule else Trigger.TASK,
            metadata=ScheduleMetadata.model_validate(metadata),
            kwargs=kwargs,
            schedule=schedule,
            logical_date=logical_date,
        )

    async def submit(self, task: str, **kw: Any) -> JobRun:
        """Store a run (see :meth:`new_run`) and queue it for the consumers."""
        return await self.submitter.submit(self.new_run(task, **kw))

    async def outcome(self, run: JobRun, timeout: float = 10.0) -> JobRun:
        """The stored run once the runner finished it, within ``timeout`` wall seconds."""
        assert run.id is not None
        try:
            async with asyncio.timeout(timeout):  # bounds a wait: holds no virtual time back
                await self.finished[run.id].wait()
        except TimeoutError:
            raise AssertionError(f"run {run.id} did not finish: {await self.row(run)}") from None
        return await self.row(run)

    async def row(self, run: JobRun) -> JobRun:
        assert run.id is not None
        stored = await self.store.get_run(run.id)
        assert stored is not None
        return stored

    def total(self, task: str, status: str) -> float:
        return self.metrics.value("task_runs_total", task=task, status=status)

    def notified(self) -> list[tuple[int | None, RunStatus]]:
        return [(run.id, run.status) for run, _ in self.notifier.calls]


MakeBench = Callable[..., Awaitable[Bench]]


@pytest.fixture
async def make_bench(tmp_path: Path) -> AsyncIterator[MakeBench]:
    """Builds benches: a store (SQLite in tmp_path unless one is given), the catalog with the
    test tasks, in-memory queues, a submitter and a runner with ``workers`` consumers per
    queue. A VirtualClock is driven unless ``drive=False`` (then time stands still)."""
    benches: list[Bench] = []
    providers_to_close: list[Provider] = []

    async def make(
        *,
        start: datetime = T0,
        speed: float = SPEED,
        clock: Clock | None = None,
        store: Store | None = None,
        env: dict[str, str] | None = None,
        tape: Tape | None = None,
        drive: bool = True,
        workers: int = 2,
    ) -> Bench:
        clock = clock or VirtualClock(start, speed=speed)
        if store is None:
            store = SqliteStore(str(tmp_path / f"runs{len(benches)}.db"))
            await store.open()
        environ = {**SIM_ENV, **(env or {})}
        settings = load_settings(environ)
        metrics = Metrics()
        providers = build_providers(settings, clock, CAL, environ)
        providers_to_close.extend(providers.values())
        router = Router(providers, settings, clock, metrics)
        tape = tape or Tape()
        catalog = Catalog()
        catalog.tasks.update({d.name: d for d in tasks_for(tape)})
        queues = TaskQueues.build(settings.TASK_QUEUES, lambda _: InMemoryJobQueue())
        submitter = RunSubmitter(store=store, catalog=catalog, clock=clock, queues=queues, zone=CAL.zone)
        ctx = TaskContext(
            store=store, calendar=CAL, clock=clock, settings=settings, router=router, **NO_SERVICES
        )
        finished: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)

        def observe(run: JobRun) -> None:
            metrics.observe_task_run(run)
            assert run.id is not None
            finished[run.id].set()

        notifier = Notifier()
        runner = TaskRunner(submitter=submitter, ctx=ctx, notifier=notifier, observe=observe)
        driven = drive and isinstance(clock, VirtualClock)
        bench = Bench(store, clock, queues, submitter, runner, notifier, metrics, tape, finished, driven)
        benches.append(bench)
        if driven:
            assert isinstance(clock, VirtualClock)
            clock.start()
        if workers:
            runner.start(workers)
        return bench

    yield make
    for b in reversed(benches):
        await b.runner.stop()
        if b.driven:
            assert isinstance(b.clock, VirtualClock)
            await b.clock.stop()
        await b.queues.close()
        await b.store.close()
    for p in providers_to_close:
        await p.aclose()


@pytest.fixture(scope="module")
def pg_provider() -> Iterator[PgProvider]:
    provider = PgProvider()
    yield provider
    provider.close()


@pytest.fixture
async def pg_url(pg_provider: PgProvider) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database of this test's own."""
    try:
        admin = await pg_provider.admin_url()
    except Unavailable as exc:
        skip_or_fail(str(exc))
        raise AssertionError("unreachable") from exc
    url = await pg_provider.migrated_database()
    try:
        yield url
    finally:
        await drop_database(admin, url)


# -- timeout ------------------------------------------------------------------------------


async def test_a_run_past_its_timeout_is_cancelled_and_recorded_timed_out(make_bench: MakeBench) -> None:
    b = await make_bench()
    run = await b.submit(
        "slow", schedule="slow-job", kwargs={"seconds": 100, "steps": 10}, safety={"timeout_s": 35}
    )

    done = await b.outcome(run)

    assert done.status is RunStatus.TIMED_OUT
    assert done.error == "exceeded timeout_s=35"
    assert done.counters == {"steps_done": 3}  # written before the cancel, kept
    assert (done.started_at, done.finished_at, done.duration_s) == (T0, T0 + secs(35), 35.0)
    assert done.attempt == 0
    assert done.lease_until is None
    [(notified, _)] = b.notifier.calls
    assert notified.id == run.id
    assert events_for(notified) == ["slow", "failure"]
    assert b.total("slow", "timed_out") == 1
    await b.clock.sleep(100)  # past the task's own end: it was cancelled, not left running
    assert b.tape.ends["slow"] == []


async def test_a_task_raising_timeout_error_itself_fails_rather_than_timing_out(
    make_bench: MakeBench,
) -> None:
    b = await make_bench()
    bounded = await b.submit("gives_up", safety={"timeout_s": 600})
    unbounded = await b.submit("gives_up")

    for run in (bounded, unbounded):
        done = await b.outcome(run)
        assert done.status is RunStatus.FAILED
        assert done.error == "TimeoutError: upstream took too long"
        assert done.finished_at == T0
    assert b.total("gives_up", "failed") == 2
    assert b.total("gives_up", "timed_out") == 0


async def test_a_run_whose_params_its_task_does_not_take_fails_instead_of_hanging(
    make_bench: MakeBench,
) -> None:
    b = await make_bench()
    run = await b.submit("ping", kwargs={"sekonds": 1})

    done = await b.outcome(run)

    assert done.status is RunStatus.FAILED
    assert done.error is not None
    assert done.error.startswith("TypeError: ") and "sekonds" in done.error
    assert done.lease_until is None  # nothing keeps renewing a lease for it
    assert b.notified() == [(run.id, RunStatus.FAILED)]


# -- retry --------------------------------------------------------------------------------


async def test_a_failing_run_is_retried_with_backoff_until_it_succeeds(make_bench: MakeBench) -> None:
    b = await make_bench()
    retry = {"attempts": 2, "backoff_s": 10, "backoff_factor": 3}
    run = await b.submit("flaky", kwargs={"fails": 2}, safety={"retry": retry})

    done = await b.outcome(run)

    assert done.status is RunStatus.SUCCEEDED
    assert done.attempt == 2
    assert done.error is None
    assert done.counters == {"call": 3}
    # Waits of backoff_s * factor ** (n - 1): 10 s, then 30 s.
    assert b.tape.starts["flaky"] == [T0, T0 + secs(10), T0 + secs(40)]
    assert (done.started_at, done.finished_at) == (T0 + secs(40), T0 + secs(40))
    assert b.notified() == [(run.id, RunStatus.SUCCEEDED)]  # the outcome only, not each try
    assert b.total("flaky", "succeeded") == 1
    assert b.total("flaky", "failed") == 0


async def test_a_run_that_fails_every_try_is_recorded_failed_with_the_last_error(
    make_bench: MakeBench,
) -> None:
    b = await make_bench()
    run = await b.submit(
        "flaky", kwargs={"fails": 5}, safety={"retry": {"attempts": 1, "backoff_s": 10, "backoff_factor": 3}}
    )

    done = await b.outcome(run)

    assert done.status is RunStatus.FAILED
    assert done.attempt == 1
    assert done.error == "RuntimeError: flaky failure 2 of 5"
    assert done.counters == {"call": 2}
    assert b.tape.starts["flaky"] == [T0, T0 + secs(10)]
    [(notified, _)] = b.notifier.calls
    assert events_for(notified) == ["failure"]
    assert b.total("flaky", "failed") == 1


# -- dependencies -------------------------------------------------------------------------


def past_run(schedule: str, status: RunStatus, logical_date: date = DAY) -> JobRun:
    """A finished run of ``schedule`` from an hour before T0."""
    return JobRun(
        task="record",
        trigger=Trigger.SCHEDULE,
        schedule=schedule,
        logical_date=logical_date,
        queued_at=T0 - timedelta(hours=1),
        status=status,
    )


async def test_a_run_waits_until_its_dependency_succeeded_for_the_same_logical_date(
    make_bench: MakeBench,
) -> None:
    b = await make_bench()
    await b.store.create_run(past_run("upstream", RunStatus.FAILED))
    down = await b.submit("record", schedule="downstream", dependencies=["upstream"], dependency_wait_s=600)

    await b.clock.sleep(45)  # rechecked at T0 and T0+30s
    waiting = await b.row(down)
    assert waiting.status is RunStatus.QUEUED
    assert waiting.note == "waiting for dependencies: upstream (failed)"
    assert b.tape.starts["record"] == []

    up = await b.outcome(await b.submit("record", schedule="upstream"))
    done = await b.outcome(down)

    assert up.status is RunStatus.SUCCEEDED and up.finished_at == T0 + secs(45)
    assert done.status is RunStatus.SUCCEEDED
    assert done.started_at is not None
    assert up.finished_at <= done.started_at <= up.finished_at + secs(RECHECK_SEC)
    assert b.tape.starts["record"] == [up.started_at, done.started_at]


async def test_a_run_whose_dependency_never_succeeds_is_skipped_after_dependency_wait_s(
    make_bench: MakeBench,
) -> None:
    b = await make_bench()
    # upstream succeeded, but for the day before: that does not count for DAY.
    await b.store.create_run(past_run("upstream", RunStatus.SUCCEEDED, DAY - timedelta(days=1)))
    down = await b.submit("record", schedule="downstream", dependencies=["upstream"], dependency_wait_s=120)

    done = await b.outcome(down)

    assert done.status is RunStatus.SKIPPED
    assert done.note == "dependencies not met for 2026-03-04 after 120s: upstream (no run)"
    assert done.finished_at == T0 + secs(120)
    assert (done.started_at, done.duration_s) == (None, None)
    assert b.tape.starts["record"] == []
    assert b.notifier.calls == []  # a skip alerts nobody
    assert b.total("record", "skipped") == 1


# -- maintenance windows ------------------------------------------------------------------


async def test_a_run_queued_inside_a_maintenance_window_starts_when_it_closes(
    make_bench: MakeBench,
) -> None:
    b = await make_bench(start=utc(2026, 3, 4, 2, 10), speed=WINDOW_SPEED)
    run = await b.submit("record", maintenance_windows=[{"start": "02:00", "end": "03:00"}])

    await b.clock.sleep(600)
    deferred = await b.row(run)
    assert deferred.status is RunStatus.QUEUED
    assert deferred.note == "deferred: maintenance window 02:00-03:00 UTC until 2026-03-04T03:00:00+00:00"

    done = await b.outcome(run)
    assert done.status is RunStatus.SUCCEEDED
    assert done.started_at == utc(2026, 3, 4, 3, 0)
    assert b.tape.starts["record"] == [utc(2026, 3, 4, 3, 0)]


async def test_an_overnight_maintenance_window_defers_a_run_past_midnight(make_bench: MakeBench) -> None:
    b = await make_bench(start=utc(2026, 3, 4, 23, 30), speed=WINDOW_SPEED)
    run = await b.submit("record", maintenance_windows=[{"start": "22:00", "end": "02:00"}])

    done = await b.outcome(run)

    assert done.status is RunStatus.SUCCEEDED
    assert done.started_at == utc(2026, 3, 5, 2, 0)


async def test_a_maintenance_window_defers_nothing_on_days_it_is_closed(make_bench: MakeBench) -> None:
    b = await make_bench(start=utc(2026, 3, 4, 2, 10), speed=WINDOW_SPEED)  # a Wednesday
    window = {"start": "02:00", "end": "03:00", "days": ["sat", "sun"]}
    run = await b.submit("record", maintenance_windows=[window])

    done = await b.outcome(run)

    assert done.status is RunStatus.SUCCEEDED
    assert done.started_at == utc(2026, 3, 4, 2, 10)
    assert done.note is None


OVERNIGHT = MaintenanceWindow(start="22:00", end="02:00")
FRIDAY_NIGHT = MaintenanceWindow(start="22:00", end="02:00", days=["fri"])
WEEKEND_2AM = MaintenanceWindow(start="02:00", end="03:00", days=["sat", "sun"])
NEW_YORK_9PM = MaintenanceWindow(start="21:00", end="22:00", timezone="America/New_York")


@pytest.mark.parametrize(
    ("window", "when", "closes"),
    [
        (OVERNIGHT, utc(2026, 3, 4, 23, 30), utc(2026, 3, 5, 2, 0)),  # before midnight
        (OVERNIGHT, utc(2026, 3, 5, 1, 59), utc(2026, 3, 5, 2, 0)),  # after midnight
        (OVERNIGHT, utc(2026, 3, 5, 2, 0), None),  # the end is exclusive
        (OVERNIGHT, utc(2026, 3, 4, 21, 59), None),
        (OVERNIGHT, utc(2026, 3, 4, 22, 0), utc(2026, 3, 5, 2, 0)),  # the start is inclusive
        (FRIDAY_NIGHT, utc(2026, 3, 7, 1, 0), utc(2026, 3, 7, 2, 0)),  # Saturday, opened Friday
        (FRIDAY_NIGHT, utc(2026, 3, 6, 1, 0), None),  # Friday early: Thursday's is closed
        (WEEKEND_2AM, utc(2026, 3, 7, 2, 30), utc(2026, 3, 7, 3, 0)),
        (WEEKEND_2AM, utc(2026, 3, 6, 2, 30), None),
        (NEW_YORK_9PM, utc(2026, 3, 5, 2, 30), utc(2026, 3, 5, 3, 0)),  # 21:30 EST
        (NEW_YORK_9PM, utc(2026, 3, 4, 21, 30), None),  # 16:30 EST
    ],
)
def test_maintenance_window_end_if_inside(
    window: MaintenanceWindow, when: datetime, closes: datetime | None
) -> None:
    assert window.end_if_inside(when) == closes


# -- preflight checks ---------------------------------------------------------------------


async def test_a_provider_preflight_without_a_bars_5m_provider_skips_the_run(make_bench: MakeBench) -> None:
    # polygon without a key: not configured, so nothing can serve bars_5m.
    b = await make_bench(env={"POLICY_BARS_5M": "polygon"})
    run = await b.submit("ping", preflight_checks=["store", "provider:bars_5m"])

    done = await b.outcome(run)

    assert done.status is RunStatus.SKIPPED
    assert done.note == "preflight failed: provider:bars_5m: no provider is routable for bars_5m"
    assert done.counters == {}  # the task never ran
    assert done.finished_at == T0
    assert b.notifier.calls == []
    assert b.total("ping", "skipped") == 1


async def test_a_session_day_preflight_skips_a_holiday_logical_date(make_bench: MakeBench) -> None:
    b = await make_bench()
    run = await b.submit("ping", logical_date=date(2026, 11, 26), preflight_checks=["session_day"])

    done = await b.outcome(run)

    assert done.status is RunStatus.SKIPPED
    assert done.note == "preflight failed: session_day: 2026-11-26 is not a trading session"


async def test_preflight_checks_that_pass_let_the_run_start(make_bench: MakeBench) -> None:
    b = await make_bench()
    run = await b.submit(
        "ping", kwargs={"seconds": 2}, preflight_checks=["store", "session_day", "provider:eod"]
    )

    done = await b.outcome(run)

    assert done.status is RunStatus.SUCCEEDED
    assert done.note is None
    assert done.counters == {"slept_s": 2}
    assert (done.started_at, done.finished_at, done.duration_s) == (T0, T0 + secs(2), 2.0)
    assert b.total("ping", "succeeded") == 1


# -- single-flight and max_concurrency ----------------------------------------------------


async def test_single_flight_skips_a_run_while_another_of_its_schedule_runs(make_bench: MakeBench) -> None:
    b = await make_bench()
    kw: dict[str, Any] = {
        "schedule": "nightly",
        "kwargs": {"seconds": 100},
        "safety": {"single_flight": True},
    }
    first = await b.submit("slow", **kw)
    await b.clock.sleep(10)
    second = await b.submit("slow", **kw)

    skipped = await b.outcome(second)
    done = await b.outcome(first)

    assert skipped.status is RunStatus.SKIPPED
    assert skipped.note == "single-flight: a run of nightly is still running"
    assert skipped.finished_at == T0 + secs(10)
    assert done.status is RunStatus.SUCCEEDED
    assert done.finished_at == T0 + secs(100)
    assert b.tape.starts["slow"] == [T0]  # the second never started
    assert b.total("slow", "skipped") == 1
    assert b.total("slow", "succeeded") == 1


async def test_single_flight_holds_across_two_runners_on_postgres(pg_url: str, make_bench: MakeBench) -> None:
    """Two "processes": each its own store pool, queues and runner, one database between them.
    Both get a run of the same schedule at once; the claim lets exactly one start."""
    clock = VirtualClock(T0)  # not driven: time stands still, sleeps never end
    tape = Tape()
    benches = []
    for _ in range(2):
        store = PostgresStore(pg_url, pool_max=4)
        await store.open()
        benches.append(await make_bench(clock=clock, store=store, tape=tape, drive=False))
    for _ in range(5):
        tape.release = asyncio.Event()
        runs = [b.new_run("hold", schedule="exclusive", safety={"single_flight": True}) for b in benches]
        runs = [await b.store.create_run(r) for b, r in zip(benches, runs, strict=True)]
        await asyncio.gather(*(b.submitter.enqueue(r) for b, r in zip(benches, runs, strict=True)))

        waits = [asyncio.ensure_future(b.outcome(r)) for b, r in zip(benches, runs, strict=True)]
        first, _ = await asyncio.wait(waits, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        holding = tape.holding
        tape.release.set()  # whatever happened, let the holders end
        assert first, f"neither run was skipped: {holding} of them ran at once"
        skipped = next(iter(first)).result()  # the one that started holds until released
        assert skipped.status is RunStatus.SKIPPED
        assert skipped.note == "single-flight: a run of exclusive is still running"
        assert holding == 1
        outcomes = sorted([(await w).status for w in waits])
        assert outcomes == [RunStatus.SKIPPED, RunStatus.SUCCEEDED]
    assert tape.most_holding == 1


async def test_max_concurrency_makes_a_run_wait_for_a_slot_of_its_task(make_bench: MakeBench) -> None:
    b = await make_bench()
    safety = {"max_concurrency": 1}
    first = await b.submit("slow", schedule="slow-a", kwargs={"seconds": 100}, safety=safety)
    await b.clock.sleep(5)
    second = await b.submit("slow", schedule="slow-b", kwargs={"seconds": 100}, safety=safety)

    await b.clock.sleep(40)  # T0+45s: rechecked at +5 and +35
    waiting = await b.row(second)
    assert waiting.status is RunStatus.QUEUED
    assert waiting.note == "waiting: 1 runs of slow already running (max_concurrency)"

    a, c = await b.outcome(first), await b.outcome(second)
    assert (a.status, c.status) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)
    assert a.finished_at == T0 + secs(100)
    assert c.started_at is not None
    assert a.finished_at <= c.started_at <= a.finished_at + secs(RECHECK_SEC)
    assert b.tape.starts["slow"] == [T0, c.started_at]


# -- abandoned runs -----------------------------------------------------------------------


async def test_a_run_whose_lease_ran_out_is_failed_as_abandoned(make_bench: MakeBench) -> None:
    b = await make_bench()
    kw: dict[str, Any] = {"schedule": "nightly", "safety": {"single_flight": True}}
    # A worker claimed this run and died: nobody renews its lease.
    stale = await b.store.create_run(b.new_run("record", **kw))
    assert stale.id is not None
    claimed = await b.store.claim_run(
        stale.id, now=T0, lease_until=T0 + secs(LEASE_SEC), single_flight=True, max_concurrency=None
    )
    assert claimed is None

    blocked = await b.outcome(await b.submit("record", **kw))
    assert blocked.status is RunStatus.SKIPPED  # the lease still holds

    await b.clock.sleep(LEASE_SEC + 1)
    [expired] = await b.runner.expire_abandoned()

    assert expired.id == stale.id
    row = await b.row(stale)
    assert row.status is RunStatus.FAILED
    assert row.note == "abandoned: its worker stopped renewing the lease"
    assert row.error == row.note
    assert row.finished_at == T0 + secs(LEASE_SEC + 1)
    assert row.duration_s == LEASE_SEC + 1
    assert b.total("record", "failed") == 1
    assert b.notified() == [(stale.id, RunStatus.FAILED)]  # a dead worker's run alerts too
    assert await b.runner.expire_abandoned() == []

    after = await b.outcome(await b.submit("record", **kw))
    assert after.status is RunStatus.SUCCEEDED  # no longer blocked by the dead run


# -- runs recorded inline -----------------------------------------------------------------


async def test_recorded_writes_a_succeeded_api_run_with_its_counters(make_bench: MakeBench) -> None:
    b = await make_bench(workers=0)

    async with b.runner.recorded(
        "monitor_coverage_health", {"force": True}, created_by="ops-key"
    ) as counters:
        counters.update(tracked=12, status="ok")
        await b.clock.sleep(5)

    [run] = await b.store.job_runs(task="monitor_coverage_health")
    assert run.trigger is Trigger.API
    assert run.status is RunStatus.SUCCEEDED
    assert run.counters == {"tracked": 12, "status": "ok"}
    assert run.params == {"args": [], "kwargs": {"force": True}}
    assert run.created_by == "ops-key"
    assert run.logical_date == DAY
    assert (run.started_at, run.finished_at, run.duration_s) == (T0, T0 + secs(5), 5.0)
    assert run.error is None
    assert b.total("monitor_coverage_health", "succeeded") == 1


async def test_recorded_writes_a_failed_run_and_reraises(make_bench: MakeBench) -> None:
    b = await make_bench(workers=0)

    with pytest.raises(ValueError, match="vendor said no"):
        async with b.runner.recorded("backfill_5m_last_n_days") as counters:
            counters["jobs_created"] = 3
            raise ValueError("vendor said no")

    [run] = await b.store.job_runs(task="backfill_5m_last_n_days")
    assert run.trigger is Trigger.API
    assert run.status is RunStatus.FAILED
    assert run.error == "ValueError: vendor said no"
    assert run.counters == {"jobs_created": 3}
    [(notified, _)] = b.notifier.calls
    assert notified.id == run.id and events_for(notified) == ["failure"]
    assert b.total("backfill_5m_last_n_days", "failed") == 1
