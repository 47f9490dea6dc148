"""A task run keeps what it logged: the lines its task (and the tasks and threads it starts)
emitted, bounded and redacted, on its ``job_run`` row, and never another run's lines.

Runs go through a real TaskRunner with two consumers on in-memory queues over SQLite; the
clock stands still (no task here waits on it). The test tasks log on ``tests.run_logs``,
set to INFO for each test, as ``LOG_LEVEL`` would.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.schedules import JobRun, RunStatus, ScheduleMetadata, ScheduleSpec, Trigger
from mds.observability.metrics import Metrics
from mds.ops.catalog import Catalog, Counters, TaskContext, TaskDef
from mds.ops.run_logs import MAX_LINE_CHARS, MAX_LINES, RunLog
from mds.ops.runs import RunSubmitter, TaskRunner
from mds.providers.registry import build_providers
from mds.queue.memory import InMemoryJobQueue
from mds.queue.tasks import TaskQueues
from mds.routing.router import Router
from mds.storage.sqlite import SqliteStore
from tests.helpers import SIM_ENV, utc

T0 = utc(2026, 3, 4, 14, 0)
CAL = MarketCalendar()
task_log = logging.getLogger("tests.run_logs")
#: Barriers the ``chatty`` runs meet at, by name (run params are JSON, so not the barrier).
GATES: dict[str, asyncio.Barrier] = {}


class AnyParams(BaseModel):
    model_config = ConfigDict(extra="allow")


def messages(run: JobRun) -> list[str]:
    """The lines' messages, without their timestamp, level and logger."""
    return [line.split(": ", 1)[1] for line in run.logs]


async def chatty(ctx: TaskContext, counters: Counters, name: str, gate: str) -> None:
    """Log three lines, meeting the other run at the gate between them (both run at once)."""
    barrier = GATES[gate]
    task_log.info("%s: step 1", name)
    await barrier.wait()
    task_log.info("%s: step 2", name)
    await barrier.wait()
    task_log.warning("%s: done", name)


async def nested(ctx: TaskContext, counters: Counters) -> None:
    """Log from a child task and from a worker thread as well as from itself."""

    async def child() -> None:
        task_log.info("from a child task")

    task_log.info("from the task")
    await asyncio.gather(child())
    await asyncio.to_thread(task_log.info, "from a thread")


async def noisy(ctx: TaskContext, counters: Counters, lines: int) -> None:
    """Log ``lines`` numbered lines, one overlong, one carrying a key, one multi-line."""
    task_log.info("x" * (MAX_LINE_CHARS * 2))
    task_log.info("GET https://vendor.example/q?apikey=SECRET123&s=AAPL")
    task_log.info("first\nsecond\x00")
    for i in range(lines):
        task_log.info("line %d", i)


async def breaks(ctx: TaskContext, counters: Counters) -> None:
    """Log, log a caught exception, then fail."""
    task_log.info("about to fail")
    try:
        raise KeyError("inner")
    except KeyError:
        task_log.exception("caught one")
    raise ValueError("vendor said no")


@dataclass
class Bench:
    store: SqliteStore
    submitter: RunSubmitter
    runner: TaskRunner
    finished: defaultdict[int, asyncio.Event]

    async def run(self, task: str, **kwargs: Any) -> JobRun:
        run = self.submitter.new_run(
            task, trigger=Trigger.TASK, metadata=ScheduleMetadata(), kwargs=kwargs, logical_date=T0.date()
        )
        return await self.submitter.submit(run)

    async def outcome(self, run: JobRun) -> JobRun:
        assert run.id is not None
        async with asyncio.timeout(10):  # bounds a hang; asserts nothing about time
            await self.finished[run.id].wait()
        stored = await self.store.get_run(run.id)
        assert stored is not None
        return stored


