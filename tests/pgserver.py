"""PostgreSQL for tests: find a server, or start a throwaway one; one fresh database per test.

Where the server comes from, in order:

1. ``MDS_TEST_DATABASE_URL`` (must answer; it is the admin connection, databases are
   created on it);
2. ``postgresql://postgres@127.0.0.1:5432/postgres`` if it answers;
3. a throwaway instance from the installed binaries (``initdb``/``pg_ctl`` on PATH), in a
   temporary directory on a free port, run as the ``postgres`` (or ``nobody``) user when
   the tests run as root, because ``initdb`` refuses root.

Otherwise the reason is reported and callers skip (``tests.conftest.skip_or_fail``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class Unavailable(Exception):
    """No PostgreSQL server could be found or started; the message says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def answers(url: str, timeout: float = 3.0) -> str | None:
    """None when ``url`` accepts a connection, else why not."""
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


class Throwaway:
    """A private PostgreSQL cluster in a temporary directory, on its own port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mds-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._user: str | None = None
        if os.geteuid() == 0:
            for candidate in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    pw = pwd.getpwnam(candidate)
                    os.chown(self.root, pw.pw_uid, pw.pw_gid)
                    self._user = candidate
                    break
            if self._user is None:
                raise Unavailable("running as root and neither a postgres nor a nobody user exists")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        cmd = list(argv)
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or exc.stdout or "").strip()[-500:]
            raise Unavailable(f"{' '.join(argv[:2])} failed: {tail}") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"{' '.join(argv[:2])} failed: {exc}") from exc

    def init(self) -> None:
        for binary in ("initdb", "pg_ctl"):
            if shutil.which(binary) is None:
                raise Unavailable(f"{binary} is not on PATH")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(Unavailable):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PgProvider:
    """Finds (or starts) a server once per session, lazily, and remembers why not."""

    def __init__(self) -> None:
        self._url: str | None = None
        self._reason: str | None = None
        self._throwaway: Throwaway | None = None

    async def admin_url(self) -> str:
        """The admin URL of a server that answers.

        Raises:
            Unavailable: With every reason gathered along the way.
        """
        if self._url is not None:
            return self._url
        if self._reason is not None:
            raise Unavailable(self._reason)
        reasons: list[str] = []
        env = os.environ.get("MDS_TEST_DATABASE_URL")
        if env:
            why = await answers(env)
            if why is None:
                self._url = env
                return env
            reasons.append(f"MDS_TEST_DATABASE_URL does not answer ({why})")
        else:
            why = await answers(DEFAULT_URL)
            if why is None:
                self._url = DEFAULT_URL
                return DEFAULT_URL
            reasons.append(f"{DEFAULT_URL} does not answer ({why})")
            try:
                server = Throwaway()
                self._throwaway = server
                server.init()
                server.start()
                why = await answers(server.url, timeout=10)
                if why is not None:
                    raise Unavailable(f"the throwaway server does not answer ({why})")
                self._url = server.url
                return server.url
            except Unavailable as exc:
                reasons.append(f"throwaway server: {exc}")
        self._reason = "no PostgreSQL: " + "; ".join(reasons)
        raise Unavailable(self._reason)

    def close(self) -> None:
        if self._throwaway is not None:
            self._throwaway.destroy()
            self._throwaway = None


async def create_database(admin_url: str) -> str:
    """Create ``mds_test_<uuid>`` and return its URL."""
    name = f"mds_test_{uuid.uuid4().hex}"
    conn = await asyncpg.connect(admin_url)
    try:
        # A database name cannot be a bind parameter; this one is generated above.
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    assert name.startswith("mds_test_"), name
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
