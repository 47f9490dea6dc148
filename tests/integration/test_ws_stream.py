"""The streaming routes over real sockets (uvicorn in-process): keys, heartbeats, replay."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from mds.access.admin import issue_key
from mds.access.keys import Role
from mds.api.app import create_app
from mds.config import load_settings
from mds.domain.actions import ActionType, CorporateAction
from mds.domain.clock import ManualClock
from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from mds.runtime import Runtime, open_runtime
from mds.serialize import iso
from mds.stream.messages import bar_message
from tests.integration.conftest import API_ENV, API_NOW, API_OPEN, served_on_loopback


@dataclass
class Served:
    rt: Runtime
    port: int
    key: str

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


#: Heartbeats per test: fast ones to see a dead peer reaped, slow ones (the default's order)
#: where a client stops reading on purpose and must not be reaped as dead meanwhile.
FAST_PINGS = {"ws_ping_interval": 0.2, "ws_ping_timeout": 0.3}
SLOW_PINGS = {"ws_ping_interval": 20.0, "ws_ping_timeout": 20.0}


@pytest.fixture(params=[FAST_PINGS], ids=["fast-pings"])
async def served(request, tmp_path) -> AsyncIterator[Served]:  # type: ignore[no-untyped-def]
    env = {
        **API_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/ws.db",
        "AUTH_READ_REQUIRED": "true",
        "WS_CLIENT_QUEUE_MAX": "200",
        **request.param.get("env", {}),
    }
    async with open_runtime(
        load_settings(env), clock=ManualClock(API_NOW), demo=True, collect=False, environ=env
    ) as rt:
        await rt.store.write_bars(ground_truth("AAPL", Interval.M1, API_OPEN, API_NOW), as_of=API_NOW)
        key, _ = await issue_key(rt.store, "ws-read", Role.READ, now=API_NOW)
        app = create_app(lambda: None)  # type: ignore[arg-type, return-value]
        app.state.runtime = rt
        pings = {k: v for k, v in request.param.items() if k != "env"}
        async with served_on_loopback(app, send_buffer=16384, **pings) as port:
            yield Served(rt, port, key)


async def test_a_socket_without_a_key_is_refused_with_1008_and_one_with_a_key_streams(served: Served) -> None:
    async with websockets.connect(f"{served.ws}/ws/AAPL") as ws:
        await ws.send(json.dumps({"action": "subscribe", "symbols": ["AAPL"]}))  # not an auth message
        refusal = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert refusal["type"] == "error" and refusal["status"] == 401
    assert ws.close_code == 1008
    assert served.rt.metrics.value("ws_clients_gauge") == 0

    async with websockets.connect(f"{served.ws}/ws/AAPL?api_key={served.key}") as ws:
        snapshot = json.loads(await ws.recv())
        assert snapshot["type"] == "snapshot" and snapshot["symbol"] == "AAPL"
        assert len(snapshot["bars"]) == 90 and snapshot["bars"][-1]["ts"] == "2025-10-08T14:59:00Z"
        await served.rt.publisher.publish(
            bar_message(ground_truth("AAPL", Interval.M1, API_NOW, API_NOW + Interval.M1.delta)[0])
        )
        live = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (live["type"], live["ts"], live["offset"]) == (
            "bar",
            "2025-10-08T15:00:00Z",
            snapshot["offset"] + 1,
        )


async def test_a_peer_that_stops_answering_pings_is_reaped(served: Served) -> None:
    # A raw socket that completes the handshake and then never reads or answers a ping.
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    nonce = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws/AAPL?api_key={served.key} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    deadline = asyncio.get_running_loop().time() + 5
    while served.rt.metrics.value("ws_clients_gauge") != 1:
        assert asyncio.get_running_loop().time() < deadline, "never counted"
        await asyncio.sleep(0.02)
    while served.rt.metrics.value("ws_clients_gauge") != 0:
        assert asyncio.get_running_loop().time() < deadline, "a dead peer was not reaped"
        await asyncio.sleep(0.05)
    assert served.rt.hub is not None and served.rt.hub.state()["clients"] == 0
    writer.transport.abort()


async def test_replay_over_http_by_offset_and_by_time(served: Served) -> None:
    bars = ground_truth("AAPL", Interval.M1, API_NOW, API_NOW + 3 * Interval.M1.delta)
    for b in bars:
        await served.rt.publisher.publish(bar_message(b))
    headers = {"X-API-Key": served.key}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}", headers=headers) as http:
        r = await http.get("/ws/replay", params={"symbol": "aapl", "since": "1"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["symbol"], body["offset"], body["reset"]) == ("AAPL", 3, False)
        assert [(m["offset"], m["ts"]) for m in body["messages"]] == [
            (2, "2025-10-08T15:01:00Z"),
            (3, "2025-10-08T15:02:00Z"),
        ]
        by_time = (
            await http.get("/ws/replay", params={"symbol": "AAPL", "since": "2025-10-08T15:00:00Z"})
        ).json()
        assert [m["offset"] for m in by_time["messages"]] == [1, 2, 3]  # appended at the clock's 15:00
        stale = (
            await http.get("/ws/replay", params={"symbol": "AAPL", "since": "1", "epoch": "gone"})
        ).json()
        assert stale["reset"] is True and stale["messages"] == [] and stale["epoch"] == body["epoch"]
        bad = await http.get("/ws/replay", params={"symbol": "AAPL", "since": "yesterday"})
        assert bad.status_code == 422 and "since" in bad.text
        unknown = await http.get("/ws/replay", params={"symbol": "ZZZZ", "since": "0"})
        assert unknown.status_code == 404
        refused = await http.get(
            "/ws/replay", params={"symbol": "AAPL", "since": "0"}, headers={"X-API-Key": ""}
        )
        assert refused.status_code == 401


async def _stalled_client(served: Served) -> tuple[socket.socket, str]:
    """A socket for a client that will stop reading: a tiny receive buffer."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", served.port))
    raw.setblocking(False)
    return raw, f"{served.ws}/ws/AAPL?channels=bars&api_key={served.key}"


