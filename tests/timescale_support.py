"""A PostgreSQL with TimescaleDB for tests: one empty database per session.

Where the server comes from, in order:

1. ``MDS_TEST_TIMESCALE_URL``: must answer and offer the ``timescaledb`` extension (in
   ``shared_preload_libraries``). It is the admin connection, as MDS_TEST_DATABASE_URL
   is: the session's database is created on it and dropped afterwards.
2. PGlite (PostgreSQL 17 compiled to WASM) built with TimescaleDB, served over the wire
   protocol by ``tests/timescale_lite/serve.mjs``, when ``node`` and ``npm`` are on PATH.
   The npm packages (exact versions, with integrity hashes, in ``package.json`` and
   ``package-lock.json`` there) are installed once into ``.cache/timescaledb-lite/``
   and reused while those files and ``serve.mjs`` are unchanged; the server runs in
   memory on a port of its choosing for the session and is stopped at the end.

Otherwise the reason is reported and the test skipped, a failure under
``MDS_REQUIRE_SERVICES=1`` (``tests.conftest.skip_or_fail``). CI installs the packages
ahead of time with ``python -m tests.timescale_support install``.

The WASM server is ONE backend: clients take turns (a second connection waits until
the first closes, for up to 60 s), and it refuses SSL, hence ``sslmode=disable`` in its
URL. Stores on it need ``pool_min=pool_max=1``, and a test must close one client before
it opens another. Its background workers do not run: policies and jobs stay scheduled
until something calls them (``CALL run_job(id)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import skip_or_fail
from tests.pgserver import create_database, drop_database

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "tests" / "timescale_lite"
CACHE = REPO / ".cache" / "timescaledb-lite"
FILES = ("package.json", "package-lock.json", "serve.mjs")
INSTALL_TIMEOUT = 300.0
START_TIMEOUT = 90.0
_LISTENING = re.compile(r"^listening (\d+)$", re.M)


class Unavailable(Exception):
    """No TimescaleDB could be found or started; the message says why."""


async def _check(url: str, timeout: float = 10.0) -> str | None:
    """None when ``url`` answers and offers timescaledb, else why not."""
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        available = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
        )
    finally:
        await conn.close()
    return None if available else "the timescaledb extension is not available there"


def check(url: str) -> str | None:
    return asyncio.run(_check(url))


def _digest() -> str:
    h = hashlib.sha256()
    for name in FILES:
        h.update(name.encode() + b"\0" + (SOURCE / name).read_bytes() + b"\0")
    return h.hexdigest()


def install(cache: Path = CACHE, *, timeout: float = INSTALL_TIMEOUT) -> Path:
    """Install the pinned npm packages and ``serve.mjs`` into ``cache`` (once).

    Returns:
        ``cache``, ready for ``node serve.mjs``.

    Raises:
        Unavailable: node or npm is missing, or ``npm ci`` failed.
    """
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not on PATH (needed for the WASM TimescaleDB)")
    digest = _digest()
    stamp = cache / ".installed"
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Two test processes starting together must not run npm in the same folder at once.
    with open(cache.parent / f"{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == digest and (cache / "node_modules").is_dir():
            return cache
        stamp.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        for name in FILES:
            shutil.copyfile(SOURCE / name, cache / name)
        cmd = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
        env = {**os.environ, "npm_config_update_notifier": "false"}
        try:
            subprocess.run(
                cmd, cwd=cache, env=env, check=True, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or exc.stdout or "").strip()[-800:]
            raise Unavailable(f"npm ci in {cache} failed: {tail}") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"npm ci in {cache} failed: {exc}") from exc
        stamp.write_text(digest)
    return cache


class LiteServer:
    """``node serve.mjs`` from an installed cache folder: in memory, on a free port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port: int | None = None
        fd, log = tempfile.mkstemp(prefix="mds-timescaledb-lite-", suffix=".log")
        os.close(fd)
        self.log = Path(log)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def _output(self) -> str:
        return self.log.read_text(errors="replace")

    def start(self, wait: float = START_TIMEOUT) -> None:
        """Start and wait for ``listening <port>`` (loading the WASM takes ~5-10 s).

        Raises:
            Unavailable: The server exited or did not listen within ``wait`` seconds.
        """
        with open(self.log, "wb") as out:
            # stdin stays an open pipe: the server exits when it closes, i.e. with us.
            self.proc = subprocess.Popen(
                ["node", "serve.mjs", "0"], cwd=self.folder, stdin=subprocess.PIPE, stdout=out, stderr=out
            )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            match = _LISTENING.search(self._output())
            if match:
                self.port = int(match[1])
                return
            code = self.proc.poll()
            if code is not None:
                tail = self._output().strip()[-800:]
                self.stop()
                raise Unavailable(f"serve.mjs exited with {code}: {tail}")
            time.sleep(0.1)
        tail = self._output().strip()[-800:]
        self.stop()
        raise Unavailable(f"serve.mjs did not listen within {wait:g}s: {tail}")

    def died(self) -> str | None:
        """Why the server is gone, if it exited on its own (say, a crash in the WASM)."""
        if self.proc is None or self.proc.poll() is None:
            return None
        return f"serve.mjs exited with {self.proc.returncode}: {self._output().strip()[-1500:]}"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        self.log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def timescale_url() -> Iterator[str]:
    """The URL of an empty database with TimescaleDB available, for this session."""
    admin = os.environ.get("MDS_TEST_TIMESCALE_URL")
    if admin:
        why = check(admin)
        if why is not None:
            skip_or_fail(f"MDS_TEST_TIMESCALE_URL: {why}")
        url = asyncio.run(create_database(admin))
        try:
            yield url
        finally:
            asyncio.run(drop_database(admin, url))
        return
    try:
        server = LiteServer(install())
        server.start()
    except Unavailable as exc:
        skip_or_fail(f"no TimescaleDB: MDS_TEST_TIMESCALE_URL is not set and {exc}")
        raise AssertionError("unreachable") from exc
    try:
        why = check(server.url)
        if why is not None:
            skip_or_fail(f"the WASM TimescaleDB on port {server.port}: {why}")
        yield server.url
        # Tests that lost the server fail with connection errors; this says why.
        why = server.died()
        if why is not None:
            pytest.fail(f"the WASM TimescaleDB died during the session: {why}")
    finally:
        server.stop()


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m tests.timescale_support install")
    try:
        print(f"TimescaleDB (WASM) installed in {install()}")
    except Unavailable as exc:
        sys.exit(str(exc))
