"""LoopLagMonitor: a blocked event loop shows up in event_loop_lag_seconds and the snapshot."""

from __future__ import annotations

import asyncio
import time

from mds.observability.loop_lag import LoopLagMonitor
from mds.observability.metrics import Metrics


async def test_a_blocking_call_on_the_loop_shows_as_lag() -> None:
    metrics = Metrics()
    monitor = LoopLagMonitor(metrics, interval=0.05)
    monitor.start()
    try:
        await asyncio.sleep(0.12)  # a few quiet samples first
        time.sleep(0.3)  # noqa: ASYNC251 - on purpose: block the loop, the next wake-up is >= 0.25 s late
        await asyncio.sleep(0.15)
    finally:
        await monitor.stop()
    count = metrics.value("event_loop_lag_seconds_count")
    under_quarter = metrics.value("event_loop_lag_seconds_bucket", le="0.25")
    assert count >= 3
    assert count - under_quarter >= 1  # at least one sample above 0.25 s
    assert metrics.value("event_loop_lag_seconds_sum") >= 0.25
    snap = monitor.snapshot()
    assert snap["lag_max_ms"] >= 250
    assert snap["lag_p99_ms"] >= 0.9 * snap["lag_max_ms"] - 1  # one stall in a handful of samples
    assert snap["window_s"] == 60.0 and snap["samples"] == count


def test_snapshot_keeps_only_the_window() -> None:
    monitor = LoopLagMonitor(Metrics(), window=10.0)
    now = time.monotonic()
    monitor.record(2.0, at=now - 30)  # outside the window
    for _ in range(99):
        monitor.record(0.001, at=now)
    monitor.record(0.5, at=now)
    snap = monitor.snapshot()
    assert snap["samples"] == 100
    assert snap["lag_max_ms"] == 500.0
    assert 1.0 <= snap["lag_p99_ms"] <= 500.0


def test_idle_snapshot_is_zero() -> None:
    assert LoopLagMonitor(Metrics()).snapshot() == {
        "lag_p99_ms": 0.0,
        "lag_max_ms": 0.0,
        "window_s": 60.0,
        "samples": 0,
    }