@pytest.mark.parametrize("served", [SLOW_PINGS], ids=["slow-pings"], indirect=True)
async def test_a_client_that_does_not_read_loses_its_oldest_and_a_reading_one_loses_nothing(
    served: Served,
) -> None:
    # The stalled client: a tiny receive buffer, a one-frame queue in its library, no
    # compression (bars compress to a few bytes each), and it does not read.
    raw, url = await _stalled_client(served)
    async with connect(url, sock=raw, max_queue=1, compression=None) as stalled, connect(url) as reader:
        # Both are subscribed once their snapshots came; from then on the stalled one stops reading.
        assert json.loads(await stalled.recv())["type"] == "snapshot"
        got: list[dict] = [json.loads(await reader.recv())]
        assert got[0]["type"] == "snapshot"

        async def read() -> None:
            while True:
                got.append(json.loads(await reader.recv()))

        reading = asyncio.create_task(read())
        bars = ground_truth("AAPL", Interval.M1, API_NOW, API_NOW + 8 * Interval.D1.delta)[:2000]
        for b in bars:  # as a busy writer would: one at a time, the loop turning between
            await served.rt.publisher.publish(bar_message(b))
            await asyncio.sleep(0)
        deadline = asyncio.get_running_loop().time() + 20
        while len(got) < len(bars) + 1 and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        reading.cancel()
        assert [m["type"] for m in got[1:]] == ["bar"] * len(bars)  # every one, no `dropped`
        assert [m["ts"] for m in got[1:]] == [iso(b.ts) for b in bars]
        dropped = served.rt.metrics.value("ws_dropped_messages_total", reason="client_queue_full")
        assert dropped > 0

        # Once it reads again the stalled client is told what it lost, before what followed.
        seen: list[dict] = []
        while not seen or seen[-1]["type"] != "bar" or seen[-1]["ts"] != iso(bars[-1].ts):
            seen.append(json.loads(await asyncio.wait_for(stalled.recv(), 10)))
        notices = [m for m in seen if m["type"] == "dropped"]
        assert notices and sum(n["count"] for n in notices) == dropped
        first = notices[0]
        before = [m["offset"] for m in seen[: seen.index(first)] if m["type"] == "bar"]
        after = [m["offset"] for m in seen[seen.index(first) + 1 :] if m["type"] == "bar"]
        assert before == sorted(before) and after == sorted(after)
        assert (not before or before[-1] < first["from_offset"]) and first["to_offset"] < after[0]
        assert len(before) + len(after) + dropped == len(bars)


