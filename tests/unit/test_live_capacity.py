"""Capacity reserved for live work, and latency charged only to the provider that caused it.

Each test puts a backlog of backfill work (marked with ``mds.domain.work.as_backfill``) in
front of a live caller and checks the live caller still gets through at once; and that a
provider's latency and timeouts count only its own exchange, not MDS's waits.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from mds.config import load_settings
from mds.domain import work
from mds.domain.clock import ManualClock
from mds.domain.models import Capability
from mds.errors import ConfigError, NoProviderAvailable
from mds.observability.metrics import Metrics
from mds.providers.ratelimit import RateLimiter, parse_limits
from mds.routing import timing
from mds.routing.router import Router
from mds.storage.lanes import LaneExecutor

T0 = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)


# -- rate-limit share -------------------------------------------------------------------


async def test_backfills_leave_the_reserved_share_of_a_rate_limit_to_live_calls() -> None:
    limiter = RateLimiter(live_reserved_share=0.5)
    limits = parse_limits(["4/second"])
    t0 = time.monotonic()
    backfill_done: list[float] = []

    async def backfill() -> None:
        with work.as_backfill():
            await limiter.acquire("vendor", limits)
        backfill_done.append(time.monotonic() - t0)

    tasks = [asyncio.ensure_future(backfill()) for _ in range(6)]
    await asyncio.sleep(0.05)
    # Only half the window went to the backlog; the rest waits for the window to move.
    assert len(backfill_done) == 2
    live_started = time.monotonic()
    await limiter.acquire("vendor", limits)
    await limiter.acquire("vendor", limits)
    assert time.monotonic() - live_started < 0.2, "live calls waited behind the backlog"
    await asyncio.gather(*tasks)
    assert sum(1 for d in backfill_done if d < 0.5) == 2


async def test_without_a_reserve_a_backlog_takes_the_whole_window() -> None:
    limiter = RateLimiter(live_reserved_share=0.0)
    limits = parse_limits(["4/second"])
    with work.as_backfill():
        for _ in range(4):
            await limiter.acquire("vendor", limits)
    started = time.monotonic()
    await limiter.acquire("vendor", limits)
    assert time.monotonic() - started >= 0.5


def test_reserved_share_and_connections_are_checked_settings() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"LIVE_RESERVED_RATE_SHARE": "1"})
    assert err.value.setting == "LIVE_RESERVED_RATE_SHARE"
    with pytest.raises(ConfigError) as err:
        load_settings({"LIVE_RESERVED_DB_CONNECTIONS": "10", "DB_POOL_MAX_SIZE": "10"})
    assert err.value.setting == "LIVE_RESERVED_DB_CONNECTIONS"
    with pytest.raises(ConfigError) as err:
        load_settings({"LIVE_WORKERS": "0"})
    assert err.value.setting == "LIVE_WORKERS"
    with pytest.raises(ConfigError) as err:
        load_settings({"LIVE_MAX_CONCURENCY": "4"})  # a typo in the LIVE_ family
    assert err.value.setting == "LIVE_MAX_CONCURENCY"


# -- the SQLite threads' lanes ------------------------------------------------------------


async def test_live_work_runs_before_queued_backfill_work_on_one_thread() -> None:
    executor = LaneExecutor("test-lanes")
    loop = asyncio.get_running_loop()
    order: list[str] = []
    gate, running = threading.Event(), threading.Event()

    def hold() -> None:
        running.set()
        gate.wait(10)

    try:
        blocker = loop.run_in_executor(executor, hold)  # holds the thread
        assert await asyncio.to_thread(running.wait, 5)
        with work.as_backfill():
            backlog = [loop.run_in_executor(executor, order.append, f"backfill-{i}") for i in range(5)]
        live = loop.run_in_executor(executor, order.append, "live")
        assert executor.queued() == (1, 5)
        gate.set()
        await asyncio.gather(blocker, live, *backlog)
        assert order[0] == "live"
        assert order[1:] == [f"backfill-{i}" for i in range(5)]
    finally:
        gate.set()
        executor.shutdown()


async def test_lane_executor_reports_exceptions_and_refuses_work_after_shutdown() -> None:
    executor = LaneExecutor("test-lanes")
    loop = asyncio.get_running_loop()

    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await loop.run_in_executor(executor, boom)
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(print)


# -- latency and timeouts around the transport only ------------------------------------


class TimedProvider:
    """Waits ``before`` seconds outside its transport (a limiter, MDS's own), then
    ``exchange`` seconds inside it."""

    times_transport = True
    capabilities = frozenset({Capability.BARS_1M})
    configured = True

    def __init__(self, name: str, *, before: float, exchange: float) -> None:
        self.name = name
        self.before = before
        self.exchange = exchange

    async def ask(self) -> str:
        await asyncio.sleep(self.before)
        async with timing.transport(self.name):
            await asyncio.sleep(self.exchange)
        return "ok"

    async def fetch_bars(self, *args: Any) -> list[Any]:
        return []

    async def fetch_quotes(self, symbols: Sequence[str]) -> list[Any]:
        return []

    async def aclose(self) -> None:
        return None


def _router(*providers: TimedProvider, timeout: float = 10.0) -> tuple[Router, Metrics]:
    settings = load_settings(
        {
            "POLICY_BARS_1M": ",".join(p.name for p in providers),
            "PROVIDER_TIMEOUT_SEC": str(timeout),
            "BREAKER_FAILURE_THRESHOLD": "1",
        }
    )
    metrics = Metrics()
    return Router({p.name: p for p in providers}, settings, ManualClock(T0), metrics), metrics


async def test_waiting_for_a_rate_limit_slot_is_not_provider_latency_nor_a_timeout() -> None:
    slow_queue = TimedProvider("sim", before=0.6, exchange=0.01)
    router, metrics = _router(slow_queue, timeout=0.3)
    routed = await router.call(Capability.BARS_1M, lambda p: p.ask())  # type: ignore[attr-defined]
    assert routed.provider == "sim"
    snap = next(r for r in router.snapshot() if r["provider"] == "sim")
    assert snap["latency_p95_ms"] < 200, snap
    assert snap["state"] == "closed"
    assert metrics.value("provider_errors_total", provider="sim", endpoint="bars_1m", code="timeout") in (
        None,
        0.0,
    )


async def test_a_slow_exchange_still_times_out_and_fails_over() -> None:
    hung = TimedProvider("sim", before=0.0, exchange=5.0)
    backup = TimedProvider("sim_backup", before=0.0, exchange=0.0)
    router, metrics = _router(hung, backup, timeout=0.2)
    started = time.monotonic()
    routed = await router.call(Capability.BARS_1M, lambda p: p.ask())  # type: ignore[attr-defined]
    assert routed.provider == "sim_backup"
    assert time.monotonic() - started < 2.0
    assert metrics.value("provider_errors_total", provider="sim", endpoint="bars_1m", code="timeout") == 1
    assert router.state("sim").value == "open"


async def test_event_loop_stalls_during_an_exchange_are_not_charged_to_the_provider() -> None:
    stalls = {"s": 0.0}
    timing.set_stall_source(lambda: stalls["s"])
    try:

        class Stalled(TimedProvider):
            async def ask(self) -> str:
                async with timing.transport(self.name):
                    time.sleep(0.4)  # noqa: ASYNC251 - another task held the loop this long...
                    stalls["s"] += 0.4  # ...and the loop-lag monitor saw it
                return "ok"

        router, _ = _router(Stalled("sim", before=0, exchange=0))
        await router.call(Capability.BARS_1M, lambda p: p.ask())  # type: ignore[attr-defined]
        snap = router.snapshot()[0]
        assert snap["latency_p95_ms"] < 100, snap
    finally:
        timing.set_stall_source(None)


async def test_providers_without_transport_timing_are_measured_whole() -> None:
    class Whole(TimedProvider):
        times_transport = False

    router, _ = _router(Whole("sim", before=0.2, exchange=0.0))
    await router.call(Capability.BARS_1M, lambda p: p.ask())  # type: ignore[attr-defined]
    assert router.snapshot()[0]["latency_p95_ms"] >= 150


async def test_transport_outside_a_routed_call_only_runs_the_block() -> None:
    started = time.monotonic()
    async with timing.transport("sim"):  # no routed call: no timeout is imposed
        await asyncio.sleep(0.1)
    assert time.monotonic() - started >= 0.1
    router, _ = _router(TimedProvider("sim", before=0, exchange=1.0), timeout=0.05)
    with pytest.raises(NoProviderAvailable, match="no answer within 0.05s"):
        await router.call(Capability.BARS_1M, lambda p: p.ask())  # type: ignore[attr-defined]


async def test_a_stall_of_the_loop_measured_by_the_monitor_is_taken_off_the_exchange() -> None:
    from mds.observability.loop_lag import LoopLagMonitor

    monitor = LoopLagMonitor(Metrics(), interval=0.02)
    monitor.start()
    try:
        await asyncio.sleep(0.05)

        async def hog() -> None:
            await asyncio.sleep(0.01)
            time.sleep(0.4)  # noqa: ASYNC251 - a task that holds the loop

        router, _ = _router(TimedProvider("sim", before=0, exchange=0.05))
        hogging = asyncio.ensure_future(hog())
        await router.call(Capability.BARS_1M, lambda p: p.ask())  # type: ignore[attr-defined]
        await hogging
        latency = router.snapshot()[0]["latency_p95_ms"]
        assert latency < 200, f"the loop's 400 ms stall was charged to the provider ({latency} ms)"
        assert monitor.stalled_seconds() >= 0.35
    finally:
        await monitor.stop()


async def test_breaker_openings_are_counted() -> None:
    hung = TimedProvider("sim", before=0.0, exchange=5.0)
    router, metrics = _router(hung, timeout=0.05)
    with pytest.raises(NoProviderAvailable):
        await router.call(Capability.BARS_1M, lambda p: p.ask())  # type: ignore[attr-defined]
    assert metrics.value("circuit_opened_total", provider="sim") == 1
