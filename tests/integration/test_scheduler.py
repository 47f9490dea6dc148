"""The scheduler engine: planning, firing once per due time, coalescing missed fires, the
compare-and-set between two schedulers, pause and re-plan, the first-lead hook, runs handed
over by the CLI, and the runtime's own wiring of it all.

A "node" is one scheduler process's parts over a store: in-memory task queues, a submitter,
a runner (consumers only where a test runs its fires) and a ``Scheduler``. Tests that tick
by hand use a ``ManualClock`` and call ``due()`` / ``fire()``; tests of the loop run
``Scheduler.run()`` on a ``VirtualClock``, which jumps from one due time to the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, ConfigDict

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import Clock, ManualClock, VirtualClock
from mds.domain.schedules import JobRun, RunStatus, Schedule, ScheduleSpec, Trigger
from mds.ops.catalog import CATALOG, Catalog, Counters, TaskContext, TaskDef
from mds.ops.runs import HANDED_OVER, RunSubmitter, TaskRunner
from mds.ops.scheduler import Scheduler
from mds.queue.memory import InMemoryJobQueue
from mds.queue.tasks import TaskQueues
from mds.runtime import ALL_ROLES, open_runtime
from mds.services.schedules import ScheduleService
from mds.storage.base import Store
from mds.storage.postgres import PostgresStore
from mds.storage.sqlite import SqliteStore
from tests.conftest import skip_or_fail
from tests.helpers import SIM_ENV, utc
from tests.pgserver import PgProvider, Unavailable, drop_database

CAL = MarketCalendar()
SETTINGS = load_settings(SIM_ENV)
#: A Wednesday afternoon, half a minute past the hour: a minute schedule is next due at 14:01.
START = utc(2026, 3, 4, 14, 0, 30)
DAY = date(2026, 3, 4)
#: The test task uses none of the services.
NO_SERVICES: dict[str, Any] = dict.fromkeys(
    ("router", "backfiller", "indexes", "tracked", "coverage", "analysis")
)

T = TypeVar("T")


def minute(m: int, hour: int = 14) -> datetime:
    return utc(2026, 3, 4, hour, m)


def every_minute(name: str = "tick", *, since: datetime = START, **kw: Any) -> Schedule:
    return Schedule(name=name, task="record", cron="* * * * *", since=since, **kw)


class AnyParams(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- a scheduler process ------------------------------------------------------------------


@dataclass
class Node:
    store: Store
    clock: Clock
    queues: TaskQueues
    submitter: RunSubmitter
    runner: TaskRunner
    scheduler: Scheduler
    service: ScheduleService
    #: Clock times the ``record`` task ran at.
    calls: list[datetime] = field(default_factory=list)

    async def fire_due(self) -> list[JobRun]:
        """One tick by hand: fire what is due now; the runs this node wrote."""
        now = self.clock.now()
        fired = [await self.scheduler.fire(entry, now) for entry in self.scheduler.due(now)]
        return [r for r in fired if r is not None]

    async def runs(self, schedule: str = "tick") -> list[JobRun]:
        """The schedule's runs, oldest first."""
        return sorted(await self.store.job_runs(schedule=schedule, limit=1000), key=lambda r: r.id or 0)

    async def loop_for(self, seconds: float) -> None:
        """Run the scheduler loop for ``seconds`` of clock time (the clock must be driven)."""
        task = asyncio.get_running_loop().create_task(self.scheduler.run())
        try:
            await self.clock.sleep(seconds)
        finally:
            task.cancel()
            [ended] = await asyncio.gather(task, return_exceptions=True)
        if not task.cancelled():
            raise AssertionError(f"the scheduler loop ended on its own: {ended!r}")


MakeNode = Callable[..., Awaitable[Node]]


