"""Versioned migrations: ``NNNN_name.sql`` files applied in order, each exactly once.

Written by hand rather than taken from Alembic because MDS has no ORM and no models to
autogenerate from; plain numbered SQL files per backend are all it needs. Discovery and
ordering (:func:`discover`) are backend-neutral; :func:`apply_sqlite` is the SQLite runner
and :func:`apply_postgres` the PostgreSQL one (asyncpg).

Each migration runs inside its own transaction together with the row that records it in
``schema_migrations(version, name, applied_at)``, so a failing file leaves nothing behind
and a second run applies nothing. Migration files must not contain ``BEGIN``/``COMMIT``:
the runner owns the transaction.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

from mds.errors import StorageError

if TYPE_CHECKING:
    import asyncpg

_FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

SQLITE_MIGRATIONS = "mds.storage.migrations.sqlite"
POSTGRES_MIGRATIONS = "mds.storage.migrations.postgres"
# Applied only where the timescaledb extension is available, with a ledger of their own
# so that the core versions (and schema_migrations) are the same in both modes.
TIMESCALEDB_MIGRATIONS = "mds.storage.migrations.postgres.timescaledb"
PG_LEDGERS = ("schema_migrations", "schema_migrations_timescaledb")
# pg_advisory_xact_lock key every MDS migrator takes; any constant works if it is shared.
PG_MIGRATION_LOCK = 0x6D64735F6D6967  # "mds_mig"

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL  -- epoch microseconds UTC
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file.

    Attributes:
        version: The four-digit prefix, e.g. ``"0001"``; the order of application.
        name: The rest of the file name without ``.sql``, e.g. ``"initial"``.
        filename: The file's name, used in error messages.
        sql: The file's text.
    """

    version: str
    name: str
    filename: str
    sql: str


def discover(source: str | Path | Traversable) -> list[Migration]:
    """Read every ``NNNN_name.sql`` file in a package or directory, in version order.

    Args:
        source: A dotted package name (migrations shipped as package data) or a directory.

    Returns:
        The migrations sorted by version.

    Raises:
        StorageError: A ``.sql`` file is misnamed or two files share a version; both are
            mistakes that silently skipping would hide.
    """
    root: Path | Traversable = files(source) if isinstance(source, str) else source
    found: dict[str, Migration] = {}
    for entry in root.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILENAME.match(entry.name)
        if match is None:
            raise StorageError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        version = match["version"]
        if version in found:
            raise StorageError(
                f"migrations {found[version].filename!r} and {entry.name!r} share version {version}"
            )
        found[version] = Migration(version, match["name"], entry.name, entry.read_text("utf-8"))
    return [found[v] for v in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """Split a script into single statements.

    ``Connection.executescript`` would be simpler, but it commits any open transaction
    before it runs, which would break the one-transaction-per-migration rule. Splitting
    with ``sqlite3.complete_statement`` keeps semicolons inside strings, comments and
    trigger bodies where they belong.
    """
    statements: list[str] = []
    buffer = ""
    pieces = sql.split(";")
    for piece in pieces[:-1]:
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statements.append(buffer.strip())
            buffer = ""
    buffer += pieces[-1]
    if _has_code(buffer):
        statements.append(buffer.strip())
    return statements


def _has_code(statement: str) -> bool:
    """Whether anything but comments, whitespace and semicolons is left."""
    without_block = re.sub(r"/\*.*?\*/", "", statement, flags=re.S)
    without_line = re.sub(r"--[^\n]*", "", without_block)
    return bool(without_line.replace(";", "").strip())


def applied_versions(conn: sqlite3.Connection) -> set[str]:
    """Versions recorded in ``schema_migrations`` (creating the ledger if it is missing)."""
    conn.execute(_CREATE_LEDGER)
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def apply_sqlite(conn: sqlite3.Connection, migrations: Iterable[Migration]) -> list[str]:
    """Apply the migrations not yet recorded, in order, one transaction each.

    The connection must be in autocommit mode (``isolation_level=None``) so that the
    explicit ``BEGIN IMMEDIATE`` here is the only transaction control. ``IMMEDIATE`` takes
    the write lock up front, and the ledger is re-read under it, so two processes starting
    together cannot both apply the same file.

    Args:
        conn: An open SQLite connection in autocommit mode.
        migrations: Candidates, usually :func:`discover`'s result.

    Returns:
        The versions applied by this call, in order; empty when already up to date.

    Raises:
        StorageError: A migration failed; its transaction was rolled back and the message
            names the file. Migrations before it stay applied.
    """
    try:
        done = applied_versions(conn)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read schema_migrations: {exc}") from exc
    applied: list[str] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            already = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if already is None:
                for statement in split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time_ns() // 1000),
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"migration {migration.filename} failed: {exc}") from exc
    return applied


async def apply_postgres(
    conn: asyncpg.Connection, migrations: Iterable[Migration], *, ledger: str = "schema_migrations"
) -> list[str]:
    """Apply the migrations not yet recorded in ``ledger``, in order, one transaction each.

    Each transaction first takes ``pg_advisory_xact_lock(PG_MIGRATION_LOCK)`` and re-reads
    the ledger under it, so two processes migrating at once apply every file exactly once
    (the second waits, then finds it done). Creating the ledger happens under the same
    lock because two concurrent ``CREATE TABLE IF NOT EXISTS`` can still collide.

    Args:
        conn: An asyncpg connection outside any transaction.
        migrations: Candidates, usually :func:`discover`'s result.
        ledger: One of :data:`PG_LEDGERS`.

    Returns:
        The versions applied by this call, in order; empty when already up to date.

    Raises:
        StorageError: A migration failed; its transaction was rolled back and the message
            names the file. Connection-level errors propagate unchanged so that the caller
            can retry (every step is idempotent).
    """
    import asyncpg

    from mds.storage.postgres.connection import is_transient

    if ledger not in PG_LEDGERS:
        raise ValueError(f"unknown migration ledger {ledger!r}")
    # ``ledger`` is one of two constants checked above; values are always parameters.
    create = (
        f"CREATE TABLE IF NOT EXISTS {ledger} (version text PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done: set[str] = set()
    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", ledger):
        done = {r[0] for r in await conn.fetch(f"SELECT version FROM {ledger}")}
    applied: list[str] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", PG_MIGRATION_LOCK)
                await conn.execute(create)
                already = await conn.fetchval(f"SELECT 1 FROM {ledger} WHERE version = $1", migration.version)
                if already is None:
                    # No arguments: the simple query protocol runs the whole file.
                    await conn.execute(migration.sql)
                    await conn.execute(
                        f"INSERT INTO {ledger} (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                    applied.append(migration.version)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            if is_transient(exc):
                raise
            raise StorageError(f"migration {migration.filename} failed: {exc}") from exc
    return applied
