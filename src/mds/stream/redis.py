"""The Bus over Redis pub/sub, so every API process sees the events any worker publishes.

A topic ``bars:AAPL:1m`` is the channel ``<prefix>bars:AAPL:1m``; ``*`` is a PSUBSCRIBE
to ``<prefix>*``. Each subscription has its own pub/sub connection (so ``publish``
counts subscriptions exactly as the in-process bus does) and a reader task that fills
a bounded buffer, dropping the oldest event when the consumer lags. A WebSocket hub
should therefore hold one subscription per process and fan out locally, not one per
client. Pub/sub is fire-and-forget: events published while a subscriber is
disconnected (a Redis restart) are not replayed; the subscription reconnects itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from mds.constants import BUS_PREFIX

log = logging.getLogger(__name__)

_TRANSIENT = (redis_errors.ConnectionError, redis_errors.TimeoutError)


class RedisSubscription:
    """One topic (or ``*``) read into a bounded buffer; ``dropped`` counts lost events."""

    def __init__(self, bus: RedisBus, pubsub: PubSub, channel: str, pattern: bool, buffer: int) -> None:
        self._bus = bus
        self._pubsub = pubsub
        self._channel = channel
        self._pattern = pattern
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=buffer)
        self.dropped = 0
        self._closed = False
        self._reader: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        if self._pattern:
            await self._pubsub.psubscribe(self._channel)
        else:
            await self._pubsub.subscribe(self._channel)
        # Wait for the server's confirmation so an event published right after
        # subscribe() returns is not missed.
        while True:
            msg = await self._pubsub.get_message(timeout=5.0)
            if msg is None:
                raise redis_errors.TimeoutError(f"no confirmation for subscribe {self._channel}")
            if msg["type"] in ("subscribe", "psubscribe"):
                break
        self._reader = asyncio.create_task(self._read(), name=f"bus:{self._channel}")

    def offer(self, event: dict[str, Any]) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def _read(self) -> None:
        backoff = 0.05
        while not self._closed:
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                backoff = 0.05
            except _TRANSIENT as exc:
                # redis-py re-subscribes on reconnect; events sent meanwhile are gone.
                log.warning("bus %s: redis unavailable, reconnecting: %s", self._channel, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if msg is None or msg["type"] not in ("message", "pmessage"):
                continue
            try:
                event = json.loads(msg["data"])
            except ValueError:
                log.warning("bus %s: dropped an event that is not JSON", self._channel)
                continue
            self.offer(event)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            yield event

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._remove(self)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(*_TRANSIENT):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(None)


class RedisBus:
    """Bus on Redis pub/sub; the client is not closed by the bus (whoever built it does)."""

    def __init__(self, redis: Redis, *, prefix: str = BUS_PREFIX) -> None:
        self.redis = redis
        self.prefix = prefix
        self._subs: set[RedisSubscription] = set()

    async def publish(self, topic: str, event: dict[str, Any]) -> int:
        """Publish as JSON; returns the receiver count Redis reports (all processes)."""
        return int(await self.redis.publish(self.prefix + topic, json.dumps(event)))

    async def subscribe(self, topic: str, *, buffer: int = 1000) -> RedisSubscription:
        pattern = topic == "*"
        channel = f"{self.prefix}*" if pattern else self.prefix + topic
        sub = RedisSubscription(self, self.redis.pubsub(), channel, pattern, buffer)
        await sub._start()
        self._subs.add(sub)
        return sub

    def _remove(self, sub: RedisSubscription) -> None:
        self._subs.discard(sub)

    async def close(self) -> None:
        for sub in list(self._subs):
            await sub.close()
