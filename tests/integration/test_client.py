"""mds.client against the real app: round trips, typed errors, and a stream resumed across a
dropped connection (through a TCP proxy that cuts every connection mid-stream)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mds.access.admin import issue_key
from mds.access.keys import Role
from mds.api.app import create_app
from mds.client import AsyncClient, AuthError, Client, InvalidRequest, NotFound
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from mds.runtime import Runtime, open_runtime
from mds.stream.messages import bar_message
from tests.integration.conftest import API_ENV, API_NOW, API_OPEN, served_on_loopback

DAILY_START = API_NOW - timedelta(days=40)


@dataclass
class Served:
    rt: Runtime
    app: Any
    key: str


@pytest.fixture
async def served(tmp_path) -> AsyncIterator[Served]:  # type: ignore[no-untyped-def]
    env = {**API_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/client.db", "AUTH_READ_REQUIRED": "true"}
    async with open_runtime(
        load_settings(env), clock=ManualClock(API_NOW), demo=True, collect=False, environ=env
    ) as rt:
        await rt.store.write_bars(ground_truth("AAPL", Interval.M1, API_OPEN, API_NOW), as_of=API_NOW)
        await rt.store.write_bars(ground_truth("AAPL", Interval.D1, DAILY_START, API_OPEN), as_of=API_NOW)
        key, _ = await issue_key(rt.store, "client-read", Role.READ, now=API_NOW)
        app = create_app(lambda: None)  # type: ignore[arg-type, return-value]
        app.state.runtime = rt
        yield Served(rt, app, key)


def in_process(served: Served, key: str | None) -> AsyncClient:
    transport = httpx.ASGITransport(app=served.app, raise_app_exceptions=False)
    return AsyncClient("http://mds", api_key=key, transport=transport)


async def test_history_and_intraday_frames_are_the_stored_bars(served: Served) -> None:
    async with in_process(served, served.key) as mds:
        daily = await mds.history("aapl", period="1y")
        minutes = await mds.intraday("AAPL", start=API_OPEN, end=API_OPEN + timedelta(minutes=30))
    want = ground_truth("AAPL", Interval.D1, DAILY_START, API_OPEN)
    assert list(daily.index.to_pydatetime()) == [b.ts for b in want]
    assert daily["close"].tolist() == [b.close for b in want]
    assert daily.attrs["symbol"] == "AAPL" and daily.attrs["interval"] == "1d"
    want_m = ground_truth("AAPL", Interval.M1, API_OPEN, API_OPEN + timedelta(minutes=30))
    assert list(minutes.index.to_pydatetime()) == [b.ts for b in want_m]
    assert minutes["volume"].tolist() == [b.volume for b in want_m]
    assert set(minutes["as_of"]) == {API_NOW}


async def test_typed_errors_carry_the_servers_problem(served: Served) -> None:
    async with in_process(served, served.key) as mds:
        with pytest.raises(NotFound) as missing:
            await mds.history("ZZZZ")
        with pytest.raises(InvalidRequest) as invalid:
            await mds.history("AAPL", period="7x")
    assert missing.value.status == 404 and missing.value.body.get("key") == "ZZZZ"
    assert invalid.value.status == 422 and invalid.value.field == "period"
    assert invalid.value.errors[0]["field"] == "period"

    async with in_process(served, "wrong-key-123") as mds:
        with pytest.raises(AuthError) as refused:
            await mds.history("AAPL")
    assert refused.value.status == 401 and "wrong-key-123" not in str(refused.value)


async def test_the_other_endpoints_answer_frames_with_their_natural_index(served: Served) -> None:
    async with in_process(served, served.key) as mds:
        snap = await mds.ta("AAPL")
        chain = await mds.options_chain("AAPL", max_days=10)
        macro = await mds.macro()
        coverage = await mds.coverage("AAPL")
    assert list(snap.index) == ["AAPL"] and snap.loc["AAPL", "close"] == pytest.approx(
        ground_truth("AAPL", Interval.D1, DAILY_START, API_OPEN)[-1].close
    )
    assert chain.index.name == "contract" and len(chain) == chain.attrs["count"] > 0
    assert set(chain["type"]) == {"call", "put"} and chain.attrs["underlying"] == "AAPL"
    assert macro.index.name == "factor_key"
    assert coverage.index.name == "start" and coverage.attrs["symbol"] == "AAPL"


async def test_the_blocking_client_over_a_real_socket(served: Served) -> None:
    async with served_on_loopback(served.app) as port:

        def read() -> Any:
            with Client(f"http://127.0.0.1:{port}", api_key=served.key) as mds:
                frame = mds.history("AAPL", period="1y", frame="polars")
                with pytest.raises(NotFound):
                    mds.options_chain("ZZZZ")
                return frame

        frame = await asyncio.to_thread(read)
    want = ground_truth("AAPL", Interval.D1, DAILY_START, API_OPEN)
    assert frame["ts"].to_list() == [b.ts for b in want]


class CuttingProxy:
    """Forwards TCP to the server; :meth:`cut` aborts every open connection (a network drop)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    def cut(self) -> None:
        for w in list(self.writers):
            w.transport.abort()


