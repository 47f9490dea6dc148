"""Build the Store a ``DATABASE_URL`` names."""

from __future__ import annotations

from pathlib import Path

from mds.errors import ConfigError
from mds.storage.base import Store
from mds.storage.sqlite import SqliteStore

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://", "postgresql+asyncpg://")


def open_store(database_url: str) -> Store:
    """Construct (not yet open) the store for ``database_url``; ``await store.open()`` next.

    ``sqlite:///var/mds.db`` is a path relative to the working directory and
    ``sqlite:////srv/mds.db`` an absolute one (SQLAlchemy's convention); the file's
    directory is created. ``sqlite:///:memory:`` is a private in-memory database.

    Raises:
        ConfigError: The URL's scheme is unknown, the path is empty, or it names
            PostgreSQL, which is not available yet.
    """
    url = database_url.strip()
    if url.startswith(_POSTGRES):
        raise ConfigError("DATABASE_URL", "PostgreSQL support arrives with the production-backends issue")
    if not url.startswith(_SQLITE):
        raise ConfigError(
            "DATABASE_URL", "expected sqlite:///<path> or sqlite:///:memory:, got an unknown scheme"
        )
    target = url[len(_SQLITE) :]
    if "?" in target:
        raise ConfigError("DATABASE_URL", "query parameters are not supported for sqlite URLs")
    if not target:
        raise ConfigError("DATABASE_URL", "sqlite URL has no path (sqlite:///<path>)")
    if target == ":memory:":
        return SqliteStore(":memory:")
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("DATABASE_URL", f"cannot create {path.parent}: {exc}") from exc
    return SqliteStore(path)