@pytest.fixture
async def bench(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Bench]:
    caplog.set_level(logging.INFO, logger=task_log.name)
    store = SqliteStore(str(tmp_path / "runs.db"))
    await store.open()
    clock = ManualClock(T0)
    settings = load_settings(SIM_ENV)
    metrics = Metrics()
    providers = build_providers(settings, clock, CAL, SIM_ENV)
    catalog = Catalog()
    for fn in (chatty, nested, noisy, breaks):
        spec = ScheduleSpec(name=fn.__name__, task=fn.__name__, cron="0 * * * *")
        catalog.tasks[fn.__name__] = TaskDef(fn.__name__, fn, fn.__doc__ or "", AnyParams, spec)
    queues = TaskQueues.build(settings.TASK_QUEUES, lambda _: InMemoryJobQueue())
    submitter = RunSubmitter(store=store, catalog=catalog, clock=clock, queues=queues, zone=CAL.zone)
    services: dict[str, Any] = dict.fromkeys(("backfiller", "indexes", "tracked", "coverage", "analysis"))
    ctx = TaskContext(
        store=store,
        calendar=CAL,
        clock=clock,
        settings=settings,
        router=Router(providers, settings, clock, metrics),
        **services,
    )
    finished: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)

    def observe(run: JobRun) -> None:
        assert run.id is not None
        finished[run.id].set()

    runner = TaskRunner(submitter=submitter, ctx=ctx, observe=observe)
    runner.start(2)
    try:
        yield Bench(store, submitter, runner, finished)
    finally:
        await runner.stop()
        await queues.close()
        await store.close()
        for p in providers.values():
            await p.aclose()


async def test_two_concurrent_runs_keep_their_own_lines(bench: Bench) -> None:
    GATES["pair"] = asyncio.Barrier(2)  # passes only while both runs are inside their task
    one = await bench.run("chatty", name="one", gate="pair")
    two = await bench.run("chatty", name="two", gate="pair")
    task_log.info("outside any run")

    done_one, done_two = await bench.outcome(one), await bench.outcome(two)

    assert done_one.status is RunStatus.SUCCEEDED and done_two.status is RunStatus.SUCCEEDED
    assert messages(done_one) == ["one: step 1", "one: step 2", "one: done"]
    assert messages(done_two) == ["two: step 1", "two: step 2", "two: done"]
    first = done_one.logs[0].split(" ")
    assert first[1:3] == ["INFO", "tests.run_logs:"]
    assert first[0].endswith("+00:00") and "T" in first[0]  # an ISO UTC timestamp
    assert done_one.logs[2].split(" ")[1] == "WARNING"


async def test_child_tasks_and_threads_log_into_their_run(bench: Bench) -> None:
    done = await bench.outcome(await bench.run("nested"))

    assert done.status is RunStatus.SUCCEEDED
    assert messages(done) == ["from the task", "from a child task", "from a thread"]


async def test_lines_are_bounded_one_line_each_and_redacted(bench: Bench) -> None:
    done = await bench.outcome(await bench.run("noisy", lines=MAX_LINES))

    # The first three lines (and none of the numbered ones) were pushed out by the newest.
    assert len(done.logs) == MAX_LINES
    assert messages(done) == [f"line {i}" for i in range(MAX_LINES)]

    few = await bench.outcome(await bench.run("noisy", lines=1))
    long, keyed, multi, numbered = few.logs
    assert len(long) == MAX_LINE_CHARS and long.endswith("x")
    assert "SECRET123" not in keyed and "apikey=***" in keyed
    assert multi.endswith("first | second")
    assert numbered.endswith("line 0")


async def test_a_failed_run_keeps_its_lines_and_the_error_summary(bench: Bench) -> None:
    done = await bench.outcome(await bench.run("breaks"))

    assert done.status is RunStatus.FAILED
    assert done.error == "ValueError: vendor said no"
    assert messages(done) == [
        "about to fail",
        "caught one (KeyError: 'inner')",  # the exception in one line, not its traceback
        "failed: ValueError: vendor said no",
    ]
    assert done.logs[-1].split(" ")[1:3] == ["ERROR", "mds.ops.runs:"]


async def test_recorded_inline_work_keeps_its_lines(bench: Bench) -> None:
    with pytest.raises(RuntimeError):
        async with bench.runner.recorded("refresh_coverage"):
            task_log.info("inline work")
            raise RuntimeError("nope")
    task_log.info("after the inline work")

    [run] = await bench.store.job_runs(task="refresh_coverage")
    assert messages(run) == ["inline work", "failed: RuntimeError: nope"]


def test_a_retry_keeps_the_earlier_lines_in_front() -> None:
    log = RunLog(["attempt 0"])
    log.add("attempt 1")
    assert log.lines == ["attempt 0", "attempt 1"]
