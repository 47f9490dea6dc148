"""The Cache protocol: short-lived values under string keys, TTL in seconds."""

from __future__ import annotations

from typing import Any, Protocol


class Cache(Protocol):
    async def get(self, key: str) -> Any | None: ...

    async def set(self, key: str, value: Any, *, ttl: float) -> None: ...

    async def add(self, key: str, value: Any, *, ttl: float) -> bool:
        """Set only if ``key`` holds nothing (atomically); True if this call set it."""
        ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...
