"""The in-process Cache: a dict with expiry on the injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mds.domain.clock import Clock


class InMemoryCache:
    """A dict with expiry. Expired entries are dropped when read; ``max_items`` bounds memory."""

    def __init__(self, clock: Clock, max_items: int = 100_000) -> None:
        self._clock = clock
        self._items: dict[str, tuple[datetime, Any]] = {}
        self._max_items = max_items

    async def get(self, key: str) -> Any | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if self._clock.now() >= expires:
            del self._items[key]
            return None
        return value

    async def set(self, key: str, value: Any, *, ttl: float) -> None:
        if len(self._items) >= self._max_items and key not in self._items:
            # Evict the entry closest to expiry rather than grow without bound.
            oldest = min(self._items, key=lambda k: self._items[k][0])
            del self._items[oldest]
        self._items[key] = (self._clock.now() + timedelta(seconds=ttl), value)

    async def add(self, key: str, value: Any, *, ttl: float) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl=ttl)
        return True

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)

    async def close(self) -> None:
        self._items.clear()