@pytest.fixture
async def make_node(tmp_path: Path) -> AsyncIterator[MakeNode]:
    """Builds nodes over ``store`` (default: one SQLite file per test, shared by its nodes)."""
    nodes: list[Node] = []
    stores: list[Store] = []

    async def make(
        clock: Clock,
        *,
        store: Store | None = None,
        workers: int = 0,
        first_lead: Callable[[], Awaitable[object]] | None = None,
    ) -> Node:
        if store is None:
            store = SqliteStore(str(tmp_path / "schedules.db"))
            await store.open()
            stores.append(store)
        calls: list[datetime] = []

        async def record(ctx: TaskContext, counters: Counters) -> None:
            calls.append(ctx.clock.now())
            counters["calls"] = len(calls)

        catalog = Catalog()
        catalog.tasks["record"] = TaskDef(
            "record",
            record,
            "note the call",
            AnyParams,
            ScheduleSpec(name="record", task="record", cron="0 * * * *"),
        )
        queues = TaskQueues.build(SETTINGS.TASK_QUEUES, lambda _: InMemoryJobQueue())
        submitter = RunSubmitter(store=store, catalog=catalog, clock=clock, queues=queues, zone=CAL.zone)
        ctx = TaskContext(store=store, calendar=CAL, clock=clock, settings=SETTINGS, **NO_SERVICES)
        runner = TaskRunner(submitter=submitter, ctx=ctx)
        scheduler = Scheduler(store=store, runner=runner, clock=clock, first_lead=first_lead)
        service = ScheduleService(
            store=store, catalog=catalog, submitter=submitter, clock=clock, settings=SETTINGS
        )
        node = Node(store, clock, queues, submitter, runner, scheduler, service, calls)
        nodes.append(node)
        if workers:
            runner.start(workers)
        return node

    yield make
    for node in nodes:
        await node.runner.stop()
        await node.queues.close()
    for store in stores:
        await store.close()


