"""The Cache on Redis: JSON values under ``<prefix><key>``, expiry by ``SET … PX``.

Unlike the in-process cache, expiry runs on the Redis server's clock, not the injected
``Clock``: cached provider responses are about wall time, and several processes share
them. Values come back as JSON gives them (tuples as lists, no datetimes).
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from mds.constants import CACHE_PREFIX


class RedisCache:
    """Shared cache for provider responses; the client is not closed by the cache."""

    def __init__(self, redis: Redis, *, prefix: str = CACHE_PREFIX) -> None:
        self.redis = redis
        self.prefix = prefix

    async def get(self, key: str) -> Any | None:
        raw = await self.redis.get(self.prefix + key)
        return None if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any, *, ttl: float) -> None:
        # PX takes whole milliseconds and refuses 0; anything shorter is "already gone".
        ms = int(ttl * 1000)
        if ms <= 0:
            await self.delete(key)
            return
        await self.redis.set(self.prefix + key, json.dumps(value), px=ms)

    async def add(self, key: str, value: Any, *, ttl: float) -> bool:
        ms = int(ttl * 1000)
        if ms <= 0:
            return False
        return bool(await self.redis.set(self.prefix + key, json.dumps(value), px=ms, nx=True))

    async def delete(self, key: str) -> None:
        await self.redis.delete(self.prefix + key)

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever built it."""
