"""The scheduler: fire stored schedules when due, on the leading scheduler only.

The leader keeps every enabled schedule's next due time in a heap, so a tick (finding what
is due) costs a heap peek, not a pass over the schedules, and sleeps on the service clock
until the earliest due time. Firing is a compare-and-set in the store
(``ScheduleStore.fire_schedule``): the schedule's ``last_due_at`` moves to the due time and
the run row is written in one transaction, so two processes that both believe they lead
(a paused leader whose lock expired, say) fire a due time once between them.

A schedule that fell due several times while no scheduler ran fires once, for its newest
due time (coalesced), with the number of fires it stands for in the run's note.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mds.domain.clock import Clock
from mds.domain.schedules import JobRun, Schedule, Trigger
from mds.ops.runs import HANDED_OVER, TaskRunner
from mds.ops.timing import Timing, TimingError, logical_date, timing_for
from mds.storage.base import ScheduleStore

log = logging.getLogger(__name__)

#: Clock seconds between sweeps for runs whose worker died.
EXPIRE_EVERY_SEC = 60.0
#: Missed fires counted at most when coalescing (the note then says "at least").
COALESCE_COUNT_MAX = 10_000
#: Clock seconds before a fire that failed (store down) is tried again.
RETRY_FIRE_SEC = 1.0


@dataclass
class _Entry:
    schedule: Schedule
    timing: Timing
    next_due: datetime
    version: int


class Scheduler:
    def __init__(
        self,
        *,
        store: ScheduleStore,
        runner: TaskRunner,
        clock: Clock,
        reload_seconds: float = 2.0,
        first_lead: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock
        #: Wall seconds between checks for schedules another process changed.
        self.reload_seconds = reload_seconds
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._version = 0
        self._seen: tuple[int, int] | None = None
        self.fired = 0
        self.first_lead = first_lead

    # -- the in-memory plan ----------------------------------------------------------

    def plan(self, schedules: list[Schedule]) -> None:
        """Replace the plan with ``schedules`` (the enabled ones), each at its next due time."""
        self._entries.clear()
        self._heap.clear()
        for s in schedules:
            if s.enabled:
                self._add(s)
        heapq.heapify(self._heap)

    def _add(self, schedule: Schedule) -> None:
        try:
            timing = timing_for(schedule)
        except TimingError as exc:  # stored before a rule tightened: skip it, loudly
            log.error("schedule %s not planned: %s: %s", schedule.name, exc.field, exc)
            return
        marks = [t for t in (schedule.last_due_at, schedule.since) if t is not None]
        base = max(marks) if marks else self.clock.now()
        self._version += 1
        entry = _Entry(schedule, timing, timing.next_after(base), self._version)
        self._entries[schedule.name] = entry
        self._heap.append((entry.next_due, entry.version, schedule.name))

    def due(self, now: datetime) -> list[_Entry]:
        """Pop the entries due at ``now`` (the tick)."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, version, name = heapq.heappop(self._heap)
            entry = self._entries.get(name)
            if entry is not None and entry.version == version:
                out.append(entry)
        return out

    def next_due(self) -> datetime | None:
        while self._heap:
            _, version, name = self._heap[0]
            entry = self._entries.get(name)
            if entry is not None and entry.version == version:
                return self._heap[0][0]
            heapq.heappop(self._heap)  # a stale slot left by a re-plan
        return None

    # -- firing ----------------------------------------------------------------------

    async def reload_if_changed(self) -> bool:
        mark = await self.store.schedules_changed_at()
        if mark == self._seen:
            return False
        self.plan(await self.store.schedules())
        self._seen = mark
        return True

    async def fire(self, entry: _Entry, now: datetime) -> JobRun | None:
        """Fire ``entry`` once for its newest due time at or before ``now`` and plan the next."""
        s, timing = entry.schedule, entry.timing
        due, missed = entry.next_due, 0
        following = timing.next_after(due)
        if following <= now:  # fell due more than once: fire the newest, count the rest
            due = max(timing.latest_at_or_before(now) or due, due)
            t = entry.next_due
            while t < due and missed < COALESCE_COUNT_MAX:
                missed += 1
                t = timing.next_after(t)
            following = timing.next_after(due)
        run = self.runner.submitter.new_run(
            s.task,
            trigger=Trigger.SCHEDULE,
            metadata=s.metadata,
            kwargs=s.kwargs,
            schedule=s.name,
            logical_date=logical_date(timing, due),
            due_at=due,
        )
        run.params["args"] = list(s.args)
        if missed:
            run.note = f"coalesced: stands for {missed + 1} due times since {entry.next_due.isoformat()}"
        fired = await self.store.fire_schedule(s.name, due, run)
        s.last_due_at = due
        self._version += 1
        entry.next_due, entry.version = following, self._version
        heapq.heappush(self._heap, (entry.next_due, entry.version, s.name))
        if fired is None:
            return None  # another scheduler fired it, or it was paused meanwhile
        try:
            await self.runner.submitter.enqueue(fired)
        except Exception:
            # Fired but not queued (the queue is down): hand the run over, and the leader
            # queues it (adopt_handed_over) once the queue answers again.
            log.exception("queueing run %s of schedule %s failed: handed over", fired.id, s.name)
            fired.note = HANDED_OVER
            await self.runner.store.update_run(fired)
        self.fired += 1
        return fired

    async def run(self) -> None:
        """Lead: reload when the store changed, fire what is due, sleep until the next due.
        ``first_lead`` runs once, before the first tick (seeding the catalog)."""
        if self.first_lead is not None:
            try:
                await self.first_lead()
            except Exception:  # seeding is a convenience; scheduling must go on
                log.exception("scheduler start-up step failed")
            self.first_lead = None
        self._seen = None  # (re)gaining the lead: another leader may have fired meanwhile
        # Plan from the store's marks on every lead: while another process led, this plan
        # went stale (its due times fired there), and no schedule change may say so.
        self._seen = None
        last_reload = last_expire = float("-inf")
        while True:
            wall = time.monotonic()
            if wall - last_reload >= self.reload_seconds:
                try:
                    await self.reload_if_changed()
                    await self.runner.submitter.adopt_handed_over()
                except Exception:  # a store hiccup: keep the plan, try again next round
                    log.exception("reading schedules failed")
                last_reload = wall
            if wall - last_expire >= EXPIRE_EVERY_SEC / self.clock.speed:
                try:
                    await self.runner.expire_abandoned()
                except Exception:
                    log.exception("expiring abandoned runs failed")
                last_expire = wall
            now = self.clock.now()
            entries = self.due(now)
            planned = [e.version for e in entries]
            # Side by side: each fire is a store transaction of its own (a commit), and a
            # hundred schedules due at once must all start within a second.
            outcomes = await asyncio.gather(*(self.fire(e, now) for e in entries), return_exceptions=True)
            for entry, version, outcome in zip(entries, planned, outcomes, strict=True):
                if not isinstance(outcome, Exception):
                    continue
                log.error("firing schedule %s failed", entry.schedule.name, exc_info=outcome)
                # Retried only while its mark did not move: once fired, the entry is planned
                # at its next due time, and a retry would fire that one early.
                if entry.version == version:
                    retry_at = now + timedelta(seconds=RETRY_FIRE_SEC)
                    heapq.heappush(self._heap, (retry_at, entry.version, entry.schedule.name))
            await self._sleep_until_due()

    async def _sleep_until_due(self) -> None:
        nxt = self.next_due()
        wait = self.reload_seconds * self.clock.speed
        if nxt is not None:
            wait = min(wait, max(0.0, (nxt - self.clock.now()).total_seconds()))
        await self.clock.sleep(wait)
