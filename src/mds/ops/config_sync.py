"""A reload reaches every process, and every process says which configuration it runs.

The process that receives ``POST /ops/reload`` validates and applies the configuration,
stores its version tag and announces the tag on the bus. The message carries the tag
only, never settings (no secret crosses Redis): every other process (API replicas,
workers, the scheduler) re-reads its own environment and env file, validates and applies
them under that tag, or logs why not and keeps its last good configuration.

Each process publishes ``(roles, policy_version)`` by heartbeat, so ``/health`` can list
the version every role runs. Pub/sub is fire-and-forget: a process that missed the
announcement (it was starting, or Redis blinked) finds the stored tag on its next
heartbeat and catches up. Embedded (in-process bus) there is one process, which applied
the reload when it received it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import RedisError

from mds.errors import ConfigError
from mds.stream.base import Bus, Subscription

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

#: Wall seconds between heartbeats, and after which a silent process is no longer listed.
HEARTBEAT_SECONDS = 10.0
PRESENCE_TTL_SECONDS = 3 * HEARTBEAT_SECONDS


@dataclass(frozen=True)
class ProcessVersion:
    """One live process: what it runs and the configuration version it applied."""

    process: str
    roles: tuple[str, ...]
    policy_version: str
    seen_at: float  # wall-clock epoch seconds of its last heartbeat

    def as_json(self) -> dict[str, Any]:
        return {"roles": list(self.roles), "policy_version": self.policy_version, "seen_at": self.seen_at}


class Presence(Protocol):
    """Where processes publish their version and the last announced version is stored."""

    async def beat(self, entry: ProcessVersion) -> None: ...

    async def leave(self, process: str) -> None: ...

    async def live(self, now: float) -> list[ProcessVersion]: ...

    async def store_version(self, version: str) -> None: ...

    async def stored_version(self) -> str | None: ...


class MemoryPresence:
    """The embedded deployment's: one process, kept in memory."""

    def __init__(self) -> None:
        self._entries: dict[str, ProcessVersion] = {}
        self._version: str | None = None

    async def beat(self, entry: ProcessVersion) -> None:
        self._entries[entry.process] = entry

    async def leave(self, process: str) -> None:
        self._entries.pop(process, None)

    async def live(self, now: float) -> list[ProcessVersion]:
        return sorted(self._entries.values(), key=lambda e: e.process)

    async def store_version(self, version: str) -> None:
        self._version = version

    async def stored_version(self) -> str | None:
        return self._version


#: HDEL each field (ARGV odd) only if it still holds the value read (ARGV even): a process
#: that beat between the read and the delete keeps its fresh entry.
_DROP_UNCHANGED = """
local dropped = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    dropped = dropped + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return dropped
"""


class RedisPresence:
    """A hash of process -> JSON entry, and a string holding the last announced version.

    Hash fields cannot expire one by one (before Redis 7.4), so readers skip entries older
    than ``ttl`` (a process that died without leaving) and delete them; the whole hash
    expires when every process is gone.
    """

    def __init__(self, redis: Redis, *, processes_key: str, version_key: str, ttl: float) -> None:
        self._redis = redis
        self._processes = processes_key
        self._version = version_key
        self._ttl = ttl

    async def beat(self, entry: ProcessVersion) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._processes, entry.process, json.dumps(entry.as_json()))
            pipe.expire(self._processes, int(self._ttl) + 1)
            await pipe.execute()

    async def leave(self, process: str) -> None:
        await self._redis.hdel(self._processes, process)

    async def live(self, now: float) -> list[ProcessVersion]:
        raw = await self._redis.hgetall(self._processes)
        out: list[ProcessVersion] = []
        stale: dict[bytes | str, bytes | str] = {}
        for field, value in raw.items():
            try:
                body = json.loads(value)
                entry = ProcessVersion(
                    process=field.decode() if isinstance(field, bytes) else field,
                    roles=tuple(body["roles"]),
                    policy_version=str(body["policy_version"]),
                    seen_at=float(body["seen_at"]),
                )
            except (ValueError, KeyError, TypeError):
                stale[field] = value
                continue
            if now - entry.seen_at > self._ttl:
                stale[field] = value
            else:
                out.append(entry)
        if stale:
            await self.forget(stale)
        return sorted(out, key=lambda e: e.process)

    async def forget(self, entries: Mapping[bytes | str, bytes | str]) -> int:
        """Delete these fields where they still hold these values; returns how many went."""
        args = [part for item in entries.items() for part in item]
        dropped = await self._redis.eval(_DROP_UNCHANGED, 1, self._processes, *args)
        return int(dropped)

    async def store_version(self, version: str) -> None:
        await self._redis.set(self._version, version)

    async def stored_version(self) -> str | None:
        value = await self._redis.get(self._version)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)


