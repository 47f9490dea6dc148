"""Loopback servers for vendor contract tests: a fixture replayer and `mds sim-server`.

Both are real HTTP servers on 127.0.0.1; adapters reach them through
``<PROVIDER>_BASE_URL``. No test here contacts a vendor's real host.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vendors"
MDS = str(Path(sys.executable).with_name("mds"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixture(vendor: str, name: str) -> bytes:
    return (FIXTURES / vendor / name).read_bytes()


@dataclass
class Canned:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


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


def get(url: str, **params: str) -> httpx.Response:
    return httpx.get(url, params=params, timeout=10)
