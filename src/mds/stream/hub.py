"""The WebSocket hub: one per API process, between the Bus and the process's clients.

It holds one Bus subscription (every symbol's entries) and, per watched symbol, the
``(epoch, offset)`` it has delivered up to. Entries reach clients in offset order, each
once: an old offset is ignored, a jump is refilled from the replay log, and a new epoch
(the log's history was lost) sends every watcher of the symbol ``reset`` and a fresh
snapshot. A client joins with a snapshot, or resumes from a cursor with exactly what it
missed; live entries that arrive meanwhile wait in its watch and follow without a gap or
a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from limits import parse as parse_rate
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from mds.constants import STREAM_TOPIC
from mds.observability.metrics import Metrics
from mds.stream.base import Bus, Subscription
from mds.stream.connection import TRY_AGAIN_LATER, Connection, Transport, Watch
from mds.stream.log import Entry, StreamLog
from mds.stream.messages import channel_of, content_key, error_message
from mds.stream.protocol import Cursor, ProtocolError, Subscribe, Unsubscribe, parse
from mds.stream.publisher import open_envelope

log = logging.getLogger(__name__)

#: The hub's Bus buffer: entries waiting for the hub itself (one task), not for clients.
BUS_BUFFER = 100_000


class SnapshotSource(Protocol):
    async def take(
        self, symbol: str, interval: str, channels: frozenset[str], adjust: str = "raw"
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class HubLimits:
    queue_max: int
    slow_client_s: float
    subscribe_limit: str
    max_symbols: int


@dataclass(eq=False)
class _Feed:
    epoch: str
    offset: int
    watchers: set[Connection] = field(default_factory=set)


class Hub:
    def __init__(
        self,
        *,
        log: StreamLog,
        bus: Bus,
        snapshots: SnapshotSource,
        metrics: Metrics,
        limits: HubLimits,
        known_symbol: Callable[[str], Awaitable[bool]],
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.bus = bus
        self.snapshots = snapshots
        self.metrics = metrics
        self.limits = limits
        self.known_symbol = known_symbol
        self._wall = wall
        self._monotonic = monotonic
        self._feeds: dict[str, _Feed] = {}
        self._clients: set[Connection] = set()
        self._sub: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._rate = MovingWindowRateLimiter(MemoryStorage())
        self._slow_closed = 0
        self._closing: set[asyncio.Task[None]] = set()

    # Lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._sub = await self.bus.subscribe(STREAM_TOPIC, buffer=BUS_BUFFER)
        self._tasks = [
            asyncio.create_task(self._read(self._sub), name="ws-hub-read"),
            asyncio.create_task(self._watch_slow_clients(), name="ws-hub-slow"),
        ]

    async def stop(self) -> None:
        await asyncio.gather(
            *(c.close(1001, "server shutting down", timeout=1.0) for c in list(self._clients))
        )
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sub is not None:
            await self._sub.close()
            self._sub = None

    def configure(self, limits: HubLimits) -> None:
        """Adopt reloaded limits; queues already full keep what they hold."""
        self.limits = limits
        for client in self._clients:
            client.queue_max = limits.queue_max

    def state(self) -> dict[str, Any]:
        return {
            "status": "ok" if self._sub is not None and all(not t.done() for t in self._tasks) else "stopped",
            "clients": len(self._clients),
            "symbols": len(self._feeds),
            "bus_dropped": self._sub.dropped if self._sub is not None else 0,
            "slow_clients_closed": self._slow_closed,
        }

    def watched(self, prefix: str = "") -> list[str]:
        """The streams (symbols) some client of this process watches, those starting with ``prefix``."""
        return sorted(s for s in self._feeds if s.startswith(prefix))

    # Clients --------------------------------------------------------------------------
    @asynccontextmanager
    async def connect(self, transport: Transport) -> AsyncIterator[Connection]:
        conn = Connection(
            transport,
            queue_max=self.limits.queue_max,
            metrics=self.metrics,
            wall=self._wall,
            monotonic=self._monotonic,
        )
        conn.start()
        self._clients.add(conn)
        self.metrics.ws_clients_gauge.inc()
        try:
            yield conn
        finally:
            self._clients.discard(conn)
            self.metrics.ws_clients_gauge.dec()
            for symbol in list(conn.watches):
                self._unwatch(conn, symbol)
            await conn.close()

    async def receive(self, conn: Connection, text: str) -> None:
        """Act on one client message; a bad one is answered with ``error`` and changes nothing."""
        try:
            command = parse(text)
        except ProtocolError as exc:
            conn.control(error_message(exc.field, exc.detail))
            return
        await self.apply(conn, command)

    async def apply(self, conn: Connection, command: Subscribe | Unsubscribe) -> None:
        limit = parse_rate(self.limits.subscribe_limit)
        if not await self._rate.hit(limit, "ws", str(conn.id)):
            conn.control(
                error_message(
                    "action",
                    f"too many subscribe/unsubscribe messages: at most {self.limits.subscribe_limit}",
                )
            )
            return
        if isinstance(command, Unsubscribe):
            for symbol in command.symbols:
                watch = conn.watches.get(symbol)
                if watch is not None:
                    self._unwatch(conn, symbol)
                    conn.control(
                        {
                            "type": "unsubscribed",
                            "symbol": symbol,
                            "offset": watch.offset,
                            "epoch": watch.epoch,
                        }
                    )
            return
        for symbol in command.symbols:
            if symbol not in conn.watches and len(conn.watches) >= self.limits.max_symbols:
                conn.control(
                    error_message(
                        "symbols", f"at most {self.limits.max_symbols} symbols per connection", symbol=symbol
                    )
                )
                continue
            if not await self.known_symbol(symbol):
                conn.control(error_message("symbols", f"unknown symbol {symbol!r}", symbol=symbol))
                continue
            await self._watch(conn, symbol, command, command.cursors.get(symbol))

    # Joining a symbol ------------------------------------------------------------------
    async def _watch(self, conn: Connection, symbol: str, command: Subscribe, cursor: Cursor | None) -> None:
        if symbol in conn.watches:  # a subscribe again: new channels or interval, new snapshot
            self._unwatch(conn, symbol)
        feed = self._feeds.get(symbol)
        if feed is None:
            offset, epoch = await self.log.head(symbol)
            feed = self._feeds.get(symbol) or self._feeds.setdefault(symbol, _Feed(epoch, offset))
        watch = Watch(command.channels, command.interval, adjust=command.adjust)
        conn.watches[symbol] = watch
        feed.watchers.add(conn)
        if cursor is not None:
            replay = await self.log.since(symbol, cursor.offset, cursor.epoch)
            if conn.watches.get(symbol) is not watch:
                return  # unsubscribed meanwhile
            if not replay.reset:
                conn.control(
                    {
                        "type": "resumed",
                        "symbol": symbol,
                        "offset": replay.offset,
                        "epoch": replay.epoch,
                        "since": cursor.offset,
                        # what this client will get of them (its channels and interval)
                        "replayed": sum(
                            1
                            for e in replay.entries
                            if e.offset > cursor.offset and _wanted(watch, e.message)
                        ),
                    }
                )
                watch.offset, watch.epoch = cursor.offset, replay.epoch
                for entry in replay.entries:
                    self._offer(conn, watch, entry, None)
                watch.offset = max(watch.offset, replay.offset)
                self._go_live(conn, symbol, watch)
                return
            reason = "epoch changed" if replay.epoch != cursor.epoch else "offset not in the replay buffer"
            conn.control(_reset(symbol, replay.offset, replay.epoch, reason, cursor))
        await self._snapshot(conn, symbol, watch)

    async def _snapshot(self, conn: Connection, symbol: str, watch: Watch) -> None:
        offset, epoch = await self.log.head(symbol)
        feed = self._feeds.get(symbol)
        if feed is not None and feed.epoch != epoch:  # the log began again before the Bus said so
            self._adopt(feed, symbol, epoch, offset)
        body = await self.snapshots.take(symbol, watch.interval, watch.channels, watch.adjust)
        if conn.watches.get(symbol) is not watch:
            return
        conn.control({"type": "snapshot", "symbol": symbol, "offset": offset, "epoch": epoch, **body})
        watch.offset, watch.epoch = offset, epoch
        watch.seen = {content_key({"type": "bar", **b}) for b in body.get("bars", ())}
        if body.get("quote") is not None:
            watch.seen.add(content_key({"type": "quote", **body["quote"]}))
        self._go_live(conn, symbol, watch)

    def _go_live(self, conn: Connection, symbol: str, watch: Watch) -> None:
        pending, watch.pending = watch.pending or [], None
        for entry, written_at in pending:
            self._offer(conn, watch, entry, written_at)
        feed = self._feeds.get(symbol)
        if feed is not None and feed.epoch != watch.epoch:  # the history was lost meanwhile
            self._resync(conn, symbol, feed.epoch, feed.offset, "epoch changed")

    def _resync(self, conn: Connection, symbol: str, epoch: str, offset: int, reason: str) -> None:
        """History was lost under a live client: say so, then a new snapshot."""
        watch = conn.watches.get(symbol)
        if watch is None:
            return
        conn.control(_reset(symbol, offset, epoch, reason, Cursor(watch.offset, watch.epoch)))
        watch.pending = []
        conn.spawn(self._snapshot(conn, symbol, watch), name=f"ws-snapshot-{symbol}")

    def _unwatch(self, conn: Connection, symbol: str) -> None:
        conn.watches.pop(symbol, None)
        feed = self._feeds.get(symbol)
        if feed is not None:
            feed.watchers.discard(conn)
            if not feed.watchers:
                del self._feeds[symbol]

    # Entries ----------------------------------------------------------------------------
    async def _read(self, sub: Subscription) -> None:
        async for event in sub:
            opened = open_envelope(event)
            if opened is None:
                continue
            try:
                await self._on_entry(*opened)
            except Exception:  # noqa: BLE001 - one bad entry must not stop every client's stream
                log.exception("stream hub: entry %s/%s failed", event.get("symbol"), event.get("offset"))

    async def _on_entry(self, entry: Entry, written_at: float) -> None:
        feed = self._feeds.get(entry.symbol)
        if feed is None:
            return
        if entry.epoch != feed.epoch:
            self._adopt(feed, entry.symbol, entry.epoch, 0)
        if entry.offset <= feed.offset:
            return
        if entry.offset == feed.offset + 1:
            self._deliver(feed, entry, written_at)
            return
        # The Bus lost entries (pub/sub is fire-and-forget): the log has them.
        self.metrics.ws_dropped_messages_total.labels(reason="bus_overflow").inc(
            entry.offset - feed.offset - 1
        )
        replay = await self.log.since(entry.symbol, feed.offset, feed.epoch)
        if replay.reset:
            self._new_epoch(feed, entry.symbol, replay.epoch, replay.offset, "history lost")
            return
        for missed in replay.entries:
            if missed.offset > feed.offset:
                self._deliver(feed, missed, written_at if missed.offset == entry.offset else None)

    def _adopt(self, feed: _Feed, symbol: str, epoch: str, offset: int) -> None:
        """The log's history was lost and began again under ``epoch``: clients already on it
        (they joined after the loss) go on; the others are told and get a new snapshot."""
        feed.epoch, feed.offset = epoch, offset
        for conn in list(feed.watchers):
            watch = conn.watches.get(symbol)
            if watch is not None and watch.pending is None and watch.epoch != epoch:
                self._resync(conn, symbol, epoch, offset, "epoch changed")

    def _new_epoch(self, feed: _Feed, symbol: str, epoch: str, offset: int, reason: str) -> None:
        feed.epoch, feed.offset = epoch, offset
        for conn in list(feed.watchers):
            self._resync(conn, symbol, epoch, offset, reason)

    def _deliver(self, feed: _Feed, entry: Entry, written_at: float | None) -> None:
        feed.offset = entry.offset
        text = _text(entry)  # once, whatever the number of clients
        for conn in feed.watchers:
            watch = conn.watches.get(entry.symbol)
            if watch is None:
                continue
            if watch.pending is not None:
                watch.pending.append((entry, written_at))
            else:
                self._offer(conn, watch, entry, written_at, text)

    def _offer(
        self, conn: Connection, watch: Watch, entry: Entry, written_at: float | None, text: str | None = None
    ) -> None:
        if entry.epoch != watch.epoch or entry.offset <= watch.offset:
            return
        watch.offset = entry.offset
        message = entry.message
        if not _wanted(watch, message):
            return
        conn.stream(
            entry.symbol,
            entry.offset,
            entry.epoch,
            text or _text(entry),
            str(message.get("type")),
            written_at,
        )

    async def _watch_slow_clients(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.limits.slow_client_s / 4))
            for conn in list(self._clients):
                if not conn.closed and conn.too_slow(self.limits.slow_client_s):
                    self._slow_closed += 1
                    log.info(
                        "stream client %d: closed, behind for over %.0f s", conn.id, self.limits.slow_client_s
                    )
                    reason = f"too slow: behind for over {self.limits.slow_client_s:g} s, {conn.dropped} messages dropped"
                    closing = asyncio.create_task(conn.close(TRY_AGAIN_LATER, reason[:120]))
                    self._closing.add(closing)
                    closing.add_done_callback(self._closing.discard)


def _wanted(watch: Watch, message: dict[str, Any]) -> bool:
    """Whether a watch's client gets a bar/quote message: its channel, its interval, and not
    something its snapshot already said (same bar or quote, same ``as_of``)."""
    if channel_of(message) not in watch.channels:
        return False
    if message.get("type") == "bar" and message.get("interval") != watch.interval:
        return False
    return not (watch.seen and content_key(message) in watch.seen)


def _text(entry: Entry) -> str:
    return orjson.dumps(
        {**entry.message, "symbol": entry.symbol, "offset": entry.offset, "epoch": entry.epoch}
    ).decode()


def _reset(symbol: str, offset: int, epoch: str, reason: str, previous: Cursor) -> dict[str, Any]:
    return {
        "type": "reset",
        "symbol": symbol,
        "offset": offset,
        "epoch": epoch,
        "reason": reason,
        "previous": {"offset": previous.offset, "epoch": previous.epoch},
        "detail": "the stream cannot fill the gap: re-read history over REST; a fresh snapshot follows",
    }
