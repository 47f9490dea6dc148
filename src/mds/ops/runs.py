"""Task runs: queue them, and run them in workers with their metadata enforced.

Every execution is a ``job_run`` row. Scheduled fires, run-now and ``POST /admin/tasks/run``
queue a run and a :class:`~mds.domain.jobs.TaskJob` pointing at it; a worker takes the job
and, before the task starts, checks in this order:

1. maintenance windows: inside one, the run waits (re-queued) until the window closes;
2. dependencies: it waits until each dependency's latest run for the same logical date
   succeeded, at most ``dependency_wait_s``, then it is skipped with the reason;
3. preflight checks: the first that fails skips the run with the reason;
4. the claim (``JobRunStore.claim_run``, atomic across processes): ``single_flight`` skips
   it while another run of its schedule runs; ``max_concurrency`` makes it wait.

The task then runs under ``timeout_s`` (cancelled and recorded ``timed_out``) with its
lease renewed, so a run whose worker dies is failed as abandoned instead of blocking its
schedule forever. A failed or timed-out run is retried per ``retry``; the final outcome
fires the hooks. Admin POSTs that run their work inline record a run with :meth:`recorded`.
What an execution logs is kept on its run (:mod:`mds.ops.run_logs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from opentelemetry.trace import NoOpTracer, Tracer

from mds.domain.clock import Clock
from mds.domain.jobs import TaskJob, priority_band
from mds.domain.models import Capability
from mds.domain.schedules import Hooks, JobRun, RunStatus, ScheduleMetadata, Trigger
from mds.observability.propagation import job_span
from mds.ops.catalog import Catalog, Counters, TaskContext
from mds.ops.run_logs import RunLog, capturing
from mds.queue.base import Delivery
from mds.queue.tasks import TaskQueues
from mds.redact import redact
from mds.storage.base import JobRunStore

log = logging.getLogger(__name__)

#: Clock seconds a claim lasts unless renewed, and how often a running task renews it.
LEASE_SEC = 120.0
RENEW_SEC = 30.0
#: Clock seconds between re-checks of a run waiting for dependencies or a concurrency slot.
RECHECK_SEC = 30.0
ERROR_MAX = 2000
#: What the gate answers for a run another delivery already took.
DROP = -1.0


class _Overran(Exception):
    """The run exceeded ``timeout_s`` (a class of its own: a task's own TimeoutError is a failure)."""


class Notifier(Protocol):
    async def notify(self, run: JobRun, hooks: Hooks) -> None: ...


class TaskRunMetrics(Protocol):
    def observe_run(self, run: JobRun) -> None: ...


class Preflight:
    """The checks a schedule's ``preflight_checks`` name; each answers None or why not."""

    def __init__(self, ctx: TaskContext, *, redis: Any | None = None) -> None:
        self.ctx = ctx
        self.redis = redis

    async def failure(self, check: str, run: JobRun) -> str | None:
        try:
            if check == "store":
                await self.ctx.store.ping()
            elif check == "redis":
                if self.redis is None:
                    return "redis: not configured (QUEUE_BACKEND is not redis)"
                await self.redis.ping()
            elif check == "session_day":
                if self.ctx.calendar.session_on(run.logical_date) is None:
                    return f"session_day: {run.logical_date} is not a trading session"
            elif check.startswith("provider:"):
                cap = Capability(check.split(":", 1)[1])
                if not self.ctx.router.order(cap):
                    return f"{check}: no provider is routable for {cap.value}"
            else:
                return f"{check}: unknown check"
        except Exception as exc:  # a check that cannot answer has failed
            return f"{check}: {redact(str(exc)) or type(exc).__name__}"
        return None


def scalar_counters(body: Mapping[str, Any]) -> Counters:
    """The top-level numbers, strings and flags of an answer: an inline run's counters."""
    return {k: v for k, v in body.items() if isinstance(v, (int, float, str, bool))}


def now_date(clock: Clock, zone: str) -> date:
    return clock.now().astimezone(ZoneInfo(zone)).date()


#: The note of a run stored for a scheduler to queue (by a process without the queues).
HANDED_OVER = "waiting for the scheduler to queue it"


class RunSubmitter:
    """Makes job runs and queues them. Without ``queues`` (the CLI, which does not hold the
    service's queues) a run is stored ``HANDED_OVER`` and the leading scheduler queues it."""

    def __init__(
        self,
        *,
        store: JobRunStore,
        catalog: Catalog,
        clock: Clock,
        queues: TaskQueues | None,
        zone: str = "America/New_York",
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.queues = queues
        #: The zone of a manual run's logical date (the exchange's).
        self.zone = zone

    def new_run(
        self,
        task: str,
        *,
        trigger: Trigger,
        metadata: ScheduleMetadata | None = None,
        kwargs: dict[str, Any] | None = None,
        schedule: str | None = None,
        logical_date: date | None = None,
        due_at: datetime | None = None,
        created_by: str | None = None,
    ) -> JobRun:
        meta = metadata or self.catalog[task].default.metadata
        return JobRun(
            task=task,
            trigger=trigger,
            schedule=schedule,
            logical_date=logical_date or now_date(self.clock, self.zone),
            queued_at=self.clock.now(),
            queue=meta.queue,
            priority=meta.priority,
            due_at=due_at,
            params={"args": [], "kwargs": dict(kwargs or {})},
            metadata=meta.model_dump(mode="json"),
            created_by=created_by,
        )

    async def submit(self, run: JobRun) -> JobRun:
        """Store ``run`` (unless it has an id already) and queue it for a worker."""
        if self.queues is None:
            run.note = HANDED_OVER
        if run.id is None:
            run = await self.store.create_run(run)
        if self.queues is not None:
            await self.enqueue(run)
        return run

    async def enqueue(self, run: JobRun) -> None:
        if self.queues is None or run.id is None:
            raise RuntimeError("enqueue needs the task queues and a stored run")
        await self.queues.put(
            TaskJob(run_id=run.id, task=run.task, queue=run.queue, priority=priority_band(run.priority))
        )

    async def adopt_handed_over(self, limit: int = 100) -> int:
        """Queue the runs stored ``HANDED_OVER`` (the leading scheduler calls this)."""
        adopted = 0
        for run in await self.store.job_runs(status=RunStatus.QUEUED, limit=limit):
            if run.note == HANDED_OVER:
                run.note = None
                await self.store.update_run(run)
                await self.enqueue(run)
                adopted += 1
        return adopted


class TaskRunner:
    def __init__(
        self,
        *,
        submitter: RunSubmitter,
        ctx: TaskContext,
        notifier: Notifier | None = None,
        preflight: Preflight | None = None,
        observe: Callable[[JobRun], None] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.submitter = submitter
        self.tracer = tracer or NoOpTracer()
        self.store = submitter.store
        self.catalog = submitter.catalog
        self.clock = submitter.clock
        self.ctx = ctx
        self.notifier = notifier
        self.preflight = preflight or Preflight(ctx)
        self.observe = observe
        self._consumers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def queues(self) -> TaskQueues:
        if self.submitter.queues is None:
            raise RuntimeError("this runner has no task queues")
        return self.submitter.queues

    # -- consuming ------------------------------------------------------------------

    def start(self, per_queue: int) -> None:
        loop = asyncio.get_running_loop()
        for name in self.queues.names():
            for _ in range(per_queue):
                self._consumers.append(loop.create_task(self._consume(name)))

    async def stop(self) -> None:
        self._stopping = True
        for t in self._consumers:
            t.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers.clear()
        self._stopping = False

    async def _consume(self, name: str) -> None:
        queue = self.queues[name]
        # Not only the cancel: on Python 3.11 a cancel can be lost inside a Redis call
        # (asyncio.wait_for returns the result of a read that finished as it was cancelled),
        # and a consumer that lost it would poll on forever and hang stop().
        while not self._stopping:
            delivery = await queue.get(timeout=1.0)
            if delivery is None:
                continue
            try:
                await self.process(delivery, queue)
            except Exception:  # one bad run must not stop the consumer; the lease expires it
                log.exception("task job %s failed outside its run", delivery.job.job_id)
                with contextlib.suppress(Exception):
                    await queue.ack(delivery)

    async def process(self, delivery: Delivery, queue: Any) -> None:
        with job_span(self.tracer, delivery.job):
            await self._process(delivery, queue)

    async def _process(self, delivery: Delivery, queue: Any) -> None:
        job = delivery.job
        if not isinstance(job, TaskJob):
            await queue.ack(delivery)
            return
        run = await self.store.get_run(job.run_id)
        if run is None or run.status != RunStatus.QUEUED:
            await queue.ack(delivery)  # a duplicate delivery, or the run is gone
            return
        wait = await self._gate(run)
        if wait == DROP:
            await queue.ack(delivery)
            return
        if wait is not None:
            if run.status.finished:
                await self._finish(run)
                await queue.ack(delivery)
            else:
                await self.store.update_run(run)
                await queue.nack(delivery, delay=wait / self.clock.speed)
            return
        await self._execute(run)
        if run.status == RunStatus.QUEUED:  # a retry: back on the queue after its backoff
            meta = ScheduleMetadata.model_validate(run.metadata)
            await queue.nack(delivery, delay=meta.safety.retry.delay(run.attempt) / self.clock.speed)
            return
        await queue.ack(delivery)

    async def _gate(self, run: JobRun) -> float | None:
        """None when the run may start (it is then claimed); else clock seconds to wait
        (``run.note`` says why), 0 with ``run.status`` skipped, or DROP for a run another
        delivery already took."""
        meta = ScheduleMetadata.model_validate(run.metadata)
        now = self.clock.now()
        for window in meta.maintenance_windows:
            until = window.end_if_inside(now)
            if until is not None:
                run.note = f"deferred: maintenance window {window.start}-{window.end} {window.timezone} until {until.isoformat()}"
                return max(1.0, (until - now).total_seconds())
        if meta.dependencies:
            latest = await self.store.latest_runs_for(meta.dependencies, run.logical_date)
            unmet = [
                f"{d} ({latest[d].status.value if d in latest else 'no run'})"
                for d in meta.dependencies
                if d not in latest or latest[d].status != RunStatus.SUCCEEDED
            ]
            if unmet:
                waited = (now - run.queued_at).total_seconds()
                if waited >= meta.dependency_wait_s:
                    return self._skip(
                        run,
                        f"dependencies not met for {run.logical_date} after {waited:.0f}s: {', '.join(unmet)}",
                    )
                run.note = f"waiting for dependencies: {', '.join(unmet)}"
                return min(RECHECK_SEC, meta.dependency_wait_s - waited)
        for check in meta.preflight_checks:
            reason = await self.preflight.failure(check, run)
            if reason is not None:
                return self._skip(run, f"preflight failed: {reason}")
        assert run.id is not None
        blocked = await self.store.claim_run(
            run.id,
            now=now,
            lease_until=now + timedelta(seconds=LEASE_SEC),
            single_flight=meta.safety.single_flight and run.schedule is not None,
            max_concurrency=meta.safety.max_concurrency,
        )
        if blocked is None:
            run.status, run.started_at = RunStatus.RUNNING, now
            run.lease_until = now + timedelta(seconds=LEASE_SEC)
            if run.note and not run.note.startswith("coalesced"):
                run.note = None  # what it waited for is over; a coalesced fire stays said
            return None
        if blocked == RunStatus.SKIPPED:
            return self._skip(run, f"single-flight: a run of {run.schedule} is still running")
        if blocked == RunStatus.QUEUED:
            run.note = (
                f"waiting: {meta.safety.max_concurrency} runs of {run.task} already running (max_concurrency)"
            )
            return RECHECK_SEC
        return DROP  # another delivery took it: leave the row alone

    def _skip(self, run: JobRun, note: str) -> float:
        run.status, run.note = RunStatus.SKIPPED, note
        run.finished_at = self.clock.now()
        return 0.0

    async def _execute(self, run: JobRun) -> None:
        """Run a claimed run to its outcome (or back to queued for a retry)."""
        meta = ScheduleMetadata.model_validate(run.metadata)
        counters: Counters = {}
        lines = RunLog(run.logs)

        async def call() -> None:
            # Inside the task, so an unknown task or params its function does not take
            # fail the run like any other error instead of escaping with the lease held.
            # Capturing here sets the run's log in this task's own context only.
            with capturing(lines):
                await self.catalog[run.task].fn(self.ctx, counters, *run.args, **run.kwargs)

        renew = asyncio.get_running_loop().create_task(self._renew(run))
        work = asyncio.ensure_future(call())
        timeout = meta.safety.timeout_s
        try:
            if timeout is None:
                await work
            else:
                await self._within(work, timeout)
            run.status, run.error = RunStatus.SUCCEEDED, None
        except _Overran:
            run.status, run.error = RunStatus.TIMED_OUT, f"exceeded timeout_s={timeout:g}"
        except asyncio.CancelledError:
            work.cancel()
            raise
        except Exception as exc:
            run.status = RunStatus.FAILED
            run.error = (redact(f"{type(exc).__name__}: {exc}") or type(exc).__name__)[:ERROR_MAX]
        finally:
            renew.cancel()
            await asyncio.gather(renew, return_exceptions=True)
        if run.error:
            lines.note(logging.ERROR, log.name, f"{run.status.value}: {run.error}")
        run.counters, run.logs = counters, lines.lines
        run.finished_at = self.clock.now()
        if run.status in (RunStatus.FAILED, RunStatus.TIMED_OUT) and run.attempt < meta.safety.retry.attempts:
            run.attempt += 1
            wait = meta.safety.retry.delay(run.attempt)
            run.note = (
                f"retry {run.attempt} of {meta.safety.retry.attempts} in {wait:g}s after {run.status.value}"
            )
            run.status, run.lease_until = RunStatus.QUEUED, None
            await self.store.update_run(run)
            return
        await self._finish(run)

    async def _within(self, work: asyncio.Future[None], timeout: float) -> None:
        """Await ``work`` for ``timeout`` seconds of the service clock, then cancel it."""
        timer = asyncio.ensure_future(self.clock.sleep(timeout))
        try:
            done, _ = await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if work in done:
            work.result()
            return
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        raise _Overran

    async def _renew(self, run: JobRun) -> None:
        assert run.id is not None
        while True:
            await self.clock.sleep(RENEW_SEC)
            until = self.clock.now() + timedelta(seconds=LEASE_SEC)
            with contextlib.suppress(Exception):  # a missed renewal only shortens the lease
                await self.store.renew_lease(run.id, until)

    async def _finish(self, run: JobRun) -> None:
        run.finished_at = run.finished_at or self.clock.now()
        if run.started_at is not None:
            run.duration_s = round((run.finished_at - run.started_at).total_seconds(), 6)
        run.lease_until = None
        await self.store.update_run(run)
        if self.observe is not None:
            self.observe(run)
        if run.status != RunStatus.SKIPPED and self.notifier is not None:
            meta = ScheduleMetadata.model_validate(run.metadata)
            await self.notifier.notify(run, meta.hooks)
        log.info(
            "task %s run %s %s in %ss%s",
            run.task,
            run.id,
            run.status.value,
            run.duration_s,
            f": {run.error or run.note}" if (run.error or run.note) else "",
        )

    # -- runs that happen inline -----------------------------------------------------

    async def run_inline(self, run: JobRun) -> JobRun:
        """Run ``run`` here and now through the same gates (the CLI's ``mds schedules run``).
        A run that has to wait is left queued for a worker; retries are not waited for."""
        if run.id is None:
            run = await self.store.create_run(run)
        wait = await self._gate(run)
        if wait == DROP:
            return run
        if wait is not None:
            if run.status.finished:
                await self._finish(run)
            else:
                await self.store.update_run(run)
                await self.submitter.enqueue(run)
            return run
        await self._execute(run)
        if run.status == RunStatus.QUEUED:
            await self.submitter.enqueue(run)
        return run

    @contextlib.asynccontextmanager
    async def recorded(
        self, task: str, params: dict[str, Any] | None = None, *, created_by: str | None = None
    ) -> AsyncIterator[Counters]:
        """Record work an admin POST does inline as a ``job_run`` (trigger ``api``): running
        on entry, succeeded or failed (the exception goes on) on exit, with the counters
        the body wrote into the yielded dict."""
        now = self.clock.now()
        run = await self.store.create_run(
            JobRun(
                task=task,
                trigger=Trigger.API,
                logical_date=now_date(self.clock, self.submitter.zone),
                queued_at=now,
                status=RunStatus.RUNNING,
                started_at=now,
                params={"args": [], "kwargs": dict(params or {})},
                created_by=created_by,
            )
        )
        counters: Counters = {}
        lines = RunLog()
        try:
            with capturing(lines):
                yield counters
            run.status = RunStatus.SUCCEEDED
        except BaseException as exc:
            run.status = RunStatus.FAILED
            run.error = (redact(f"{type(exc).__name__}: {exc}") or type(exc).__name__)[:ERROR_MAX]
            lines.note(logging.ERROR, log.name, f"{run.status.value}: {run.error}")
            raise
        finally:
            run.counters, run.logs = counters, lines.lines
            run.finished_at = self.clock.now()
            with contextlib.suppress(Exception):  # the answer matters more than its record
                await self._finish(run)

    async def expire_abandoned(self) -> list[JobRun]:
        """Fail the runs whose worker stopped renewing their lease (and report them as failures)."""
        runs = await self.store.expire_runs(
            now=self.clock.now(), note="abandoned: its worker stopped renewing the lease"
        )
        for run in runs:
            if self.observe is not None:
                self.observe(run)
            if self.notifier is not None:
                await self.notifier.notify(run, ScheduleMetadata.model_validate(run.metadata).hooks)
        return runs
