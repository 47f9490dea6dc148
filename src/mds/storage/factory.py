"""Build the Store a ``DATABASE_URL`` names, and the analysis store that goes with it."""

from __future__ import annotations

from pathlib import Path

from mds.analysis.base import AnalysisStore
from mds.errors import ConfigError, StorageError
from mds.storage.base import Store
from mds.storage.postgres import PostgresStore
from mds.storage.sqlite import SqliteStore

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://", "postgresql+asyncpg://")


def open_store(
    database_url: str,
    *,
    pool_min: int = 1,
    pool_max: int = 10,
    statement_timeout_ms: int = 30_000,
    retry_max_seconds: float = 60.0,
    live_reserved_connections: int = 0,
) -> Store:
    """Construct (not yet open) the store for ``database_url``; ``await store.open()`` next.

    ``sqlite:///var/mds.db`` is a path relative to the working directory and
    ``sqlite:////srv/mds.db`` an absolute one (SQLAlchemy's convention); the file's
    directory is created. ``sqlite:///:memory:`` is a private in-memory database.
    ``postgresql://`` (or ``postgres://``) URLs build a :class:`PostgresStore` with the
    pool, statement-timeout and outage-retry settings given (DB_POOL_MIN_SIZE,
    DB_POOL_MAX_SIZE, DB_STATEMENT_TIMEOUT_MS, DB_RETRY_MAX_SECONDS, LIVE_RESERVED_DB_CONNECTIONS);
    SQLite ignores them.

    Raises:
        ConfigError: The URL's scheme is unknown or the path is empty.
    """
    url = database_url.strip()
    if url.startswith(_POSTGRES):
        if pool_min < 0 or pool_max < 1 or pool_min > pool_max:
            raise ConfigError("DB_POOL_MIN_SIZE", "need 0 <= DB_POOL_MIN_SIZE <= DB_POOL_MAX_SIZE, max >= 1")
        return PostgresStore(
            url,
            pool_min=pool_min,
            pool_max=pool_max,
            statement_timeout_ms=statement_timeout_ms,
            retry_max_seconds=retry_max_seconds,
            live_reserved_connections=live_reserved_connections,
        )
    if not url.startswith(_SQLITE):
        raise ConfigError(
            "DATABASE_URL",
            "expected sqlite:///<path>, sqlite:///:memory: or postgresql://..., got an unknown scheme",
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


def analysis_store_for(store: object) -> AnalysisStore:
    """The analysis store that goes with a bar store (same database, same connections).

    Raises:
        StorageError: No analysis store exists for this kind of bar store.
    """
    # Imported here so a process that never analyses does not load the analysis stores.
    if isinstance(store, SqliteStore):
        from mds.storage.sqlite.analysis import SqliteAnalysisStore

        return SqliteAnalysisStore(store)
    if isinstance(store, PostgresStore):
        from mds.storage.postgres.analysis import PostgresAnalysisStore

        return PostgresAnalysisStore(store)
    raise StorageError(f"no analysis store for {type(store).__name__}")
