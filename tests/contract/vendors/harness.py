"""What vendor contract tests build adapters with, and the servers they talk to.

``vendor()`` builds any adapter with test keys. Three ways to answer it: ``Canned``
through ``httpx.MockTransport`` (in-process, for the shared suite), ``ReplayServer``
(fixtures over a loopback socket, for request-shape quirks) and ``SimServerProcess``
(`mds sim-server` speaking a vendor's format). No test here contacts a vendor's real host.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval
from mds.providers.http import HttpProvider
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.faults import FaultInjector, SimFaults
from mds.providers.sim.market import SimMarket
from mds.simserver.app import create_sim_app
from mds.simserver.context import SimContext
from tests.helpers import free_port

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vendors"
MDS = str(Path(sys.executable).with_name("mds"))
CALENDAR = MarketCalendar()

KEY, SECRET = "test-key", "test-secret"
#: provider name -> the key settings that make its adapter configured.
KEYS: dict[str, dict[str, str]] = {
    "yahoo": {},
    "stooq": {},
    "finnhub": {"FINNHUB_API_KEY": KEY},
    "alphavantage": {"ALPHA_VANTAGE_API_KEY": KEY},
    "polygon": {"POLYGON_API_KEY": KEY},
    "fmp": {"FMP_API_KEY": KEY},
    "twelvedata": {"TWELVE_DATA_API_KEY": KEY},
    "alpaca": {"ALPACA_API_KEY_ID": KEY, "ALPACA_API_SECRET_KEY": SECRET},
    "tiingo": {"TIINGO_API_KEY": KEY},
    "fred": {"FRED_API_KEY": KEY},
}

P = TypeVar("P", bound=HttpProvider)


def vendor(
    cls: type[P], base_url: str = "http://vendor.test", *, client: httpx.AsyncClient | None = None
) -> P:
    """``cls`` with its test keys, a private rate limiter, and requests sent to ``base_url``."""
    settings = load_settings({**KEYS[cls.name], f"{cls.name.upper()}_BASE_URL": base_url})
    return cls(settings=settings, calendar=CALENDAR, limiter=RateLimiter(), client=client)


def fixture(vendor: str, name: str) -> bytes:
    return (FIXTURES / vendor / name).read_bytes()


@dataclass
class Canned:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Answering:
    """An ``httpx.MockTransport`` giving every request the same answer; it keeps the requests.

    ``answer`` is a ``Canned`` response or an ``httpx`` exception to raise (a refused
    connection, a timeout).
    """

    def __init__(self, answer: Canned | httpx.HTTPError) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.answer, httpx.HTTPError):
            raise self.answer
        return httpx.Response(self.answer.status, content=self.answer.body, headers=self.answer.headers)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self._handle))


@dataclass
class Seen:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


class ReplayServer:
    """Answers each path with the responses queued for it, in order (the last one repeats)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._queues: dict[str, deque[Canned]] = defaultdict(deque)
        self.requests: list[Seen] = []
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def expect(
        self,
        path: str,
        body: bytes | str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        delay: float = 0.0,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self._queues["/" + path.lstrip("/")].append(
            Canned(status, data, {"content-type": content_type, **(headers or {})}, delay)
        )

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        self.requests.append(Seen(path, dict(request.query_params), dict(request.headers)))
        queue = self._queues.get(path)
        if not queue:
            return Response(b'{"error":"no fixture for this path"}', status_code=599)
        canned = queue.popleft() if len(queue) > 1 else queue[0]
        if canned.delay:
            import asyncio

            await asyncio.sleep(canned.delay)
        return Response(canned.body, status_code=canned.status, headers=canned.headers)

    def start(self) -> ReplayServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("replay server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


class SimServerProcess:
    """`mds sim-server --format FMT` as a subprocess on a free port."""

    def __init__(self, fmt: str, env: dict[str, str] | None = None, prefix: str = "SIM_") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
        self.proc = subprocess.Popen(
            [MDS, "sim-server", "--format", fmt, "--port", str(self.port), "--prefix", prefix],
            env={**base, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sim-server exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sim-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


@contextmanager
def sim_app(fmt: str, now: datetime, market: SimMarket | None = None) -> Iterator[str]:
    """``mds sim-server``'s app for ``fmt`` in this process on loopback, its clock standing at
    ``now`` (a fresh seed-42 market unless ``market`` is given); yields its base URL."""
    ctx = SimContext(
        market or SimMarket(seed=42), ManualClock(now), FaultInjector(fmt, SimFaults()), provider=fmt
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_sim_app(fmt, ctx), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "sim app did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def get(url: str, **params: str) -> httpx.Response:
    return httpx.get(url, params=params, timeout=10)


async def fetch_bars(
    cls: type[HttpProvider],
    base_url: str,
    interval: Interval,
    start: datetime,
    end: datetime,
    symbol: str = "AAPL",
) -> list[Bar]:
    """``symbol``'s bars from a fresh ``cls`` adapter talking to ``base_url``."""
    p = vendor(cls, base_url)
    try:
        return await p.fetch_bars(symbol, interval, start, end)
    finally:
        await p.aclose()
