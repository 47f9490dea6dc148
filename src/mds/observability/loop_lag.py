"""Event-loop lag: how late the asyncio loop wakes a task that asked to sleep briefly.

A task sleeps ``interval`` seconds of real time, over and over, and records how much later
than asked it woke (``event_loop_lag_seconds``). Anything that blocks the loop (a CPU-bound
pass, a synchronous call) shows up here, apart from how far the data trails the market
(``live_lag_seconds``). Real, monotonic time on purpose: the injected Clock may run at 60x
or stand still in a test, and the loop's stalls are in wall seconds either way.

``stalled_seconds()`` is the running total of those stalls, including one still under way
(the monitor is overdue now); a provider's transport time has the stalls that happened
during it taken off (``mds.routing.timing``), so the loop's own stalls never count as a
vendor's latency.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import numpy as np

from mds.observability.metrics import Metrics
from mds.routing import timing


class LoopLagMonitor:
    """Samples the running loop's lateness every ``interval`` seconds.

    Args:
        metrics: Where ``event_loop_lag_seconds`` is observed.
        interval: Real seconds between samples.
        window: Real seconds of recent samples ``snapshot()`` summarises.
    """

    def __init__(self, metrics: Metrics, *, interval: float = 0.05, window: float = 60.0) -> None:
        self.metrics = metrics
        self.interval = interval
        self.window = window
        self._recent: deque[tuple[float, float]] = deque()  # (monotonic time, lag seconds)
        self._task: asyncio.Task[None] | None = None
        self._stalled = 0.0  # sum of every recorded lag
        self._wake_at: float | None = None  # loop time the running sleep should end at

    def record(self, lag: float, at: float | None = None) -> None:
        """One sample: the loop woke ``lag`` seconds late."""
        at = time.monotonic() if at is None else at
        self._stalled += lag
        self.metrics.event_loop_lag_seconds.observe(lag)
        self._recent.append((at, lag))
        self._prune(at)

    def _prune(self, now: float) -> None:
        while self._recent and self._recent[0][0] < now - self.window:
            self._recent.popleft()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            self._wake_at = asked + self.interval
            await asyncio.sleep(self.interval)
            self._wake_at = None
            self.record(max(0.0, loop.time() - asked - self.interval))

    def stalled_seconds(self) -> float:
        """Seconds the loop has stalled since this monitor started (never decreases)."""
        overdue = 0.0
        if self._wake_at is not None:
            overdue = max(0.0, asyncio.get_running_loop().time() - self._wake_at)
        return self._stalled + overdue

    def snapshot(self) -> dict[str, float | int]:
        """The last ``window`` seconds: p99 and max lag in ms, and how many samples."""
        self._prune(time.monotonic())
        lags = np.fromiter((lag for _, lag in self._recent), dtype=np.float64, count=len(self._recent))
        return {
            "lag_p99_ms": round(float(np.percentile(lags, 99)) * 1000, 3) if lags.size else 0.0,
            "lag_max_ms": round(float(lags.max()) * 1000, 3) if lags.size else 0.0,
            "window_s": self.window,
            "samples": int(lags.size),
        }

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="loop-lag")
            timing.set_stall_source(self.stalled_seconds)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            timing.set_stall_source(None)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