@pytest.mark.parametrize(
    "served", [{**SLOW_PINGS, "env": {"WS_SLOW_CLIENT_SEC": "0.3"}}], ids=["slow-client-0.3s"], indirect=True
)
async def test_a_client_that_stays_behind_is_closed_with_1013_after_what_it_was_sent(served: Served) -> None:
    raw, url = await _stalled_client(served)
    async with connect(url, sock=raw, max_queue=1, compression=None) as stalled:
        assert json.loads(await stalled.recv())["type"] == "snapshot"
        for b in ground_truth("AAPL", Interval.M1, API_NOW, API_NOW + 8 * Interval.D1.delta)[:2000]:
            await served.rt.publisher.publish(bar_message(b))
            await asyncio.sleep(0)
        await asyncio.sleep(1.5)  # behind for longer than WS_SLOW_CLIENT_SEC
        kinds: list[str] = []
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                kinds.append(json.loads(await asyncio.wait_for(stalled.recv(), 10))["type"])
    assert stalled.close_code == 1013 and "too slow" in (stalled.close_reason or "")
    assert "bar" in kinds and "dropped" in kinds
    assert served.rt.hub is not None and served.rt.hub.state()["slow_clients_closed"] == 1
    assert served.rt.metrics.value("ws_dropped_messages_total", reason="slow_client") > 0


async def test_a_snapshot_can_be_split_adjusted_and_a_bad_adjust_is_named(served: Served) -> None:
    # The previous session's minutes, and a 2:1 split effective today: yesterday's bars in the
    # snapshot are halved, today's (and every live bar) are as traded.
    yesterday = API_OPEN - timedelta(days=1)
    await served.rt.store.write_bars(
        ground_truth("AAPL", Interval.M1, yesterday, yesterday + timedelta(hours=6, minutes=30)),
        as_of=API_NOW,
    )
    split = CorporateAction("AAPL", ActionType.SPLIT, API_NOW.date(), ratio=2.0, source="sim")
    await served.rt.store.write_corporate_actions([split], as_of=API_NOW - timedelta(days=3))
    truth = {b.ts: b for b in ground_truth("AAPL", Interval.M1, yesterday, API_NOW)}
    async with websockets.connect(f"{served.ws}/ws/AAPL?api_key={served.key}&adjust=split") as ws:
        snapshot = json.loads(await ws.recv())
    assert snapshot["type"] == "snapshot" and snapshot["adjustment"]["mode"] == "split"
    assert [a["ex_date"] for a in snapshot["adjustment"]["actions"]] == [API_NOW.date().isoformat()]
    olds = [b for b in snapshot["bars"] if b["ts"] < "2025-10-08"]
    news = [b for b in snapshot["bars"] if b["ts"] >= "2025-10-08"]
    assert len(olds) == 30 and len(news) == 90
    for b in olds:
        assert b["close"] == pytest.approx(truth[_ts(b["ts"])].close / 2)
        assert b["volume"] == pytest.approx(truth[_ts(b["ts"])].volume * 2)
    assert all(b["close"] == truth[_ts(b["ts"])].close for b in news)

    async with websockets.connect(f"{served.ws}/ws/AAPL?api_key={served.key}&adjust=dividends") as ws:
        refusal = json.loads(await ws.recv())
    assert refusal["type"] == "error" and refusal["field"] == "adjust"


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
