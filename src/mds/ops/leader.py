"""One active scheduler at a time: a Redis lock with expiry, renewed while held.

A second scheduler waits as a standby and takes over within ``ttl`` seconds of the
leader dying. Release and renewal only touch the lock if it is still ours (checked in
Lua, atomically), so a paused leader whose lock expired cannot delete its successor's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from redis.asyncio import Redis

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaderLock:
    def __init__(self, redis: Redis, key: str, *, ttl: float = 15.0, name: str | None = None) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.held = False

    async def try_acquire(self) -> bool:
        self.held = bool(await self.redis.set(self.key, self.name, nx=True, px=self.ttl_ms))
        return self.held

    async def acquire(self) -> None:
        """Wait (as a standby) until this process is the leader."""
        while not await self.try_acquire():  # noqa: ASYNC110 - polling a lock held by another process
            await asyncio.sleep(self.ttl_ms / 3000)
        log.info("scheduler leadership acquired by %s", self.name)

    async def renew(self) -> bool:
        self.held = bool(await self.redis.eval(_RENEW, 1, self.key, self.name, self.ttl_ms))
        return self.held

    async def keep(self) -> None:
        """Renew until leadership is lost; return when it is (the caller stops leading)."""
        while await self.renew():  # noqa: ASYNC110 - renewing on a timer is the point
            await asyncio.sleep(self.ttl_ms / 3000)
        log.warning("scheduler leadership lost by %s", self.name)

    async def release(self) -> None:
        if self.held:
            await self.redis.eval(_RELEASE, 1, self.key, self.name)
            self.held = False
