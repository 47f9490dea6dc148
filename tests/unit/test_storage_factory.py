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
        ("postgresql://u@h/db", "production-backends"),
        ("postgres://u@h/db", "production-backends"),
        ("mysql://u@h/db", "unknown scheme"),
        ("sqlite:///", "no path"),
    ],
)
def test_refused_urls_name_the_setting(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        open_store(url)
    assert info.value.setting == "DATABASE_URL"
