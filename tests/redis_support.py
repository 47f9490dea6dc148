"""Finding a Redis for tests, and throwaway servers the tests own.

The server comes from ``MDS_TEST_REDIS_URL`` if set, else redis://127.0.0.1:6379 if it
answers PING, else a throwaway ``redis-server`` started from the installed binary (kept
for the session, stopped at exit), else the test is skipped (a failure under
``MDS_REQUIRE_SERVICES=1``). Tests only ever touch keys under their own uuid prefix and
never FLUSH a server they did not start.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from tests.conftest import skip_or_fail
from tests.helpers import free_port

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def pings(url: str, timeout: float = 0.5) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class RedisServer:
    """A redis-server this test owns: its port, its data dir, its lifecycle."""

    def __init__(
        self, *, port: int | None = None, appendonly: bool = False, workdir: Path | None = None
    ) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary = binary
        self.port = port or free_port()
        self.appendonly = appendonly
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="mds-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, wait: float = 10.0) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self.workdir)]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}")
            if pings(self.url, 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {wait}s")

    def kill(self) -> None:
        """SIGKILL: no save, no goodbye (a crash, or SHUTDOWN NOSAVE without the courtesy)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


@functools.cache
def _find_url() -> str | None:
    """The test server's URL, or None (with the reason in ``_skip_reason``)."""
    env = os.environ.get("MDS_TEST_REDIS_URL")
    if env:
        if pings(env, 2.0):
            return env
        _skip_reason.append(f"MDS_TEST_REDIS_URL={env} does not answer PING")
        return None
    if pings(DEFAULT_URL):
        return DEFAULT_URL
    try:
        server = RedisServer()
        server.start()
    except (FileNotFoundError, RuntimeError) as exc:
        _skip_reason.append(f"no Redis at {DEFAULT_URL} and no throwaway server: {exc}")
        return None
    atexit.register(server.kill)
    return server.url


_skip_reason: list[str] = []


def redis_url() -> str:
    """The URL of a Redis to test against; skips (or fails under CI) when there is none."""
    url = _find_url()
    if url is None:
        skip_or_fail(_skip_reason[0] if _skip_reason else "no Redis available")
        raise AssertionError("unreachable")
    return url


def key_prefix() -> str:
    return f"mds:test:{uuid.uuid4().hex[:12]}:"


async def delete_prefix(client: aioredis.Redis, prefix: str) -> None:
    async for key in client.scan_iter(match=f"{prefix}*", count=500):
        await client.delete(key)


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    """A client on the test Redis; closed after the test (keys are the test's to delete)."""
    client = aioredis.Redis.from_url(redis_url())
    try:
        yield client
    finally:
        await client.aclose()
