"""Serialised bar responses, reused until the series they were read from changes.

A closed range of bars (its end is in the past) is read far more often than it changes,
and building the response (read, roll up, serialise 390 bars) is most of a request's
cost. So the bytes are kept, keyed by the request and by the series' *generation*: a
token that every write which changes the series replaces, after its commit, in the
shared :class:`~mds.cache.Cache` (Redis when processes share one). A reader takes the
generation before it reads the store, so whatever it caches is filed under a generation
at least as old as the data; a write after that read moves the series to a new token,
and the old entry is never served again. No reader is ever handed a bar that a committed
write has since changed.

Hand-written: the generations live in the shared cache and the bytes in each process (a
Redis round trip per request is cheap; moving 60 kB per request through Redis is not).
A series with no generation yet (never written since the cache started, or Redis was
restarted and lost them) gets a fresh random one set only-if-absent, so entries made
under a lost generation can never match again.

The bytes also expire after ``ttl_seconds`` of wall time. That only bounds how long a
write that bypasses MDS's ingest (another tool writing the database) can go unseen.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Hashable

from mds.cache import Cache
from mds.constants import series_generation_key
from mds.domain.models import Interval

# Generations must outlive every entry filed under them; ten years is "forever" for both
# the clock-driven in-memory cache and Redis' PX.
_GENERATION_TTL = 10 * 365 * 86400.0


def _generation_key(symbol: str, interval: Interval) -> str:
    return series_generation_key(symbol, interval.value)


class SeriesGenerations:
    """The current generation token of each (symbol, stored interval) series."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    async def current(self, symbol: str, interval: Interval) -> str:
        key = _generation_key(symbol, interval)
        token = await self.cache.get(key)
        if token is None:
            fresh = uuid.uuid4().hex
            if await self.cache.add(key, fresh, ttl=_GENERATION_TTL):
                return fresh
            token = await self.cache.get(key)
        return str(token)

    async def bump(self, symbol: str, interval: Interval) -> None:
        """Call after a write that changed the series has committed."""
        await self.cache.set(_generation_key(symbol, interval), uuid.uuid4().hex, ttl=_GENERATION_TTL)


class ResponseBytes:
    """A size-bounded LRU of serialised responses, in this process."""

    def __init__(self, *, max_bytes: int, ttl_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self.size = 0
        self._items: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, body = item
        if time.monotonic() >= expires:
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        self._drop(key)
        self._items[key] = (time.monotonic() + self.ttl_seconds, body)
        self.size += len(body)
        while self.size > self.max_bytes:
            oldest = next(iter(self._items))
            self._drop(oldest)

    def _drop(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.size -= len(item[1])

    def __len__(self) -> int:
        return len(self._items)
