"""The hub between the Bus and its clients: order, exactness, resume, reset, backpressure.

The hub runs on the in-process log and Bus with fake sockets; tests/e2e/test_streaming.py
covers the same over real sockets and Redis.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from mds.constants import STREAM_TOPIC
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval, Quote
from mds.observability.metrics import Metrics
from mds.serialize import bar_json
from mds.stream import InMemoryBus, InMemoryStreamLog
from mds.stream.connection import TRY_AGAIN_LATER, Connection
from mds.stream.hub import Hub, HubLimits
from mds.stream.log import Entry
from mds.stream.messages import bar_message, quote_message
from mds.stream.protocol import Cursor, Subscribe
from mds.stream.publisher import StreamPublisher, envelope
from tests.helpers import utc

T0 = utc(2025, 10, 8, 14, 0)
UNIVERSE = {"AAPL", "MSFT"}


def bar(minute: int, *, symbol: str = "AAPL", interval: Interval = Interval.M1, close: float = 100.0) -> Bar:
    return Bar(
        symbol=symbol,
        interval=interval,
        ts=T0 + minute * interval.delta,
        open=100.0,
        high=101.0,
        low=99.0,
        close=close,
        volume=1000.0,
        provider="sim",
        as_of=T0 + (minute + 1) * interval.delta,
    )


def quote(second: int, symbol: str = "AAPL") -> Quote:
    from datetime import timedelta

    ts = T0 + timedelta(seconds=second)
    return Quote(symbol=symbol, ts=ts, bid=99.9, ask=100.1, last=100.0, provider="sim", as_of=ts)


class Socket:
    """A fake client socket: records frames; ``hold()`` makes sends wait (a client not reading)."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self._open = asyncio.Event()
        self._open.set()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def send_text(self, text: str) -> None:
        await self._open.wait()
        self.frames.append(json.loads(text))

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]


class Snapshots:
    """Snapshot bodies from a dict the test fills; ``gate`` lets a test hold a read open."""

    def __init__(self) -> None:
        self.bars: dict[str, list[Bar]] = {}
        self.gate: asyncio.Event | None = None
        self.taken = 0

    async def take(
        self, symbol: str, interval: str, channels: frozenset[str], adjust: str = "raw"
    ) -> dict[str, Any]:
        self.taken += 1
        if self.gate is not None:
            await self.gate.wait()
        rows = [b for b in self.bars.get(symbol, []) if b.interval.value == interval]
        return {"interval": interval, "bars": [bar_json(b) for b in rows], "quote": None}


class World:
    def __init__(
        self,
        hub: Hub,
        publisher: StreamPublisher,
        log: InMemoryStreamLog,
        bus: InMemoryBus,
        snapshots: Snapshots,
        metrics: Metrics,
        stack: AsyncExitStack,
    ) -> None:
        self.hub, self.publisher, self.log, self.bus = hub, publisher, log, bus
        self.snapshots, self.metrics, self.stack = snapshots, metrics, stack

    async def client(self, *subscribes: Subscribe) -> tuple[Connection, Socket]:
        socket = Socket()
        conn = await self.stack.enter_async_context(self.hub.connect(socket))
        for s in subscribes:
            await self.hub.apply(conn, s)
        return conn, socket

    async def publish(self, *messages: dict[str, Any]) -> None:
        for m in messages:
            await self.publisher.publish(m)


