"""JobQueue on a Redis LIST with a per-consumer processing list (the "reliable queue").

Why a list and not a stream: the external Rate-Limit Coordinator pushes JSON jobs to
the plain list ``market:jobs`` (``RLC_REDIS_JOBS_KEY``) with LPUSH, so MDS must consume
a list anyway; one pattern then serves the live list and the per-tier backfill lists.

Keys, for a queue at ``key``::

    key                          LIST  jobs waiting; producers LPUSH, consumers take the RIGHT end (FIFO)
    key:processing:<consumer>    LIST  jobs a consumer took and has not acked (BLMOVE RIGHT → LEFT)
    key:lease:<consumer>         STR   the consumer's heartbeat, expires after ``visibility_timeout``
    key:consumers                SET   consumers that may hold processing lists
    key:delayed                  ZSET  nacked jobs waiting for their delay (score = due, ms, Redis clock)
    key:dlq (or dlq_key)         LIST  payloads that failed validation, with the reason

At-least-once: taking a job moves it atomically into the consumer's processing list, so
a worker that dies after taking it loses nothing. A live consumer renews its lease every
``visibility_timeout / 3`` seconds; once a consumer's lease has expired (its process
died), any other consumer's ``get`` moves that consumer's processing list back to the
head of the queue. A consumer that starts with a name that still has a processing list
(a restarted worker with a stable ``consumer`` name) moves its own list back at once.
Redis has one queue per key and delivers FIFO within it: tier priority comes from one
queue per tier (``RLC_REDIS_BACKFILL_KEYS__T0/T1/T2``), not from the job's ``priority``.

Hand-written because no maintained asyncio library offers this on a plain list an
outside producer writes to (arq, rq, saq and taskiq each own their wire format).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from mds import constants as keys
from mds.domain.jobs import parse_job
from mds.errors import QueueError
from mds.observability.propagation import stamp
from mds.queue.base import AnyJob, Delivery

log = logging.getLogger(__name__)

#: Failures worth waiting out (server restarting, loading its AOF, network blip).
_TRANSIENT = (redis_errors.ConnectionError, redis_errors.TimeoutError)

# Moves due delayed jobs to the tail of the queue (as a new put would) and returns the
# milliseconds until the next one is due, or -1 when none is waiting. Uses the Redis
# clock so workers with skewed clocks agree.
_PROMOTE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local sep = string.find(member, ':', 1, true)
  redis.call('LPUSH', KEYS[2], string.sub(member, sep + 1))
  redis.call('ZREM', KEYS[1], member)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then return math.max(tonumber(nxt[2]) - now, 0) end
return -1
"""

