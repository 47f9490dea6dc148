"""Client-side rate limits per provider, on the `limits` library.

`limits` keeps its windows in a pluggable storage: in memory for the embedded default,
in Redis (``redis://…`` or ``async+redis://…``) when several workers must share one
vendor budget. For Redis, `limits` is told to use the ``redis`` package's asyncio client
(``implementation="redispy"``), which MDS already depends on, instead of its default,
``coredis``. ``acquire`` waits for a free slot rather than failing, so a configured limit
is never exceeded however many callers (or worker processes on one Redis) there are.

Live work keeps a share of every budget (``LIVE_RESERVED_RATE_SHARE``): a backfill call
must also fit under the same limits scaled by ``1 - share`` on a key of its own, so a
backlog however deep leaves the reserved share of each window to the sweeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from mds.constants import RATE_LIMIT_PREFIX
from mds.domain import work


class RateLimiter:
    """Waits for a free slot under every limit of a key; windows live in ``storage_uri``.

    Args:
        storage_uri: a `limits` storage URI: ``memory://`` (this process) or ``redis://…``.
        key_prefix: Redis key prefix of the windows; limiters on one server with one
            prefix share their budgets. Ignored by other storages.
        live_reserved_share: the share (0 <= s < 1) of every limit that backfill calls
            (``mds.domain.work``) may not use.
    """

    def __init__(
        self,
        storage_uri: str = "memory://",
        *,
        key_prefix: str = RATE_LIMIT_PREFIX,
        live_reserved_share: float = 0.0,
    ) -> None:
        if not 0.0 <= live_reserved_share < 1.0:
            raise ValueError(f"live_reserved_share must be in [0, 1) (got {live_reserved_share})")
        self.live_reserved_share = live_reserved_share
        # The async flavour of a storage is selected by the "async+" scheme prefix.
        uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
        options: dict[str, str] = {}
        if uri.startswith(("async+redis:", "async+rediss:", "async+redis+")):
            options = {"implementation": "redispy", "key_prefix": key_prefix}
        self._storage: Storage = storage_from_string(uri, **options)  # type: ignore[assignment]
        self._limiter = MovingWindowRateLimiter(self._storage)
        self.waits = 0  # how often a caller had to wait (for tests and /stats)

    async def acquire(self, key: str, limits: Sequence[RateLimitItem]) -> None:
        """Wait until one call is allowed under every limit in ``limits``, and take it.

        A backfill call also needs a slot under the backfill share of each limit.
        """
        if not limits:
            return
        if work.is_backfill() and self.live_reserved_share > 0:
            await self._take(f"{key}:backfill", backfill_share(limits, self.live_reserved_share))
        await self._take(key, limits)

    async def _take(self, key: str, limits: Sequence[RateLimitItem]) -> None:
        while True:
            if all([await self._limiter.test(item, key) for item in limits]):
                # test() then hit() can race between coroutines; hit() is the real gate.
                taken = []
                for item in limits:
                    if await self._limiter.hit(item, key):
                        taken.append(item)
                    else:
                        break
                if len(taken) == len(limits):
                    return
            self.waits += 1
            await asyncio.sleep(await self._wait_seconds(key, limits))

    async def _wait_seconds(self, key: str, limits: Sequence[RateLimitItem]) -> float:
        waits = []
        for item in limits:
            stats = await self._limiter.get_window_stats(item, key)
            if stats.remaining <= 0:
                waits.append(stats.reset_time - time.time())
        return min(max(min(waits, default=0.05), 0.01), 60.0)

    async def reset(self) -> None:
        """Forget every window (with Redis: every window under this limiter's prefix)."""
        await self._storage.reset()

    async def aclose(self) -> None:
        """Release the Redis connections `limits` opened (a memory storage has none)."""
        bridge = getattr(self._storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()


def backfill_share(limits: Sequence[RateLimitItem], reserved: float) -> list[RateLimitItem]:
    """``limits`` scaled to what backfills may use: ``floor(amount * (1 - reserved))``, at least 1."""
    return [
        type(item)(max(1, int(item.amount * (1.0 - reserved))), item.multiples, item.namespace)
        for item in limits
    ]


def parse_limits(specs: Sequence[str]) -> list[RateLimitItem]:
    """``["5/minute", "25/day"]`` → limit items."""
    return [parse(s) for s in specs]