@pytest.fixture(scope="module")
def pg_provider() -> Iterator[PgProvider]:
    provider = PgProvider()
    yield provider
    provider.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path, pg_provider: PgProvider
) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores over one database, as two processes would hold them."""
    admin = url = ""
    if request.param == "postgres":
        try:
            admin = await pg_provider.admin_url()
        except Unavailable as exc:
            skip_or_fail(str(exc))
        url = await pg_provider.migrated_database()
    stores: list[Store] = [
        PostgresStore(url, pool_max=4) if url else SqliteStore(str(tmp_path / "shared.db")) for _ in range(2)
    ]
    try:
        for s in stores:
            await s.open()
        yield stores[0], stores[1]
    finally:
        for s in stores:
            await s.close()
        if url:
            await drop_database(admin, url)


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, clock: Clock, wall: float = 30.0
) -> T:
    """``probe()`` once ``done`` holds for it, looking every half clock second, within
    ``wall`` real seconds."""
    value = await probe()
    try:
        async with asyncio.timeout(wall):
            while not done(value):
                await clock.sleep(0.5)
                value = await probe()
    except TimeoutError:
        raise AssertionError(f"still not there after {wall} s: {value!r}") from None
    return value


# -- firing -------------------------------------------------------------------------------


async def test_a_minute_schedule_fires_once_per_due_time(make_node: MakeNode) -> None:
    clock = ManualClock(START)
    node = await make_node(clock)
    await node.store.put_schedule(every_minute())
    assert await node.scheduler.reload_if_changed()

    fired: list[JobRun] = []
    for _ in range(40):  # ten minutes in ticks of 15 s
        clock.advance(15)
        fired += await node.fire_due()

    assert [r.due_at for r in fired] == [minute(m) for m in range(1, 11)]
    runs = await node.runs()
    assert [r.id for r in runs] == [r.id for r in fired]
    assert {(r.trigger, r.status, r.logical_date, r.note) for r in runs} == {
        (Trigger.SCHEDULE, RunStatus.QUEUED, DAY, None)
    }
    assert await node.queues["default"].depth() == 10
    stored = await node.store.get_schedule("tick")
    assert stored is not None and stored.last_due_at == minute(10)


async def test_the_scheduler_loop_starts_each_minute_run_at_its_due_time(make_node: MakeNode) -> None:
    clock = VirtualClock(START, speed=60)
    node = await make_node(clock, workers=1)
    await node.store.put_schedule(every_minute())

    async with clock.driving():
        await node.loop_for(30 * 60)

    runs = await node.runs()
    assert [r.due_at for r in runs] == [minute(m) for m in range(1, 31)]
    assert all(r.status is RunStatus.SUCCEEDED for r in runs)
    assert [r.started_at for r in runs] == [r.due_at for r in runs]  # no fire latency on the clock
    assert node.calls == [minute(m) for m in range(1, 31)]
    assert node.scheduler.fired == 30


async def test_a_schedule_due_five_times_while_no_scheduler_ran_fires_once_coalesced(
    make_node: MakeNode,
) -> None:
    clock = VirtualClock(utc(2026, 3, 4, 14, 5, 30), speed=60)
    node = await make_node(clock)
    await node.store.put_schedule(every_minute())  # written at 14:00:30: due 14:01 … 14:05

    async with clock.driving():
        await node.loop_for(20)

    [run] = await node.runs()
    assert run.due_at == minute(5)
    assert run.note == "coalesced: stands for 5 due times since 2026-03-04T14:01:00+00:00"
    assert run.queued_at == utc(2026, 3, 4, 14, 5, 30)  # fired on start
    assert node.scheduler.next_due() == minute(6)


async def test_two_schedulers_fire_each_due_time_once(
    make_node: MakeNode, two_stores: tuple[Store, Store]
) -> None:
    clock = ManualClock(START)
    nodes = [await make_node(clock, store=s) for s in two_stores]
    await nodes[0].store.put_schedule(every_minute())
    for n in nodes:
        assert await n.scheduler.reload_if_changed()

    for _ in range(3):
        clock.advance(60)
        fired = await asyncio.gather(*(n.fire_due() for n in nodes))
        assert sorted(len(f) for f in fired) == [0, 1]  # one wrote the run, the other nothing

    runs = await nodes[1].runs()
    assert [r.due_at for r in runs] == [minute(1), minute(2), minute(3)]
    assert [n.scheduler.next_due() for n in nodes] == [minute(4), minute(4)]


# -- what gets planned --------------------------------------------------------------------


async def test_a_paused_schedule_is_not_planned(make_node: MakeNode) -> None:
    clock = ManualClock(START)
    node = await make_node(clock)
    await node.store.put_schedule(every_minute("tick"))
    await node.store.put_schedule(every_minute("quiet", enabled=False))
    await node.scheduler.reload_if_changed()

    clock.advance(10 * 60)

    assert [e.schedule.name for e in node.scheduler.due(clock.now())] == ["tick"]


async def test_a_schedule_paused_after_it_was_planned_does_not_fire(make_node: MakeNode) -> None:
    clock = ManualClock(START)
    node = await make_node(clock)
    await node.store.put_schedule(every_minute())
    await node.scheduler.reload_if_changed()

    clock.advance(60)
    await node.service.pause("tick", by="ops")  # not reloaded yet: still in the plan
    [entry] = node.scheduler.due(clock.now())

    assert await node.scheduler.fire(entry, clock.now()) is None  # the store refuses it
    assert await node.runs() == []
    assert await node.scheduler.reload_if_changed()
    assert node.scheduler.next_due() is None


async def test_an_updated_schedule_is_replanned_after_reload(make_node: MakeNode) -> None:
    clock = ManualClock(START)
    node = await make_node(clock)
    hourly = ScheduleSpec(name="tick", task="record", cron="0 * * * *")
    await node.service.create(hourly, by="ops")
    assert await node.scheduler.reload_if_changed()
    assert node.scheduler.next_due() == minute(0, hour=15)
    assert not await node.scheduler.reload_if_changed()  # nothing changed

    clock.advance(60)
    await node.service.update("tick", hourly.model_copy(update={"cron": "*/5 * * * *"}), by="ops")

    assert await node.scheduler.reload_if_changed()
    assert node.scheduler.next_due() == minute(5)


# -- leading ------------------------------------------------------------------------------


async def test_first_lead_runs_once_however_often_the_loop_starts(make_node: MakeNode) -> None:
    clock = VirtualClock(START, speed=60)
    calls: list[datetime] = []

    async def first_lead() -> None:
        calls.append(clock.now())

    node = await make_node(clock, first_lead=first_lead)
    async with clock.driving():
        await node.loop_for(10)  # led, lost the lead ...
        await node.loop_for(10)  # ... and led again

    assert calls == [START]


async def test_a_failing_first_lead_does_not_stop_scheduling(make_node: MakeNode) -> None:
    clock = VirtualClock(START, speed=60)

    async def first_lead() -> None:
        raise RuntimeError("seeding failed")

    node = await make_node(clock, first_lead=first_lead)
    await node.store.put_schedule(every_minute())
    async with clock.driving():
        await node.loop_for(60)

    assert [r.due_at for r in await node.runs()] == [minute(1)]


async def test_runs_handed_over_by_a_process_without_queues_are_queued_by_the_leader(
    make_node: MakeNode,
) -> None:
    clock = ManualClock(START)
    node = await make_node(clock)
    cli = RunSubmitter(store=node.store, catalog=node.submitter.catalog, clock=clock, queues=None)
    handed = await cli.submit(cli.new_run("record", trigger=Trigger.TASK, created_by="cli"))
    assert (handed.status, handed.note) == (RunStatus.QUEUED, HANDED_OVER)
    assert await node.queues["default"].depth() == 0

    assert await node.submitter.adopt_handed_over() == 1

    assert handed.id is not None
    adopted = await node.store.get_run(handed.id)
    assert adopted is not None and adopted.note is None
    assert await node.queues["default"].depth() == 1
    assert await node.submitter.adopt_handed_over() == 0  # queued once


# -- the runtime's wiring -----------------------------------------------------------------


async def test_the_runtime_seeds_the_catalog_and_its_workers_run_a_task(tmp_path: Path) -> None:
    env = {**SIM_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/rt.db", "SCHEDULER_CATALOG_SEED": "true"}
    clock = VirtualClock(utc(2026, 3, 7, 15, 0), speed=60)  # a Saturday: nothing to collect
    async with (
        clock.driving(),
        open_runtime(load_settings(env), clock=clock, roles=ALL_ROLES, environ=env) as rt,
    ):
        seeded = await eventually(rt.store.schedules, lambda s: len(s) == len(CATALOG), clock=clock)
        assert len(seeded) == 17  # ten seed-004 tasks, issue 16's macro and options refreshes, issue 17's
        # corporate actions and reconciliation, issue 18's company profiles and job-run purge, and ping
        assert sorted(s.name for s in seeded) == sorted(CATALOG)
        assert {s.name for s in seeded if not s.enabled} == {"bootstrap_daily_coverage_tracked", "ping"}
        assert {s.metadata.created_by for s in seeded} == {"catalog"}

        queued = await rt.schedules.run_task("ping", {"seconds": 1}, by="ops-key")
        assert queued.id is not None
        run_id = queued.id

        async def row() -> JobRun | None:
            return await rt.store.get_run(run_id)

        done = await eventually(row, lambda r: r is not None and r.status.finished, clock=clock)

    assert done is not None
    assert done.status is RunStatus.SUCCEEDED
    assert (done.task, done.trigger, done.queue, done.created_by) == (
        "ping",
        Trigger.TASK,
        "default",
        "ops-key",
    )
    assert done.counters == {"slept_s": 1.0}
    assert done.duration_s == 1.0
    assert rt.metrics.value("task_runs_total", task="ping", status="succeeded") == 1