@asynccontextmanager
async def proxy_to(port: int) -> AsyncIterator[tuple[CuttingProxy, int]]:
    proxy = CuttingProxy(port)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    try:
        yield proxy, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        proxy.cut()


async def test_a_stream_resumes_after_a_dropped_connection_without_loss_or_repeat(served: Served) -> None:
    live = ground_truth("AAPL", Interval.M1, API_NOW, API_NOW + 9 * Interval.M1.delta)
    publisher = served.rt.publisher
    async with served_on_loopback(served.app) as port, proxy_to(port) as (proxy, proxy_port):
        mds = AsyncClient(f"http://127.0.0.1:{proxy_port}", api_key=served.key)
        stream = mds.stream("AAPL", channels=["bars"], backoff=0.05)
        seen: list[dict[str, Any]] = []

        async def next_message() -> dict[str, Any]:
            message = await asyncio.wait_for(anext(stream), 10)
            seen.append(message)
            return message

        snapshot = await next_message()
        assert snapshot["type"] == "snapshot" and snapshot["bars"][-1]["ts"] == "2025-10-08T14:59:00Z"
        for bar in live[:3]:
            await publisher.publish(bar_message(bar))
        while sum(m["type"] == "bar" for m in seen) < 3:
            await next_message()

        proxy.cut()  # the connection drops; bars go on being published meanwhile
        for bar in live[3:6]:
            await publisher.publish(bar_message(bar))
        while not any(m["type"] == "resumed" for m in seen):
            await next_message()
        for bar in live[6:]:
            await publisher.publish(bar_message(bar))
        while sum(m["type"] == "bar" for m in seen) < len(live):
            await next_message()
        await stream.aclose()
        await mds.aclose()

    bars = [m for m in seen if m["type"] == "bar"]
    assert [m["ts"] for m in bars] == [f"2025-10-08T15:0{i}:00Z" for i in range(9)]
    offsets = [m["offset"] for m in bars]
    assert offsets == list(range(snapshot["offset"] + 1, snapshot["offset"] + 10))
    resumed = next(m for m in seen if m["type"] == "resumed")
    assert resumed["since"] == offsets[2]
    assert proxy.connections == 2


async def test_adjust_as_of_and_date_reach_the_server(served: Served) -> None:
    last = ground_truth("AAPL", Interval.D1, DAILY_START, API_OPEN)[-6]
    async with in_process(served, served.key) as mds:
        split = await mds.history("AAPL", period="1y", adjust="split", date=last.ts.date())
        before = await mds.history("AAPL", period="1y", as_of=API_NOW - timedelta(seconds=1))
    assert split.attrs["adjustment"]["mode"] == "split"
    assert split.index[-1] == last.ts  # event time: nothing after that session
    assert len(before) == 0  # knowledge time: every bar was learned at API_NOW
