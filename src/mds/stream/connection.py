"""One WebSocket client: what it watches and a bounded queue of what it has yet to receive.

The hub never waits for a client: it puts messages in the client's queue and one sender
task per client writes them to the socket. When a slow client's queue holds
``WS_CLIENT_QUEUE_MAX`` stream messages the oldest is dropped, counted, and announced
before the next message the client gets (a ``dropped`` message with the offsets it
lost). Control messages (snapshot, reset, resumed, error) are never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from mds.observability.metrics import Metrics

log = logging.getLogger(__name__)

#: Close code for a client that stays behind: 1013 "try again later".
TRY_AGAIN_LATER = 1013
#: How long a close waits for the socket: a slow client is closed behind what it has yet to
#: read, so it sees the close code once it reads again; a dead one is reaped by pings.
CLOSE_TIMEOUT_S = 30.0

_ids = itertools.count(1)


class Transport(Protocol):
    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(eq=False)
class Watch:
    """A client's subscription to one symbol and how far it has got in the symbol's stream."""

    channels: frozenset[str]
    interval: str
    offset: int = 0
    epoch: str = ""
    #: While a snapshot or replay is being read, live entries wait here (None: live).
    pending: list[tuple[Any, float | None]] | None = field(default_factory=list)
    #: Bar/quote contents the last snapshot held, kept while the watch lives: a bar read from
    #: the store for the snapshot may have its log entry appended (and arrive) well after.
    seen: set[tuple[Any, ...]] = field(default_factory=set)
    #: The adjustment of the snapshot's bars (raw, split, all).
    adjust: str = "raw"


@dataclass(slots=True)
class _Outgoing:
    text: str
    kind: str
    symbol: str | None = None
    offset: int | None = None  # set for stream messages, the droppable ones
    epoch: str | None = None
    written_at: float | None = None


@dataclass(slots=True)
class _Lost:
    epoch: str
    first: int
    last: int
    count: int = 0


class Connection:
    def __init__(
        self,
        transport: Transport,
        *,
        queue_max: int,
        metrics: Metrics,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = next(_ids)
        self.transport = transport
        self.queue_max = queue_max
        self.metrics = metrics
        self.watches: dict[str, Watch] = {}
        self.behind_since: float | None = None
        self.closed = False
        self.dropped = 0
        self._wall = wall
        self._monotonic = monotonic
        self._queue: deque[_Outgoing] = deque()
        self._streamed = 0  # stream messages in the queue
        self._lost: dict[str, _Lost] = {}
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._inflight: _Outgoing | None = None  # taken from the queue, not yet on the socket
        self._notice: tuple[str, _Lost] | None = None  # a `dropped` notice on its way
        self.tasks: set[asyncio.Task[None]] = set()

    # Queueing (never blocks) -----------------------------------------------------------
    def control(self, message: dict[str, Any]) -> None:
        self._push(_Outgoing(orjson.dumps(message).decode(), str(message["type"])))

    def stream(
        self, symbol: str, offset: int, epoch: str, text: str, kind: str, written_at: float | None
    ) -> None:
        """Queue a bar or quote message; a full queue loses its oldest stream message."""
        if self._streamed >= self.queue_max:
            self._drop_oldest()
        self._streamed += 1
        self._push(_Outgoing(text, kind, symbol, offset, epoch, written_at))

    def _push(self, item: _Outgoing) -> None:
        if self.closed:
            return
        self._queue.append(item)
        self._wake.set()

    def _drop_oldest(self) -> None:
        for i, item in enumerate(self._queue):
            if item.offset is not None:
                del self._queue[i]
                self._streamed -= 1
                self._note_lost(item)
                break
        self.metrics.ws_dropped_messages_total.labels(reason="client_queue_full").inc()
        self.dropped += 1
        if self.behind_since is None:
            self.behind_since = self._monotonic()

    def _note_lost(self, item: _Outgoing) -> None:
        assert item.symbol is not None and item.offset is not None and item.epoch is not None
        lost = self._lost.get(item.symbol)
        if lost is None or lost.epoch != item.epoch:
            lost = self._lost[item.symbol] = _Lost(item.epoch, item.offset, item.offset)
        lost.first, lost.last = min(lost.first, item.offset), max(lost.last, item.offset)
        lost.count += 1

    # Sending ---------------------------------------------------------------------------
    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name=f"ws-send-{self.id}")

    async def _send_loop(self) -> None:
        try:
            await self._send_all()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the peer went; the receive side ends the connection
            log.debug("stream client %d: send failed: %r", self.id, exc)

    async def _send_all(self) -> None:
        while not self.closed:
            if self._lost:
                symbol = next(iter(self._lost))
                gap = self._notice = (symbol, self._lost.pop(symbol))
                await self._send(_Outgoing(orjson.dumps(_dropped(*gap)).decode(), "dropped"))
                self._notice = None
                continue
            if not self._queue:
                self.behind_since = None  # caught up
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._inflight = self._queue.popleft()
            if item.offset is not None:
                self._streamed -= 1
            await self._send(item)
            self._inflight = None

    async def _send(self, item: _Outgoing) -> None:
        await self.transport.send_text(item.text)
        self.metrics.ws_messages_sent_total.labels(type=item.kind).inc()
        if item.written_at is not None:
            self.metrics.ws_publish_latency_ms.observe(max(0.0, (self._wall() - item.written_at) * 1000))

    def too_slow(self, limit_s: float) -> bool:
        return self.behind_since is not None and self._monotonic() - self.behind_since > limit_s

    async def close(
        self, code: int | None = None, reason: str = "", *, timeout: float = CLOSE_TIMEOUT_S
    ) -> None:
        """Stop sending; with ``code``, also tell the client what it lost and close the socket
        (bounded by ``timeout``: the peer may not be reading)."""
        if self.closed:
            return
        self.closed = True
        for task in (self._sender, *self.tasks):
            if task is not None:
                task.cancel()
        for task in (self._sender, *self.tasks):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._notice is not None:  # never reached the client: fold it into what is told now
            symbol, gap = self._notice
            kept = self._lost.get(symbol)
            if kept is not None and kept.epoch == gap.epoch:
                gap.first, gap.last, gap.count = (
                    min(gap.first, kept.first),
                    max(gap.last, kept.last),
                    gap.count + kept.count,
                )
            self._lost[symbol] = gap
        unsent = [i for i in (self._inflight, *self._queue) if i is not None and i.offset is not None]
        if unsent:
            self.metrics.ws_dropped_messages_total.labels(reason="slow_client").inc(len(unsent))
        for item in unsent:
            self._note_lost(item)
        self._queue.clear()
        if code is None:
            return
        lost, self._lost = self._lost, {}

        async def farewell() -> None:
            for symbol, gap in lost.items():  # so it can resume from before what it lost
                await self.transport.send_text(orjson.dumps(_dropped(symbol, gap)).decode())
            await self.transport.close(code, reason)

        with contextlib.suppress(Exception):
            await asyncio.wait_for(farewell(), timeout)

    def spawn(self, coro: Any, name: str) -> None:
        """Run ``coro`` for this client; it is cancelled when the client goes."""
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stream client %d: %s failed", self.id, task.get_name(), exc_info=task.exception())


def _dropped(symbol: str, gap: _Lost) -> dict[str, Any]:
    return {
        "type": "dropped",
        "symbol": symbol,
        "offset": gap.last,
        "epoch": gap.epoch,
        "from_offset": gap.first,
        "to_offset": gap.last,
        "count": gap.count,
        "reason": "client_queue_full",
        "detail": "this connection fell behind; read the missed offsets from /ws/replay or resume with since",
    }
