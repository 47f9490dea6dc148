"""The Bus protocol: fan-out of bar and quote events to subscribers (WebSocket clients).

Publishers never wait for slow subscribers: each subscription has a bounded buffer,
and when it is full the oldest event is dropped and counted (WebSocket backpressure).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


class Subscription(Protocol):
    dropped: int

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def close(self) -> None: ...


class Bus(Protocol):
    async def publish(self, topic: str, event: dict[str, Any]) -> int:
        """Deliver ``event`` to the topic's subscribers; return how many got it."""
        ...

    async def subscribe(self, topic: str, *, buffer: int = 1000) -> Subscription: ...

    async def close(self) -> None: ...