# Takes the delivery out of the processing list and, only if it was still there (not
# already recovered by another consumer), queues the replacement now or later.
_NACK = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
local delay = tonumber(ARGV[3])
if delay <= 0 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[3], now + delay, ARGV[4] .. ':' .. ARGV[2])
end
return 1
"""

# Pushes a job only while waiting plus delayed jobs stay below the cap. One script, so
# no other producer's push can land between the count and this one.
_PUT_CAPPED = """
if redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('LPUSH', KEYS[1], ARGV[1])
return 1
"""

# The batch form: pushes the longest prefix of ARGV[2..] that keeps waiting plus delayed
# jobs at or below the cap, and returns its length. LPUSH takes them in slices, since
# unpack() of a very long list would overflow Lua's stack.
_PUT_CAPPED_MANY = """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[1]) - redis.call('ZCARD', KEYS[2])
local n = math.max(0, math.min(room, #ARGV - 1))
local i = 2
while i <= n + 1 do
  local j = math.min(i + 999, n + 1)
  redis.call('LPUSH', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
return n
"""

#: Jobs per LPUSH of an uncapped batch, so no single command carries a huge argument list.
_PUSH_SLICE = 1000


def default_consumer_name() -> str:
    """Unique per queue instance: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _payload(job: AnyJob) -> str:
    """A new job's wire form, carrying the trace context it was queued in."""
    return stamp(job).model_dump_json()


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", errors="surrogateescape") if isinstance(raw, bytes) else raw


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "payload"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or str(exc)


class RedisJobQueue:
    """A reliable FIFO JobQueue on the Redis list ``key`` (see the module docstring).

    Args:
        redis: an asyncio client; the queue does not close it (whoever built it does).
        key: the list jobs are pushed to, e.g. ``market:jobs`` or ``market:backfills:T0``.
        dlq_key: where invalid payloads go; default ``<key>:dlq``.
        visibility_timeout: seconds after a consumer's last heartbeat before its
            unacked deliveries are given to others.
        consumer: this consumer's name; give a stable one (e.g. the pod name) to have
            a restarted worker take back its own processing list at once.
        poll_interval: longest single blocking wait; delayed jobs and dead consumers
            are looked at between waits. Keep it below the client's ``socket_timeout``.

    ``receipt`` of a Delivery is the raw payload; ack and nack must be called on the
    queue instance that delivered it.
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        *,
        dlq_key: str | None = None,
        visibility_timeout: float = 60.0,
        consumer: str | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        if visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be positive")
        self.redis = redis
        self.key = key
        self.dlq_key = dlq_key or keys.dlq_key(key)
        self.visibility_timeout = visibility_timeout
        self.consumer = consumer or default_consumer_name()
        self.poll_interval = poll_interval
        self.processing_key = keys.processing_key(key, self.consumer)
        self.delayed_key = keys.delayed_key(key)
        self.consumers_key = keys.consumers_key(key)
        self._lease_key = self._lease(self.consumer)
        self._promote = redis.register_script(_PROMOTE)
        self._nack = redis.register_script(_NACK)
        self._put_capped = redis.register_script(_PUT_CAPPED)
        self._put_capped_many = redis.register_script(_PUT_CAPPED_MANY)
        self._started = False
        self._took_back = False
        self._closed = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._next_recovery = 0.0
        self.dead_lettered = 0  # payloads this instance sent to the DLQ
        self.recovered = 0  # deliveries this instance moved back from dead consumers

    def _lease(self, consumer: str) -> str:
        return keys.lease_key(self.key, consumer)

    def _processing(self, consumer: str) -> str:
        return keys.processing_key(self.key, consumer)

    # JobQueue ----------------------------------------------------------------------
    async def put(self, job: AnyJob) -> None:
        """Append the job as JSON (LPUSH; consumers pop the other end)."""
        try:
            await self.redis.lpush(self.key, _payload(job))
        except _TRANSIENT as exc:
            raise QueueError(f"{self.key}: put failed: {exc}") from exc

    async def put_capped(self, job: AnyJob, cap: int) -> bool:
        """Append the job unless the list and the delayed set together hold ``cap``."""
        try:
            pushed = await self._put_capped(keys=[self.key, self.delayed_key], args=[_payload(job), int(cap)])
        except _TRANSIENT as exc:
            raise QueueError(f"{self.key}: put failed: {exc}") from exc
        return bool(pushed)

    async def put_many(self, jobs: Sequence[AnyJob]) -> None:
        """Append the jobs in order (LPUSH in slices, one transaction, one round trip)."""
        if not jobs:
            return
        payloads = [_payload(job) for job in jobs]
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for i in range(0, len(payloads), _PUSH_SLICE):
                    pipe.lpush(self.key, *payloads[i : i + _PUSH_SLICE])
                await pipe.execute()
        except _TRANSIENT as exc:
            raise QueueError(f"{self.key}: put failed: {exc}") from exc

    async def put_capped_many(self, jobs: Sequence[AnyJob], cap: int) -> int:
        """Append the longest prefix that keeps the list and delayed set within ``cap``."""
        if not jobs:
            return 0
        try:
            pushed = await self._put_capped_many(
                keys=[self.key, self.delayed_key], args=[int(cap), *(_payload(job) for job in jobs)]
            )
        except _TRANSIENT as exc:
            raise QueueError(f"{self.key}: put failed: {exc}") from exc
        return int(pushed)

    async def get(self, timeout: float | None = None) -> Delivery | None:
        """The next valid job, or None after ``timeout`` seconds (also while Redis is down).

        Invalid payloads are moved to the DLQ and skipped. Connection trouble is logged
        and waited out with back-off rather than raised, so a worker loop survives a
        Redis restart and resumes when the server is back.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = 0.05
        while not self._closed:
            remaining = None if deadline is None else deadline - time.monotonic()
            try:
                await self._start()
                until_due_ms = await self._promote(keys=[self.delayed_key, self.key], args=[100])
                await self._maybe_recover()
                block = self.poll_interval
                if remaining is not None:
                    block = min(block, remaining)
                if until_due_ms >= 0:
                    block = min(block, until_due_ms / 1000)
                if block < 0.01:
                    raw = await self.redis.lmove(self.key, self.processing_key, "RIGHT", "LEFT")
                else:
                    # redis-py annotates the timeout as int; the server takes fractional seconds.
                    raw = await self.redis.blmove(self.key, self.processing_key, block, "RIGHT", "LEFT")  # type: ignore[arg-type]
                if raw is not None:
                    delivery = await self._deliver(raw)
                    if delivery is not None:
                        return delivery
                    continue
                backoff = 0.05
            except _TRANSIENT as exc:
                self._started = False  # register again: a restarted server may have forgotten us
                log.warning("queue %s: redis unavailable, retrying: %s", self.key, exc)
                pause = backoff if remaining is None else min(backoff, max(remaining, 0))
                await asyncio.sleep(pause)
                backoff = min(backoff * 2, 2.0)
            if deadline is not None and time.monotonic() >= deadline:
                return None
        return None

    async def ack(self, delivery: Delivery) -> None:
        try:
            await self.redis.lrem(self.processing_key, 1, delivery.receipt)
        except _TRANSIENT as exc:
            # Not acked means delivered again later: at-least-once still holds.
            raise QueueError(f"{self.key}: ack failed: {exc}") from exc

    async def nack(self, delivery: Delivery, *, delay: float = 0.0, job: AnyJob | None = None) -> None:
        payload = job.model_dump_json() if job is not None else delivery.receipt
        try:
            await self._nack(
                keys=[self.processing_key, self.key, self.delayed_key],
                args=[delivery.receipt, payload, int(delay * 1000), uuid.uuid4().hex],
            )
        except _TRANSIENT as exc:
            raise QueueError(f"{self.key}: nack failed: {exc}") from exc

    async def depth(self) -> int:
        """Jobs waiting; delayed and in-flight jobs are not counted (as in memory)."""
        try:
            return int(await self.redis.llen(self.key))
        except _TRANSIENT as exc:
            raise QueueError(f"{self.key}: depth failed: {exc}") from exc

    async def backlog(self) -> int:
        """Jobs waiting plus jobs any consumer nacked with a delay (one snapshot)."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.llen(self.key)
                pipe.zcard(self.delayed_key)
                waiting, delayed = await pipe.execute()
        except _TRANSIENT as exc:
            raise QueueError(f"{self.key}: backlog failed: {exc}") from exc
        return int(waiting) + int(delayed)

    async def close(self) -> None:
        """Stop heartbeating and hand this consumer's unacked deliveries back to the queue."""
        if self._closed:
            return
        self._closed = True
        await self._stop_heartbeat()
        if not self._started:
            return
        try:
            await self._requeue(self.consumer)
            await self.redis.delete(self._lease_key)
            await self.redis.srem(self.consumers_key, self.consumer)
        except _TRANSIENT as exc:
            log.warning("queue %s: close could not requeue (its lease will expire): %s", self.key, exc)

    # Beyond the protocol -------------------------------------------------------------
    async def inflight(self) -> int:
        """Deliveries held by any consumer plus nacked jobs waiting for their delay."""
        consumers = await self.redis.smembers(self.consumers_key)
        total = int(await self.redis.zcard(self.delayed_key))
        for c in consumers:
            total += int(await self.redis.llen(self._processing(_text(c))))
        return total

    async def dlq_entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first: ``{"reason", "raw", "queue", "consumer", "failed_at"}``."""
        raw = await self.redis.lrange(self.dlq_key, 0, limit - 1)
        return [json.loads(r) for r in raw]

    async def recover(self) -> int:
        """Give the deliveries of consumers whose lease expired back to the queue."""
        moved = 0
        for member in await self.redis.smembers(self.consumers_key):
            name = _text(member)
            if name == self.consumer or await self.redis.exists(self._lease(name)):
                continue
            n = await self._requeue(name)
            if n:
                log.warning("queue %s: recovered %d job(s) from dead consumer %s", self.key, n, name)
            moved += n
            await self.redis.srem(self.consumers_key, name)
        self.recovered += moved
        return moved

    async def abandon(self) -> None:
        """Stop heartbeating and keep the unacked deliveries, as a killed process would.

        For tests and drills; a real shutdown calls ``close``.
        """
        self._closed = True
        await self._stop_heartbeat()

    # Internals -----------------------------------------------------------------------
    async def _start(self) -> None:
        if self._started:
            return
        if not self._took_back:
            own = await self._requeue(self.consumer)  # left over from a previous life of this name
            if own:
                log.warning("queue %s: consumer %s took back %d unacked job(s)", self.key, self.consumer, own)
            self._took_back = True
        await self._beat()
        self._started = True
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"lease:{self._lease_key}")

    async def _beat(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self.consumers_key, self.consumer)
            pipe.set(self._lease_key, str(time.time()), px=int(self.visibility_timeout * 1000))
            await pipe.execute()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.visibility_timeout / 3)
            try:
                await self._beat()
            except _TRANSIENT as exc:
                log.warning("queue %s: heartbeat failed: %s", self.key, exc)

    async def _stop_heartbeat(self) -> None:
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _maybe_recover(self) -> None:
        now = time.monotonic()
        if now < self._next_recovery:
            return
        self._next_recovery = now + max(0.1, min(self.visibility_timeout / 4, 5.0))
        await self.recover()

    async def _requeue(self, consumer: str) -> int:
        """Move a processing list back to the head (RIGHT end), oldest delivered first."""
        moved = 0
        src = self._processing(consumer)
        while await self.redis.lmove(src, self.key, "LEFT", "RIGHT") is not None:
            moved += 1
        return moved

    async def _deliver(self, raw: bytes | str) -> Delivery | None:
        text = _text(raw)
        try:
            job = parse_job(raw)
        except ValidationError as exc:
            await self._dead_letter(raw, _reason(exc))
            return None
        return Delivery(job=job, receipt=text)

    async def _dead_letter(self, raw: bytes | str, reason: str) -> None:
        entry = json.dumps(
            {
                "reason": reason,
                "raw": _text(raw).encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace"),
                "queue": self.key,
                "consumer": self.consumer,
                "failed_at": datetime.now(UTC).isoformat(),
            }
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.processing_key, 1, raw)  # type: ignore[arg-type]  # bytes: the exact payload taken
            pipe.lpush(self.dlq_key, entry)
            await pipe.execute()
        self.dead_lettered += 1
        log.warning("queue %s: invalid job sent to %s: %s", self.key, self.dlq_key, reason)


#: The live list an external Rate-Limit Coordinator LPUSHes to is consumed by the same
#: class: ``RedisListConsumer(redis, settings.RLC_REDIS_JOBS_KEY)``. It pops the RIGHT
#: end, so a producer that LPUSHes is served FIFO (an RPUSHing producer would get LIFO).
RedisListConsumer = RedisJobQueue