async def settle(until: Callable[[], bool] | None = None, timeout: float = 2.0) -> None:
    """Let the hub's reader and the senders run (until ``until`` holds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for _ in range(20):
            await asyncio.sleep(0)
        if until is None or until() or loop.time() > deadline:
            return
        await asyncio.sleep(0.005)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = ManualClock(T0)
    log, bus, metrics, snapshots = (
        InMemoryStreamLog(clock, max_messages=50),
        InMemoryBus(),
        Metrics(),
        Snapshots(),
    )

    async def known(symbol: str) -> bool:
        return symbol in UNIVERSE

    hub = Hub(
        log=log,
        bus=bus,
        snapshots=snapshots,
        metrics=metrics,
        limits=HubLimits(queue_max=5, slow_client_s=0.2, subscribe_limit="50/second", max_symbols=2),
        known_symbol=known,
    )
    await hub.start()
    async with AsyncExitStack() as stack:
        yield World(hub, StreamPublisher(log, bus, metrics), log, bus, snapshots, metrics, stack)
    await hub.stop()


def sub(*symbols: str, **kw: Any) -> Subscribe:
    return Subscribe(tuple(symbols), **kw)


def offsets(frames: list[dict[str, Any]]) -> list[int]:
    return [f["offset"] for f in frames if f["type"] in ("bar", "quote")]


async def test_snapshot_then_live_messages_in_offset_order(world: World) -> None:
    world.snapshots.bars["AAPL"] = [bar(0), bar(1)]
    await world.publish(bar_message(bar(0)), bar_message(bar(1)))  # before the client: offsets 1, 2
    _, socket = await world.client(sub("AAPL"))
    await world.publish(bar_message(bar(2)), quote_message(quote(150)), bar_message(bar(3)))
    await settle(lambda: len(socket.frames) == 4)
    snapshot, *live = socket.frames
    assert snapshot["type"] == "snapshot" and snapshot["offset"] == 2 and len(snapshot["bars"]) == 2
    assert [(f["type"], f["offset"]) for f in live] == [("bar", 3), ("quote", 4), ("bar", 5)]
    first = live[0]
    assert {k: first[k] for k in ("symbol", "interval", "close", "provider", "status")} == {
        "symbol": "AAPL",
        "interval": "1m",
        "close": 100.0,
        "provider": "sim",
        "status": "final",
    }
    assert first["ts"] == "2025-10-08T14:02:00Z" and first["epoch"] == snapshot["epoch"]
    assert world.metrics.value("ws_clients_gauge") == 1
    assert world.metrics.value("ws_messages_sent_total", type="bar") == 2


async def test_entries_written_while_the_snapshot_is_read_follow_it_once(world: World) -> None:
    world.snapshots.gate = asyncio.Event()
    world.snapshots.bars["AAPL"] = [bar(0)]
    socket = Socket()
    conn = await world.stack.enter_async_context(world.hub.connect(socket))
    joining = asyncio.create_task(world.hub.apply(conn, sub("AAPL")))
    await settle(lambda: world.snapshots.taken == 1)
    # Written after the head was read: offset 1 is in the snapshot's store read as well
    # (same bar, same as_of), offset 2 is not.
    await world.publish(bar_message(bar(0)), bar_message(bar(1)))
    await settle()
    assert socket.frames == []
    world.snapshots.gate.set()
    await joining
    await settle(lambda: len(socket.frames) >= 2)
    assert [f["type"] for f in socket.frames] == ["snapshot", "bar"]
    assert socket.frames[0]["offset"] == 0 and socket.frames[1]["offset"] == 2
    assert socket.frames[1]["ts"] == "2025-10-08T14:01:00Z"
    # A snapshot bar's entry may come well after the client went live (the writer appends
    # after more store calls): still not repeated; a real revision of it is sent.
    revised = bar(0, close=100.5).with_(as_of=T0 + 3 * Interval.M1.delta)
    await world.publish(bar_message(bar(0)), bar_message(revised))
    await settle(lambda: len(socket.frames) >= 3)
    await settle()
    assert [(f["offset"], f["close"]) for f in socket.frames[1:]] == [(2, 100.0), (4, 100.5)]


async def test_resume_sends_exactly_what_was_missed_then_live(world: World) -> None:
    _, first = await world.client(sub("AAPL"))
    await world.publish(*(bar_message(bar(i)) for i in range(3)))
    await settle(lambda: len(first.frames) == 4)
    cursor = Cursor(first.frames[-1]["offset"], first.frames[-1]["epoch"])
    await world.publish(*(bar_message(bar(i)) for i in range(3, 6)))  # missed while away
    await world.publish(quote_message(quote(330)))  # missed too, by a client that takes only bars
    _, bars_only = await world.client(sub("AAPL", channels=frozenset({"bars"}), cursors={"AAPL": cursor}))
    await settle(lambda: len(bars_only.frames) == 4)
    assert (bars_only.frames[0]["replayed"], bars_only.frames[0]["offset"]) == (3, 7)
    assert offsets(bars_only.frames) == [4, 5, 6]
    _, again = await world.client(sub("AAPL", cursors={"AAPL": cursor}))
    await world.publish(bar_message(bar(6)))
    await settle(lambda: len(again.frames) == 6)
    resumed, *rest = again.frames
    assert resumed == {
        "type": "resumed",
        "symbol": "AAPL",
        "offset": 7,
        "epoch": cursor.epoch,
        "since": 3,
        "replayed": 4,
    }
    assert offsets(rest) == [4, 5, 6, 7, 8]
    assert [o for o in offsets(first.frames) if o <= cursor.offset] + offsets(rest) == list(range(1, 9))


async def test_a_resume_with_nothing_missed_still_says_where_the_stream_is(world: World) -> None:
    await world.publish(bar_message(bar(0)))
    offset, epoch = await world.log.head("AAPL")
    _, socket = await world.client(sub("AAPL", cursors={"AAPL": Cursor(offset, epoch)}))
    await settle(lambda: len(socket.frames) == 1)
    assert socket.frames == [
        {"type": "resumed", "symbol": "AAPL", "offset": 1, "epoch": epoch, "since": 1, "replayed": 0}
    ]


@pytest.mark.parametrize("why", ["epoch", "trimmed", "ahead"])
async def test_a_cursor_that_cannot_be_honoured_gets_reset_and_a_snapshot(world: World, why: str) -> None:
    await world.publish(*(bar_message(bar(i % 30, close=100 + i)) for i in range(60)))  # keeps 11..60
    head, epoch = await world.log.head("AAPL")
    cursor = {"epoch": Cursor(5, "another-history"), "trimmed": Cursor(5, epoch), "ahead": Cursor(99, epoch)}[
        why
    ]
    _, socket = await world.client(sub("AAPL", cursors={"AAPL": cursor}))
    await settle(lambda: len(socket.frames) == 2)
    reset, snapshot = socket.frames
    assert reset["type"] == "reset" and reset["offset"] == head and reset["epoch"] == epoch
    assert reset["previous"] == {"offset": cursor.offset, "epoch": cursor.epoch}
    assert reset["reason"] == ("epoch changed" if why == "epoch" else "offset not in the replay buffer")
    assert snapshot["type"] == "snapshot" and snapshot["offset"] == head


async def test_channels_and_interval_filter_what_a_client_gets(world: World) -> None:
    _, bars_1m = await world.client(sub("AAPL", channels=frozenset({"bars"})))
    _, bars_5m = await world.client(sub("AAPL", channels=frozenset({"bars"}), interval="5m"))
    _, quotes = await world.client(sub("AAPL", channels=frozenset({"quotes"})))
    await world.publish(
        bar_message(bar(0)),
        quote_message(quote(30)),
        bar_message(bar(0, interval=Interval.M5)),
        bar_message(bar(1)),
    )
    await settle(lambda: len(bars_1m.frames) == 3 and len(bars_5m.frames) == 2 and len(quotes.frames) == 2)
    assert [(f["type"], f.get("interval")) for f in bars_1m.frames[1:]] == [("bar", "1m"), ("bar", "1m")]
    assert [(f["offset"], f["interval"]) for f in bars_5m.frames[1:]] == [(3, "5m")]
    assert [(f["type"], f["offset"]) for f in quotes.frames[1:]] == [("quote", 2)]


async def test_entries_the_bus_lost_are_refilled_from_the_log(world: World) -> None:
    _, socket = await world.client(sub("AAPL"))
    await world.publish(bar_message(bar(0)))
    await world.log.append("AAPL", bar_message(bar(1)))  # in the log, never announced
    await world.log.append("AAPL", bar_message(bar(2)))
    await world.publish(bar_message(bar(3)))
    await settle(lambda: len(socket.frames) == 5)
    assert offsets(socket.frames) == [1, 2, 3, 4]
    assert world.metrics.value("ws_dropped_messages_total", reason="bus_overflow") == 2


async def test_a_new_epoch_under_live_clients_resets_them(world: World) -> None:
    _, socket = await world.client(sub("AAPL"))
    await world.publish(bar_message(bar(0)))
    await settle(lambda: len(socket.frames) == 2)
    # What a hub sees after the log's history is lost (Redis flushed): offsets restart under
    # a new epoch. Here the log itself begins again (a fresh one in its place).
    world.hub.log = fresh = InMemoryStreamLog(ManualClock(T0))
    world.publisher.log = fresh
    _, joined_after = await world.client(sub("AAPL"))  # already on the new history
    await settle(lambda: len(joined_after.frames) == 1)
    await world.publish(bar_message(bar(1)), bar_message(bar(2)))
    await settle(lambda: len(socket.frames) == 6 and len(joined_after.frames) == 3)
    _, new_epoch = await fresh.head("AAPL")
    reset, snapshot, *live = socket.frames[2:]
    assert (reset["type"], reset["epoch"], reset["reason"]) == ("reset", new_epoch, "epoch changed")
    assert reset["previous"] == {"offset": 1, "epoch": socket.frames[0]["epoch"]}
    assert socket.frames[0]["epoch"] != new_epoch
    assert snapshot["type"] == "snapshot" and snapshot["epoch"] == new_epoch
    assert [(f["offset"], f["epoch"]) for f in live] == [(1, new_epoch), (2, new_epoch)]
    assert [f["type"] for f in joined_after.frames] == ["snapshot", "bar", "bar"]  # no reset: nothing lost


async def test_a_foreign_epoch_on_the_bus_resets_once_and_settles_on_the_log(world: World) -> None:
    _, socket = await world.client(sub("AAPL"))
    await world.publish(bar_message(bar(0)))
    await settle(lambda: len(socket.frames) == 2)
    lost = Entry("AAPL", 1, "new-history", bar_message(bar(1)), T0)
    await world.bus.publish(STREAM_TOPIC, envelope(lost, 0.0))
    await settle(lambda: len(socket.frames) >= 4)
    await settle()
    assert [f["type"] for f in socket.frames] == ["snapshot", "bar", "reset", "snapshot"]
    assert socket.frames[3]["epoch"] == (await world.log.head("AAPL"))[1]


async def test_a_slow_client_loses_its_oldest_messages_and_is_told_and_a_fast_one_is_not_delayed(
    world: World,
) -> None:
    _, slow = await world.client(sub("AAPL"))
    _, fast = await world.client(sub("AAPL"))
    await settle(lambda: len(slow.frames) == 1 and len(fast.frames) == 1)
    slow.hold()
    for i in range(10):  # a bar at a time, as they are written: the fast client keeps up
        await world.publish(bar_message(bar(i)))
        await settle(lambda i=i: len(fast.frames) == i + 2)
    assert offsets(fast.frames) == list(range(1, 11))
    # One message was in flight when the socket stopped taking them; 5 wait; 4 were dropped.
    assert world.metrics.value("ws_dropped_messages_total", reason="client_queue_full") == 4
    slow.release()
    await settle(lambda: len(slow.frames) == 8)
    kinds = [f["type"] for f in slow.frames]
    assert kinds == ["snapshot", "bar", "dropped", "bar", "bar", "bar", "bar", "bar"]
    dropped = slow.frames[2]
    assert (dropped["from_offset"], dropped["to_offset"], dropped["count"], dropped["symbol"]) == (
        2,
        5,
        4,
        "AAPL",
    )
    assert offsets(slow.frames) == [1, 6, 7, 8, 9, 10]


async def test_a_client_that_stays_behind_is_closed_with_1013(world: World) -> None:
    conn, slow = await world.client(sub("AAPL"))
    await settle(lambda: len(slow.frames) == 1)
    slow.hold()
    await world.publish(*(bar_message(bar(i)) for i in range(10)))
    await settle(lambda: world.hub.state()["slow_clients_closed"] == 1, timeout=3.0)
    assert conn.closed and slow.closed is None  # the close waits behind what the socket holds
    slow.release()
    await settle(lambda: slow.closed is not None)
    assert slow.closed is not None and slow.closed[0] == TRY_AGAIN_LATER
    assert "too slow" in slow.closed[1]
    # Told what it lost, then closed: all ten bars (a burst: the 5 oldest dropped from the full
    # queue, their notice stuck on the socket, the 5 queued discarded at the close).
    assert [f["type"] for f in slow.frames] == ["snapshot", "dropped"]
    assert (slow.frames[1]["from_offset"], slow.frames[1]["to_offset"], slow.frames[1]["count"]) == (
        1,
        10,
        10,
    )
    assert world.metrics.value("ws_dropped_messages_total", reason="slow_client") == 5
    assert world.metrics.value("ws_dropped_messages_total", reason="client_queue_full") == 5


async def test_unknown_symbols_too_many_symbols_and_floods_get_errors_and_the_client_stays(
    world: World,
) -> None:
    world.hub.configure(HubLimits(queue_max=5, slow_client_s=0.2, subscribe_limit="3/minute", max_symbols=1))
    conn, socket = await world.client(sub("ZZZZ"), sub("AAPL"), sub("MSFT"), sub("AAPL"))
    await settle(lambda: len(socket.frames) >= 4)
    errors = socket.of("error")
    assert [(e["field"], e["symbol"]) for e in errors] == [
        ("symbols", "ZZZZ"),
        ("symbols", "MSFT"),
        ("action", None),
    ]
    assert "unknown symbol" in errors[0]["detail"] and "at most 1" in errors[1]["detail"]
    assert "too many" in errors[2]["detail"]
    assert len(socket.of("snapshot")) == 1 and not conn.closed


async def test_bad_messages_name_the_field(world: World) -> None:
    conn, socket = await world.client()
    for text in (
        "{not json",
        '{"action": "dance"}',
        '{"action": "subscribe", "symbols": []}',
        '{"action": "subscribe", "symbols": ["AAPL"], "channels": ["trades"]}',
        '{"action": "subscribe", "symbols": ["AAPL"], "interval": "1h"}',
        '{"action": "subscribe", "symbols": ["AAPL"], "since": 3}',
    ):
        await world.hub.receive(conn, text)
    await world.hub.receive(conn, '{"action": "subscribe", "symbols": ["aapl"]}')
    await settle(lambda: len(socket.frames) == 7)
    assert [f.get("field") for f in socket.frames[:6]] == [
        "message",
        "action",
        "symbols",
        "channels",
        "interval",
        "epoch",
    ]
    assert socket.frames[6]["type"] == "snapshot" and socket.frames[6]["symbol"] == "AAPL"


async def test_unsubscribe_stops_the_symbol(world: World) -> None:
    conn, socket = await world.client(sub("AAPL", "MSFT"))
    await world.hub.receive(conn, '{"action": "unsubscribe", "symbols": ["AAPL"]}')
    await world.publish(bar_message(bar(0)), bar_message(bar(0, symbol="MSFT")))
    await settle(lambda: len(socket.frames) == 4)
    assert [(f["type"], f["symbol"]) for f in socket.frames] == [
        ("snapshot", "AAPL"),
        ("snapshot", "MSFT"),
        ("unsubscribed", "AAPL"),
        ("bar", "MSFT"),
    ]
    assert world.hub.state()["symbols"] == 1
