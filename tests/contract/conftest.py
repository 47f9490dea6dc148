"""Backends the Store contract suite runs against.

Every test in ``test_store_*.py`` takes the ``store`` fixture, so it runs once per
entry in ``BACKENDS``. Adding PostgreSQL is one entry here: a factory for an unopened
store and a raw ``fetch`` for the few checks the protocol gives no method for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mds.storage.base import Store
from mds.storage.sqlite import SqliteStore


@dataclass(frozen=True)
class Backend:
    """How to build one kind of store and peek at its tables."""

    make: Callable[[Path], Store]
    fetch: Callable[[Store, str], Awaitable[list[tuple[Any, ...]]]]


async def _sqlite_fetch(store: Store, sql: str) -> list[tuple[Any, ...]]:
    assert isinstance(store, SqliteStore)
    return await store._on_reader(lambda conn: conn.execute(sql).fetchall())


BACKENDS: dict[str, Backend] = {
    "sqlite": Backend(lambda tmp: SqliteStore(tmp / "mds.db"), _sqlite_fetch),
    "sqlite-memory": Backend(lambda tmp: SqliteStore(":memory:"), _sqlite_fetch),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture
async def store(backend: Backend, tmp_path: Path) -> AsyncIterator[Store]:
    """An opened, migrated, empty store; closed after the test."""
    s = backend.make(tmp_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def fetch(backend: Backend, store: Store) -> Callable[[str], Awaitable[list[tuple[Any, ...]]]]:
    """Run a read-only SQL query on the store under test (for schema-level checks)."""
    return lambda sql: backend.fetch(store, sql)
