"""A polling loop stops on a cancel even when an await inside it swallowed the CancelledError."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from mds.aio import honour_cancel


async def _swallowing_wait() -> None:
    # What a client library that eats a cancel looks like from the caller's side.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(0.05)


async def _loop(turns: list[int], *, honour: bool, stop: asyncio.Event | None = None) -> None:
    while stop is None or not stop.is_set():
        await _swallowing_wait()
        turns.append(1)
        if honour:
            honour_cancel()


async def test_a_swallowed_cancel_stops_the_loop_on_its_next_turn() -> None:
    turns: list[int] = []
    task = asyncio.create_task(_loop(turns, honour=True))
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1.0)
    assert task.cancelled()


async def test_without_it_the_loop_runs_on_under_a_pending_cancel() -> None:
    turns: list[int] = []
    stop = asyncio.Event()
    task = asyncio.create_task(_loop(turns, honour=False, stop=stop))
    await asyncio.sleep(0.12)
    task.cancel()
    await asyncio.sleep(0.3)
    assert not task.done() and task.cancelling() == 1  # the hang honour_cancel prevents
    before = len(turns)
    await asyncio.sleep(0.2)
    assert len(turns) > before
    stop.set()
    await asyncio.wait_for(asyncio.shield(task), timeout=1.0)
