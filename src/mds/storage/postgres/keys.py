"""API keys on PostgreSQL: :class:`~mds.storage.base.KeyStore`."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from mds.access.keys import ApiKey, Role
from mds.errors import Conflict
from mds.storage.postgres.connection import PostgresPool

_COLUMNS = "name, role, key_prefix, created_at, revoked_at"


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(row["name"], Role(row["role"]), row["key_prefix"], row["created_at"], row["revoked_at"])


class PostgresKeys:
    """The :class:`~mds.storage.base.KeyStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def create_api_key(self, key: ApiKey, *, key_hash: str) -> None:
        async def run(conn: asyncpg.Connection) -> bool:
            # DO NOTHING rather than catching the violation: write() may repeat this after
            # a lost commit, and finding our own hash then means the insert happened.
            inserted = await conn.fetchval(
                "INSERT INTO api_keys (name, role, key_hash, key_prefix, created_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
                key.name,
                key.role.value,
                key_hash,
                key.prefix,
                key.created_at,
            )
            if inserted is not None:
                return True
            return bool(await conn.fetchval("SELECT 1 FROM api_keys WHERE key_hash = $1", key_hash))

        if not await self.db.write(run):
            raise Conflict("api key", key.name, f"an active API key is already called {key.name!r}")

    async def api_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY name, created_at")
        return [_key(r) for r in rows]

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = await self.db.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash)
        return _key(row) if row else None

    async def revoke_api_key(self, name: str, *, now: datetime) -> ApiKey | None:
        row = await self.db.write(
            lambda conn: conn.fetchrow(
                f"UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL"
                f" RETURNING {_COLUMNS}",
                name,
                now,
            )
        )
        return _key(row) if row else None