class ConfigSync:
    """Announces this process's reloads and applies the others'; publishes its version.

    Args:
        bus: where versions are announced (Redis pub/sub scaled out, in-process embedded).
        presence: where versions are stored and each process's is published.
        topic: the bus topic (``mds.constants.config_topic``).
        process: this process's id (its consumer name).
        roles: what this process runs (api, worker, scheduler).
        current: the version this process runs now.
        apply: re-read, validate and apply this process's configuration under a version;
            raises ConfigError when it is invalid here.
    """

    def __init__(
        self,
        *,
        bus: Bus,
        presence: Presence,
        topic: str,
        process: str,
        roles: frozenset[str],
        current: Callable[[], str],
        apply: Callable[[str], Awaitable[object]],
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.presence = presence
        self.process = process
        self._bus = bus
        self._topic = topic
        self._roles = tuple(sorted(roles))
        self._current = current
        self._apply = apply
        self._heartbeat_seconds = heartbeat_seconds
        self._wall = wall
        self._lock = asyncio.Lock()
        #: The last version tried here, applied or refused: a version invalid in this
        #: process is not tried again at every heartbeat.
        self._tried: str | None = None
        self._sub: Subscription | None = None
        #: Marks this instance's own announcements: process names may repeat (a restarted
        #: worker keeps its --name; tests run two runtimes in one process).
        self._origin = uuid.uuid4().hex
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Listen for announcements, catch up with the stored version, publish this process."""
        self._sub = await self._bus.subscribe(self._topic, buffer=16)
        await self.catch_up()
        await self.beat()
        self._tasks = [
            asyncio.create_task(self._listen(self._sub), name="config-sync-listen"),
            asyncio.create_task(self._heartbeat(), name="config-sync-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._sub is not None:
            await self._sub.close()
            self._sub = None
        with contextlib.suppress(RedisError, OSError):
            await self.presence.leave(self.process)

    async def announce(self, version: str) -> int:
        """This process applied ``version``: store it, tell the others, publish it.

        Returns how many subscriptions the bus delivered it to (this process's own included).
        """
        self._tried = version
        await self.presence.store_version(version)
        receivers = await self._bus.publish(self._topic, {"policy_version": version, "origin": self._origin})
        await self.beat()
        return receivers

    async def beat(self) -> None:
        await self.presence.beat(
            ProcessVersion(self.process, self._roles, self._current(), round(self._wall(), 3))
        )

    async def live(self) -> list[ProcessVersion]:
        """The processes that sent a heartbeat lately, this one included."""
        return await self.presence.live(self._wall())

    async def roll_call(self) -> dict[str, Any]:
        """For /health: each live process's roles and version, and the versions per role.

        This process is listed as it is now, whatever its last heartbeat said; when the
        presence store cannot answer, it is the only one listed.
        """
        try:
            others = [p for p in await self.live() if p.process != self.process]
        except (RedisError, OSError) as exc:
            log.warning("config sync: process versions unreadable: %s", exc)
            others = []
        me = ProcessVersion(self.process, self._roles, self._current(), round(self._wall(), 3))
        processes = sorted([me, *others], key=lambda p: p.process)
        by_role: dict[str, set[str]] = {}
        for p in processes:
            for role in p.roles:
                by_role.setdefault(role, set()).add(p.policy_version)
        return {
            "processes": [
                {
                    "process": p.process,
                    "roles": list(p.roles),
                    "policy_version": p.policy_version,
                    "seen_at": datetime.fromtimestamp(p.seen_at, UTC).isoformat(),
                }
                for p in processes
            ],
            "policy_versions": {role: sorted(v) for role, v in sorted(by_role.items())},
        }

    async def _adopt(self, version: str) -> None:
        async with self._lock:
            if version in (self._current(), self._tried):
                return
            self._tried = version
            try:
                await self._apply(version)
            except ConfigError as exc:
                # Only the setting's name and the validation message: never a value.
                log.error(
                    "configuration %s announced by another process is invalid here (%s: %s); keeping %s",
                    version,
                    exc.setting,
                    exc.message,
                    self._current(),
                )
        await self.beat()

    async def catch_up(self) -> None:
        stored = await self.presence.stored_version()
        if stored is not None:
            await self._adopt(stored)

    async def _listen(self, sub: Subscription) -> None:
        async for event in sub:
            if event.get("origin") == self._origin or "policy_version" not in event:
                continue
            try:
                await self._adopt(str(event["policy_version"]))
            except Exception:
                # One failed apply (Redis gone while publishing, a bug) must not end the
                # listener: this process would silently stop following reloads.
                log.exception("config sync: applying %s failed", event["policy_version"])

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            try:
                await self.catch_up()
                await self.beat()
            except (RedisError, OSError) as exc:
                log.warning("config sync: heartbeat failed, retrying: %s", exc)
