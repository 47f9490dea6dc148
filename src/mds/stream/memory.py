"""The in-process Bus: per-subscription bounded asyncio queues, oldest event dropped when full."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


class _LocalSubscription:
    def __init__(self, bus: InMemoryBus, topic: str, buffer: int) -> None:
        self._bus = bus
        self.topic = topic
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=buffer)
        self.dropped = 0

    def offer(self, event: dict[str, Any]) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            yield event

    async def close(self) -> None:
        self._bus._remove(self)
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class InMemoryBus:
    """Topics are plain strings such as ``bars:AAPL:1m``; ``*`` subscribes to every topic."""

    def __init__(self) -> None:
        self._subs: dict[str, list[_LocalSubscription]] = {}

    async def publish(self, topic: str, event: dict[str, Any]) -> int:
        targets = self._subs.get(topic, []) + self._subs.get("*", [])
        for sub in targets:
            sub.offer(event)
        return len(targets)

    async def subscribe(self, topic: str, *, buffer: int = 1000) -> _LocalSubscription:
        sub = _LocalSubscription(self, topic, buffer)
        self._subs.setdefault(topic, []).append(sub)
        return sub

    def _remove(self, sub: _LocalSubscription) -> None:
        subs = self._subs.get(sub.topic, [])
        if sub in subs:
            subs.remove(sub)

    async def close(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.close()
        self._subs.clear()
