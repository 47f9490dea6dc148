"""Injected time. Everything that asks "what time is it" asks a Clock.

``SimulatedClock`` runs from a chosen start at a speed factor, so a trading
session can be replayed at 60x in a demo; ``ManualClock`` only moves when a test
tells it to; ``VirtualClock`` moves only when the service in its event loop is idle,
so a replay in a test cannot fall behind it however loaded the machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""
        ...

    @property
    def speed(self) -> float:
        """Clock seconds per wall-clock second."""
        ...


class SystemClock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimulatedClock:
    """Starts at ``start`` and runs ``speed`` times faster than the wall clock."""

    def __init__(self, start: datetime, speed: float = 1.0, *, anchor: float | None = None) -> None:
        """``anchor``: the wall-clock epoch second at which this clock reads ``start``; give
        several processes the same anchor and they share one simulated time."""
        if start.tzinfo is None:
            raise ValueError("SimulatedClock start must be timezone-aware")
        if speed <= 0:
            raise ValueError("SimulatedClock speed must be positive")
        self._start = start.astimezone(UTC)
        self._t0 = time.monotonic()
        self._anchor = anchor
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        elapsed = time.time() - self._anchor if self._anchor is not None else time.monotonic() - self._t0
        return self._start + timedelta(seconds=elapsed * self._speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)


class ManualClock:
    """A clock for tests: time stands still until ``advance`` or ``set``."""

    speed = 1.0

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)

    async def sleep(self, seconds: float) -> None:
        # Moving time forward on sleep keeps loops that sleep on a ManualClock from spinning.
        self.advance(seconds)
        await asyncio.sleep(0)


class VirtualClock:
    """A clock that moves only when the service has nothing left to do (for tests).

    Time stands still while anything runs and, once everything waits, jumps to the
    earliest ``sleep`` deadline, waking every sleeper due then (earliest deadline first,
    then in the order they went to sleep). However slow or loaded the machine, the
    service can never fall behind this clock because of the machine: a replayed
    session runs as fast as its work allows and its clock-time figures do not depend
    on load.

    The idle rule, checked by a driver task (``async with clock.driving():``, or
    ``start()`` and ``await stop()``, inside the event loop under test). Time advances
    only when all of these hold:

    * no callback is ready to run on the event loop, for ``idle_iterations`` loop
      iterations in a row (a CPU-bound coroutine chain keeps scheduling itself, so it
      is never idle);
    * no job is in flight in an executor thread: while driving, the loop's
      ``run_in_executor`` is wrapped to count its futures (every SQLite query hops to
      the store's own executors that way, and so does ``asyncio.to_thread``);
    * the new time is not past a pending real-time timer (see ``speed``).

    ``speed`` is nominal. MDS turns clock seconds into real ones with it (a job put off
    by ``d / clock.speed`` real seconds), so here a real-time timer of ``d`` seconds set
    while driving (``asyncio.sleep``, ``loop.call_later``) stands for ``d * speed``
    seconds of this clock: time moves up to that point and then waits for the timer to
    fire, so work MDS put off in real time is not overtaken. Timers that only bound a
    wait (``asyncio.timeout``, ``wait_for``, ``asyncio.wait(timeout=)``, e.g. a worker's
    ``queue.get(timeout=1.0)`` or the deadline around a provider call) are not work and
    never hold time back. A real-time loop that never ends (the event-loop lag
    monitor sleeps 50 ms, over and over) so keeps an idle service's clock from running
    faster than ``speed``; it never makes it run ahead of the work.

    Not seen, so not waited for: work in flight on sockets (another process, a server),
    in threads started other than through ``run_in_executor``, and in an executor job
    whose awaiting task was cancelled (its count ends with the cancel). Time stands
    still when nothing sleeps, on this clock or on a real-time timer, and when not driven.

    Args:
        start: The time this clock reads first (timezone-aware).
        speed: Nominal clock seconds per real second (see above).
        max_step: The longest single advance, in clock seconds (None: no limit).
        idle_iterations: Loop iterations in a row with nothing ready before time moves.
    """

    def __init__(
        self,
        start: datetime,
        speed: float = 60.0,
        *,
        max_step: float | None = None,
        idle_iterations: int = 3,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock start must be timezone-aware")
        if speed <= 0:
            raise ValueError("VirtualClock speed must be positive")
        if max_step is not None and max_step <= 0:
            raise ValueError("VirtualClock max_step must be positive")
        self._now = start.astimezone(UTC)
        self._speed = float(speed)
        self._max_step = None if max_step is None else timedelta(seconds=max_step)
        self._idle_iterations = max(1, idle_iterations)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []  # a heap
        self._seq = itertools.count()
        self._timers: dict[asyncio.TimerHandle, datetime] = {}  # real timer -> clock time it stands for
        self._inflight = 0
        self._kick: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._driver: asyncio.Task[None] | None = None
        self._originals: dict[str, tuple[Any, bool]] = {}  # loop method -> (original, was an attribute)
        self.advances = 0  # how often time moved (for tests and reports)

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if not seconds > 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + timedelta(seconds=seconds), next(self._seq), fut))
        self._poke()
        try:
            await fut
        finally:
            fut.cancel()  # a cancelled sleeper is skipped when its deadline comes up

    # -- driving ---------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def driving(self) -> AsyncIterator[VirtualClock]:
        """Drive this clock on the running loop for the duration of the block."""
        self.start()
        try:
            yield self
        finally:
            await self.stop()

    def start(self) -> None:
        """Start the driver on the running loop and watch its executor jobs and timers."""
        if self._driver is not None:
            raise RuntimeError("VirtualClock is already driven")
        loop = asyncio.get_running_loop()
        self._loop, self._kick = loop, asyncio.Event()
        # Instance attributes shadow the loop's methods; stop() removes them again.
        wrappers = {
            "run_in_executor": self._run_in_executor,
            "call_at": self._call_at,
            "call_later": self._call_later,
        }
        for name, wrapper in wrappers.items():
            self._originals[name] = (getattr(loop, name), name in vars(loop))
            setattr(loop, name, wrapper)
        self._driver = loop.create_task(self._drive(), name="virtual-clock")

    async def stop(self) -> None:
        """Stop the driver and give the loop its own methods back; time stands still."""
        driver, loop = self._driver, self._loop
        self._driver = None
        if driver is not None:
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
        for name, (original, was_attribute) in self._originals.items():
            if was_attribute:
                setattr(loop, name, original)
            else:
                delattr(loop, name)
        self._originals.clear()
        self._timers.clear()

    def _run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = self._originals["run_in_executor"][0](executor, func, *args)
        self._inflight += 1
        fut.add_done_callback(self._executor_done)
        return fut

    def _executor_done(self, _: asyncio.Future[Any]) -> None:
        self._inflight -= 1
        if not self._inflight:
            self._poke()

    def _call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> Any:
        handle = self._originals["call_at"][0](when, callback, *args, context=context)
        self._track(handle, callback, when - self._loop.time())  # type: ignore[union-attr]
        return handle

    def _call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> Any:
        # Not through call_at: the mark is ``delay`` exactly, not as read off the loop's time.
        when = self._loop.time() + delay  # type: ignore[union-attr]
        handle = self._originals["call_at"][0](when, callback, *args, context=context)
        self._track(handle, callback, delay)
        return handle

    def _track(self, handle: asyncio.TimerHandle, callback: Callable[..., Any], delay: float) -> None:
        if not _bounds_a_wait(callback):
            self._timers[handle] = self._now + timedelta(seconds=max(0.0, delay) * self._speed)

    def _poke(self) -> None:
        if self._kick is not None:
            self._kick.set()

    async def _drive(self) -> None:
        loop = self._loop
        assert loop is not None
        idle = 0
        while True:
            await asyncio.sleep(0)  # let one loop iteration run, then look at the loop
            if self._inflight:
                idle = 0
                await self._wait_for_kick(math.inf)  # the last executor job's end kicks
                continue
            # asyncio has no public "is anything runnable?": BaseEventLoop keeps it in
            # _ready (this task is not in it while it runs).
            idle = 0 if loop._ready else idle + 1  # type: ignore[attr-defined]
            if idle < self._idle_iterations:
                continue
            idle = 0
            wait = self._advance()
            if wait is not None:
                await self._wait_for_kick(wait)

    async def _wait_for_kick(self, timeout: float) -> None:
        assert self._kick is not None
        self._kick.clear()
        with contextlib.suppress(TimeoutError):
            # A wait bound, so not held as work; math.inf: until kicked.
            async with asyncio.timeout(None if math.isinf(timeout) else timeout):
                await self._kick.wait()

    def _advance(self) -> float | None:
        """Move time on and wake who is due (None), or say how long to wait in real seconds
        (math.inf: until a new sleeper or timer kicks)."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        for h in [h for h in self._timers if h.cancelled() or not h._scheduled]:  # type: ignore[attr-defined]
            del self._timers[h]  # fired (moved to the ready queue) or cancelled
        held = min(self._timers.items(), key=lambda kv: kv[1], default=None)
        due = self._sleepers[0][0] if self._sleepers else None
        if due is None and held is None:
            return math.inf
        target = min(t for t in (due, held[1] if held else None) if t is not None)
        if self._max_step is not None:
            target = min(target, self._now + self._max_step)
        if target > self._now:
            self._now = target
            self.advances += 1
        elif held is not None and (due is None or due > self._now):
            # Time is at a real timer's mark: wait for it to fire.
            return max(0.0, held[0].when() - self._loop.time())  # type: ignore[union-attr]
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
        return None


def _bounds_a_wait(callback: Callable[..., Any]) -> bool:
    """Whether a timer only ends a wait: ``asyncio.timeout``, ``wait_for``, ``wait``."""
    return isinstance(getattr(callback, "__self__", None), asyncio.Timeout) or callback is getattr(
        asyncio.tasks, "_release_waiter", None
    )
