"""Backends the Store contract suite runs against.

Every test in ``test_store_*.py`` takes the ``store`` fixture, so it runs once per
entry in ``BACKENDS``: a factory for an unopened store and a raw ``fetch`` for the few
checks the protocol gives no method for. PostgreSQL entries get a fresh database per test
(``mds_test_<uuid>``, dropped afterwards) on the server ``tests.pgserver`` finds, cloned
from a migrated template (``CREATE DATABASE ... TEMPLATE``) while the previous test ran, so
a test pays neither for the migrations nor for waiting on the copy; ``PostgresStore.open()``
still runs its migration step, which finds nothing to do. Tests of migration itself take
``pg_empty_database``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mds.storage.base import Store
from mds.storage.postgres import PostgresStore
from mds.storage.sqlite import SqliteStore
from tests.conftest import skip_or_fail
from tests.pgserver import PgProvider, Unavailable, create_database, drop_database


@dataclass(frozen=True)
class Backend:
    """How to build one kind of store and peek at its tables.

    ``make`` gets the test's temporary directory and, for PostgreSQL backends, the URL of
    the test's own database ("" otherwise).
    """

    make: Callable[[Path, str], Store]
    fetch: Callable[[Store, str], Awaitable[list[tuple[Any, ...]]]]
    postgres: bool = False


async def _sqlite_fetch(store: Store, sql: str) -> list[tuple[Any, ...]]:
    assert isinstance(store, SqliteStore)
    return await store.db.on_reader(lambda conn: conn.execute(sql).fetchall())


async def _postgres_fetch(store: Store, sql: str) -> list[tuple[Any, ...]]:
    assert isinstance(store, PostgresStore)
    return [tuple(r) for r in await store.db.fetch(sql)]


BACKENDS: dict[str, Backend] = {
    "sqlite": Backend(lambda tmp, _: SqliteStore(tmp / "mds.db"), _sqlite_fetch),
    "sqlite-memory": Backend(lambda tmp, _: SqliteStore(":memory:"), _sqlite_fetch),
    "postgres": Backend(lambda _, url: PostgresStore(url, pool_max=4), _postgres_fetch, postgres=True),
}


@pytest.fixture(scope="session")
def pg_provider() -> Iterator[PgProvider]:
    """The session's PostgreSQL server, found or started on first use."""
    provider = PgProvider()
    yield provider
    provider.close()


async def _admin(pg_provider: PgProvider) -> str:
    try:
        return await pg_provider.admin_url()
    except Unavailable as exc:
        skip_or_fail(str(exc))
        raise AssertionError("unreachable") from exc


@pytest.fixture
async def pg_database(pg_provider: PgProvider) -> AsyncIterator[tuple[str, str]]:
    """``(admin_url, url)`` of a fresh, already migrated database of this test's own."""
    admin = await _admin(pg_provider)
    url = await pg_provider.migrated_database()
    try:
        yield admin, url
    finally:
        await drop_database(admin, url)


@pytest.fixture
async def pg_empty_database(pg_provider: PgProvider) -> AsyncIterator[tuple[str, str]]:
    """``(admin_url, url)`` of a fresh, empty database (no migration applied yet)."""
    admin = await _admin(pg_provider)
    url = await create_database(admin)
    try:
        yield admin, url
    finally:
        await drop_database(admin, url)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture
async def store(backend: Backend, tmp_path: Path, pg_provider: PgProvider) -> AsyncIterator[Store]:
    """An opened, migrated, empty store; closed after the test."""
    admin = url = ""
    if backend.postgres:
        admin = await _admin(pg_provider)
        url = await pg_provider.migrated_database()
    s = backend.make(tmp_path, url)
    try:
        await s.open()
        yield s
    finally:
        await s.close()
        if url:
            await drop_database(admin, url)


@pytest.fixture
def fetch(backend: Backend, store: Store) -> Callable[[str], Awaitable[list[tuple[Any, ...]]]]:
    """Run a read-only SQL query on the store under test (for schema-level checks)."""
    return lambda sql: backend.fetch(store, sql)
