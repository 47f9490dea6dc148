"""Injected time. Everything that asks "what time is it" asks a Clock.

``SimulatedClock`` runs from a chosen start at a speed factor, so a trading
session can be replayed at 60x in a test or a demo; ``ManualClock`` only moves
when a test tells it to.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


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
