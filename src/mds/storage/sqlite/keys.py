"""API keys on SQLite: :class:`~mds.storage.base.KeyStore`."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from mds.access.keys import ApiKey, Role
from mds.errors import Conflict
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

_COLUMNS = "name, role, key_prefix, created_at, revoked_at"


def _key(row: tuple[Any, ...]) -> ApiKey:
    name, role, prefix, created, revoked = row
    return ApiKey(
        name, Role(role), prefix, q.from_micros(created), q.from_micros(revoked) if revoked else None
    )


class SqliteKeys:
    """The :class:`~mds.storage.base.KeyStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def create_api_key(self, key: ApiKey, *, key_hash: str) -> None:
        row = (key.name, key.role.value, key_hash, key.prefix, q.micros(key.created_at))

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO api_keys (name, role, key_hash, key_prefix, created_at) VALUES (?, ?, ?, ?, ?)",
                    row,
                )
            except sqlite3.IntegrityError:
                raise Conflict(
                    "api key", key.name, f"an active API key is already called {key.name!r}"
                ) from None

        await self.db.transaction(run)

    async def api_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        sql = f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY name, created_at"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql).fetchall())
        return [_key(r) for r in rows]

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        sql = f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ?"
        row = await self.db.on_reader(lambda conn: conn.execute(sql, (key_hash,)).fetchone())
        return _key(row) if row else None

    async def revoke_api_key(self, name: str, *, now: datetime) -> ApiKey | None:
        def run(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(
                f"UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL RETURNING {_COLUMNS}",
                (q.micros(now), name),
            ).fetchone()
            return row

        row = await self.db.transaction(run)
        return _key(row) if row else None
