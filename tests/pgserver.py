"""PostgreSQL for tests: find a server, or start a throwaway one; one fresh database per test.

Where the server comes from, in order:

1. ``MDS_TEST_DATABASE_URL`` (must answer; it is the admin connection, databases are
   created on it);
2. ``postgresql://postgres@127.0.0.1:5432/postgres`` if it answers;
3. a throwaway instance from the installed binaries (``initdb``/``pg_ctl`` on PATH), in a
   temporary directory on a free port, run as the ``postgres`` (or ``nobody``) user when
   the tests run as root, because ``initdb`` refuses root.

Otherwise the reason is reported and callers skip (``tests.conftest.skip_or_fail``).

Per-test databases come in two kinds: empty (:func:`create_database`), for tests of
migration itself, and already migrated, cloned from a template database with
``CREATE DATABASE ... TEMPLATE`` (:func:`create_database` with ``template=``), which costs a
copy of its files instead of running every migration again. The template (:func:`migrated_template`)
is built once and then reused by every later run on the same server:

* its name carries a hash of what determines its content (:func:`migrations_fingerprint`:
  the PostgreSQL migration files and the runner), so a changed migration gets a template of
  its own, and two checkouts with different migrations (parallel CI runs, other sessions on
  this machine) never share one;
* it is migrated by ``PostgresStore.open()``, the code path the service takes, under a
  temporary name, then marked ``IS_TEMPLATE`` and ``ALLOW_CONNECTIONS false`` (nobody can
  connect to it, so no stray session can make a clone fail with "source database is being
  accessed by other users") and only then renamed to its final name: a template under that
  name is always complete;
* builders serialise on an advisory lock keyed by the name and look again once they hold it,
  so concurrent test runs build it once; a half-built leftover of a killed run keeps its
  temporary name and is dropped by the next builder;
* templates of other fingerprints that are more than a day old are dropped on the way (their
  checkouts are long gone, or they rebuild theirs: a clone whose template has vanished
  rebuilds it and tries again).

A clone still costs a ``CREATE DATABASE`` (tens to hundreds of milliseconds, most of it
waiting for the disk), so :meth:`PgProvider.migrated_database` hands out one made ahead of
time and at once starts making the next in a background thread (:class:`_Prefetch`), while
the test runs; the spare left at the end of the session is dropped.

``MDS_TEST_PG_TEMPLATE=0`` turns templates off: "migrated" databases are then created empty
and migrated by the store under test, as before templates.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import inspect
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.helpers import free_port

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TEMPLATE_PREFIX = "mds_tpl_"
# Templates of another fingerprint older than this are dropped when a template is built.
STALE_TEMPLATE_SECONDS = 24 * 3600


class Unavailable(Exception):
    """No PostgreSQL server could be found or started; the message says why."""


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
        # fsync off is safe here: these tests kill the server, never the machine, so what
        # reached the OS survives. synchronous_commit must stay on: off acknowledges a
        # commit before its WAL is written at all, and an immediate stop then loses it,
        # which is exactly what the chaos tests check never happens.
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
            " -c full_page_writes=off"
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
        self._template: str | None = None
        self._prefetch: _Prefetch | None = None

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

    async def template(self) -> str:
        """The name of the migrated template database on :meth:`admin_url`'s server.

        Looked up (built when missing) on first use, then remembered for the session.
        """
        if self._template is None:
            self._template = await migrated_template(await self.admin_url())
        return self._template

    async def migrated_database(self) -> str:
        """URL of a new ``mds_test_<uuid>`` database cloned from the migrated template.

        Made ahead of time (see the module docstring). ``MDS_TEST_PG_TEMPLATE=0`` gives an
        empty one instead, which the store under test migrates when it opens (the way
        without templates, to compare or to rule them out).
        """
        try:
            return await self._take()
        except asyncpg.InvalidCatalogNameError:
            # Another run dropped the template as stale (see the module docstring).
            self._stop_prefetch()
            self._template = None
            return await self._take()

    async def _take(self) -> str:
        if self._prefetch is None:
            admin = await self.admin_url()
            template = None if os.environ.get("MDS_TEST_PG_TEMPLATE", "1") == "0" else await self.template()
            self._prefetch = _Prefetch(lambda: create_database(admin, template=template))
        return await asyncio.wrap_future(self._prefetch.take())

    def _stop_prefetch(self) -> None:
        prefetch, self._prefetch = self._prefetch, None
        if prefetch is not None and self._url is not None:
            prefetch.close(self._url)

    def close(self) -> None:
        self._stop_prefetch()
        if self._throwaway is not None:
            self._throwaway.destroy()
            self._throwaway = None


class _Prefetch:
    """Makes databases one ahead, on an event loop of its own in a daemon thread.

    ``take()`` returns the database made while the previous test ran (or, the first time,
    one being made now) and starts on the next. Only the test's thread calls ``take`` and
    ``close``; tests run one at a time, each on its own event loop, hence the thread's own.
    """

    def __init__(self, make: Callable[[], Awaitable[str]]) -> None:
        self._make = make
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-prefetch", daemon=True)
        self._thread.start()
        self._next: concurrent.futures.Future[str] | None = None

    def _start(self) -> concurrent.futures.Future[str]:
        async def make() -> str:
            return await self._make()

        return asyncio.run_coroutine_threadsafe(make(), self._loop)

    def take(self) -> concurrent.futures.Future[str]:
        taken = self._next if self._next is not None else self._start()
        self._next = self._start()
        return taken

    def close(self, admin_url: str) -> None:
        """Drop the spare database (waiting for it if it is still being made); stop."""
        spare, self._next = self._next, None
        if spare is not None:
            with contextlib.suppress(Exception):
                url = spare.result(timeout=120)
                asyncio.run_coroutine_threadsafe(drop_database(admin_url, url), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()


async def create_database(admin_url: str, *, template: str | None = None) -> str:
    """Create ``mds_test_<uuid>`` (empty, or a copy of database ``template``); return its URL."""
    name = f"mds_test_{uuid.uuid4().hex}"
    conn = await asyncpg.connect(admin_url)
    try:
        # A database name cannot be a bind parameter; both names are generated here.
        clause = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()
    return with_database(admin_url, name)


def migrations_fingerprint() -> str:
    """Hash of everything that decides a migrated database's content.

    The PostgreSQL migration files (core and TimescaleDB) and the source of the runner that
    applies them (``mds.storage.migrate``: ledger tables, transactions).
    """
    from mds.storage import migrate

    digest = hashlib.sha256()
    for package in (migrate.POSTGRES_MIGRATIONS, migrate.TIMESCALEDB_MIGRATIONS):
        for m in migrate.discover(package):
            digest.update(f"{package}/{m.filename}\0{m.sql}\0".encode())
    digest.update(inspect.getsource(migrate).encode())
    return digest.hexdigest()[:16]


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def migrated_template(admin_url: str) -> str:
    """The name of a complete, migrated template database on this server; built if missing.

    See the module docstring for how it is named, built and shared.
    """
    name = TEMPLATE_PREFIX + migrations_fingerprint()
    conn = await asyncpg.connect(admin_url)
    try:
        if await _is_template(conn, name):
            return name
        # Session-level: held across the CREATE/ALTER DATABASE statements, which cannot
        # run inside a transaction.
        await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(name))
        try:
            if await _is_template(conn, name):
                return name  # another run built it while this one waited
            await _drop_leftovers(conn, name)
            await _build_template(admin_url, conn, name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(name))
    finally:
        await conn.close()
    return name


async def _is_template(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT datistemplate FROM pg_database WHERE datname = $1", name))


async def _build_template(admin_url: str, conn: asyncpg.Connection, name: str) -> None:
    from mds.storage.postgres import PostgresStore

    building = f"{name}_b{uuid.uuid4().hex[:8]}"
    await conn.execute(f'CREATE DATABASE "{building}"')
    try:
        # The build time, for _drop_leftovers; a database's comment goes with a RENAME.
        await conn.execute(f"COMMENT ON DATABASE \"{building}\" IS 'mds test template {int(time.time())}'")
        store = PostgresStore(with_database(admin_url, building), pool_min=1, pool_max=1)
        await store.open()  # migrates, as every process of the service does on start
        await store.close()
        # The pool's backends may still be exiting; RENAME and CREATE DATABASE ... TEMPLATE
        # need none left (they wait 5 s, then fail), and after ALLOW_CONNECTIONS false none
        # can come.
        await conn.execute(f'ALTER DATABASE "{building}" WITH ALLOW_CONNECTIONS false')
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", building
        )
        await conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        # Last: a database named ``name`` that is a template is complete (``_is_template``).
        await conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
    except BaseException:
        for db in (building, name):
            with contextlib.suppress(Exception):
                await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        raise


async def _drop_leftovers(conn: asyncpg.Connection, name: str) -> None:
    """Drop what a killed builder of ``name`` left, and other fingerprints' old templates.

    Runs while holding ``name``'s lock, so a database named ``name`` that is not a template
    yet, or one being built for ``name``, is a killed builder's. Another fingerprint's
    database (template or leftover) goes once it is :data:`STALE_TEMPLATE_SECONDS` old. Best
    effort: one that another run is cloning right now stays until next time.
    """
    rows = await conn.fetch(
        "SELECT datname, datistemplate, shobj_description(oid, 'pg_database') AS note"
        " FROM pg_database WHERE starts_with(datname, $1)",
        TEMPLATE_PREFIX,
    )
    now = time.time()
    for row in rows:
        db, is_template, note = row["datname"], row["datistemplate"], row["note"] or ""
        if db == name or db.startswith(name + "_b"):
            stale = not is_template
        else:
            built = note.rsplit(" ", 1)[-1]
            stale = built.isdigit() and now - int(built) > STALE_TEMPLATE_SECONDS
        if not stale:
            continue
        with contextlib.suppress(asyncpg.PostgresError):
            if is_template:
                await conn.execute(f'ALTER DATABASE "{db}" WITH IS_TEMPLATE false')
            await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


async def drop_database(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    assert name.startswith("mds_test_"), name
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
