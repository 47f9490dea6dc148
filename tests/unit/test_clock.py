"""VirtualClock: time moves only when the event loop and its executor threads are idle."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from mds.domain.clock import VirtualClock

T0 = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_sleepers_wake_in_deadline_order_then_in_the_order_they_slept() -> None:
    clock = VirtualClock(T0)
    woke: list[tuple[str, datetime]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    async with clock.driving():
        await asyncio.gather(nap("c", 3), nap("a1", 1), nap("b", 2), nap("a2", 1), nap("d", 3600))
    assert woke == [("a1", _at(1)), ("a2", _at(1)), ("b", _at(2)), ("c", _at(3)), ("d", _at(3600))]
    assert clock.now() == _at(3600)


async def test_time_jumps_at_once_when_every_task_sleeps() -> None:
    clock = VirtualClock(T0, speed=1.0)
    started = time.monotonic()
    async with clock.driving():
        await asyncio.gather(*(clock.sleep(86_400 * (i + 1)) for i in range(20)))
    assert clock.now() == _at(20 * 86_400)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("executor", ["default", "own"])
async def test_time_stands_still_while_an_executor_job_is_in_flight(executor: str) -> None:
    clock = VirtualClock(T0)
    pool = ThreadPoolExecutor(1, thread_name_prefix="test-store") if executor == "own" else None
    seen: list[datetime] = []

    def slow_query() -> None:
        seen.append(clock.now())
        time.sleep(0.3)
        seen.append(clock.now())

    async def store_call() -> datetime:
        # As SqliteConnections._hop does: the loop's run_in_executor on a dedicated executor.
        await asyncio.get_running_loop().run_in_executor(pool, slow_query)
        return clock.now()

    try:
        async with clock.driving():
            waker = asyncio.create_task(clock.sleep(5))
            returned_at = await store_call()
            assert not waker.done()
            await waker
    finally:
        if pool is not None:
            pool.shutdown()
    assert seen == [T0, T0]
    assert returned_at == T0
    assert clock.now() == _at(5)


async def test_to_thread_counts_as_work() -> None:
    clock = VirtualClock(T0)
    async with clock.driving():
        sleeper = asyncio.create_task(clock.sleep(1))
        await asyncio.to_thread(time.sleep, 0.2)
        assert clock.now() == T0 and not sleeper.done()
        await sleeper
    assert clock.now() == _at(1)


async def test_time_stands_still_while_callbacks_are_ready() -> None:
    clock = VirtualClock(T0)
    readings: list[datetime] = []

    async def busy() -> None:
        # CPU-bound, yielding to the loop between slices: never idle for 0.3 s.
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            sum(range(2_000))
            readings.append(clock.now())
            await asyncio.sleep(0)

    async with clock.driving():
        sleeper = asyncio.create_task(clock.sleep(0.5))
        await busy()
        assert not sleeper.done()
        await sleeper
    assert len(readings) > 100 and set(readings) == {T0}
    assert clock.now() == _at(0.5)


async def test_a_chain_of_futures_is_busy_too() -> None:
    clock = VirtualClock(T0, idle_iterations=3)
    loop = asyncio.get_running_loop()
    readings = []

    async def ping_pong(n: int) -> None:
        for _ in range(n):
            fut = loop.create_future()
            loop.call_soon(fut.set_result, None)
            await fut
            readings.append(clock.now())

    async with clock.driving():
        sleeper = asyncio.create_task(clock.sleep(1))
        await ping_pong(5_000)
        assert not sleeper.done()
        await sleeper
    assert set(readings) == {T0}


async def test_a_real_timer_holds_time_at_the_clock_time_it_stands_for() -> None:
    # speed 10: a real 0.2 s is 2 clock seconds; the clock may not pass that mark until
    # the timer fires, however idle the loop is while it waits.
    clock = VirtualClock(T0, speed=10)
    fired: list[datetime] = []
    async with clock.driving():
        loop = asyncio.get_running_loop()
        later = asyncio.create_task(clock.sleep(60))
        loop.call_later(0.2, lambda: fired.append(clock.now()))
        await asyncio.sleep(0.3)
        await later
    assert fired == [_at(2)]
    assert clock.now() == _at(60)


async def test_timers_that_bound_a_wait_do_not_hold_time() -> None:
    clock = VirtualClock(T0, speed=1)
    never = asyncio.Event()

    async def bounded_by_timeout() -> None:
        async with asyncio.timeout(5.0):  # a worker's queue.get(timeout=...), a provider's deadline
            await never.wait()

    async with clock.driving():
        inner = asyncio.create_task(never.wait())
        waits = [
            asyncio.create_task(bounded_by_timeout()),
            asyncio.create_task(asyncio.wait_for(never.wait(), 5.0)),
            asyncio.create_task(asyncio.wait([inner], timeout=5.0)),
            inner,
        ]
        await clock.sleep(3600)
        assert not any(w.done() for w in waits), "time moved only once a timeout fired"
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    assert clock.now() == _at(3600)


async def test_max_step_bounds_each_advance() -> None:
    clock = VirtualClock(T0, max_step=10)
    async with clock.driving():
        await clock.sleep(95)
    assert clock.now() == _at(95)
    assert clock.advances == 10


async def test_a_cancelled_sleeper_is_not_woken_and_does_not_stop_time() -> None:
    clock = VirtualClock(T0)
    async with clock.driving():
        doomed = asyncio.create_task(clock.sleep(10))
        await asyncio.sleep(0)
        doomed.cancel()
        await clock.sleep(20)
    assert doomed.cancelled()
    assert clock.now() == _at(20)


async def test_stop_gives_the_loop_its_methods_back() -> None:
    loop = asyncio.get_running_loop()
    clock = VirtualClock(T0)
    async with clock.driving():
        assert "run_in_executor" in vars(loop) and "call_at" in vars(loop)
    assert "run_in_executor" not in vars(loop) and "call_at" not in vars(loop)
    assert await loop.run_in_executor(None, lambda: 7) == 7


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(datetime(2025, 10, 8))
    with pytest.raises(ValueError, match="speed"):
        VirtualClock(T0, speed=0)
    with pytest.raises(ValueError, match="max_step"):
        VirtualClock(T0, max_step=0)
