"""open_store: DATABASE_URL to Store."""

from __future__ import annotations

from pathlib import Path

import pytest

from mds.errors import ConfigError
from mds.storage.factory import open_store
from mds.storage.sqlite import SqliteStore


async def test_sqlite_file_creates_parent_dirs(tmp_path: Path) -> None:
    target = tmp_path / "var" / "deep" / "mds.db"
    store = open_store(f"sqlite:///{target}")
    assert isinstance(store, SqliteStore) and target.parent.is_dir()
    await store.open()
    try:
        await store.ping()
    finally:
        await store.close()
    assert target.exists()


async def test_sqlite_memory() -> None:
    store = open_store("sqlite:///:memory:")
    assert isinstance(store, SqliteStore) and store.path == ":memory:"
    await store.open()
    await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unknown scheme"),
        ("sqlite:///", "no path"),
    ],
)
def test_refused_urls_name_the_setting(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        open_store(url)
    assert info.value.setting == "DATABASE_URL"


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db"])
def test_postgres_urls_build_a_postgres_store(url: str) -> None:
    from mds.storage.postgres import PostgresStore

    store = open_store(url, pool_min=2, pool_max=7, statement_timeout_ms=1500, retry_max_seconds=3)
    assert isinstance(store, PostgresStore)
    assert (store.pool_min, store.pool_max, store.statement_timeout_ms, store.retry_max_seconds) == (
        2,
        7,
        1500,
        3.0,
    )
