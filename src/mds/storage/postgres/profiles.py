"""Company profiles on PostgreSQL: :class:`~mds.storage.base.ProfileStore`.

Same contract as :mod:`mds.storage.sqlite.profiles`: one row per ``(symbol, as_of)``, a
second write at the same key replacing the first. A batch is one ``INSERT ... SELECT FROM
unnest(...)`` in one transaction; a page of symbols is read in one statement, a ``LATERAL``
backward seek of the primary key per symbol.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from mds.domain.models import ensure_utc
from mds.domain.profile import CompanyProfile
from mds.storage.postgres.connection import PostgresPool

_COLS = "symbol, as_of, provider, market_cap, shares_outstanding, currency, name, sector, industry, exchange"
_UPSERT = (
    f"INSERT INTO company_profiles ({_COLS})"
    " SELECT s, $2::timestamptz, p, m, sh, c, n, se, i, e FROM unnest("
    "$1::text[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]"
    ") AS u(s, p, m, sh, c, n, se, i, e)"
    " ON CONFLICT (symbol, as_of) DO UPDATE SET provider = EXCLUDED.provider,"
    " market_cap = EXCLUDED.market_cap, shares_outstanding = EXCLUDED.shares_outstanding,"
    " currency = EXCLUDED.currency, name = EXCLUDED.name, sector = EXCLUDED.sector,"
    " industry = EXCLUDED.industry, exchange = EXCLUDED.exchange"
)
_HISTORY = f"SELECT {_COLS} FROM company_profiles WHERE symbol = $1 ORDER BY as_of DESC LIMIT $2"


def _newest_sql(bounded: bool) -> str:
    # Per distinct symbol of $1, its newest row learned at or before $2 (the newest when no bound).
    bound = " AND p.as_of <= $2" if bounded else ""
    return (
        f"SELECT newest.* FROM (SELECT DISTINCT unnest($1::text[]) AS symbol) s CROSS JOIN LATERAL ("
        f" SELECT {_COLS} FROM company_profiles p WHERE p.symbol = s.symbol{bound}"
        " ORDER BY p.as_of DESC LIMIT 1) newest"
    )


def _profile(r: asyncpg.Record) -> CompanyProfile:
    return CompanyProfile(
        r["symbol"],
        r["provider"],
        r["market_cap"],
        r["shares_outstanding"],
        r["currency"],
        r["name"],
        r["sector"],
        r["industry"],
        r["exchange"],
        r["as_of"],
    )


class PostgresProfiles:
    """The :class:`~mds.storage.base.ProfileStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def write_profiles(self, profiles: Sequence[CompanyProfile], *, as_of: datetime) -> int:
        # One row per symbol: within a batch the last profile of a symbol is the one meant
        # (and one statement may not upsert a key twice).
        rows = list({p.symbol: p for p in profiles}.values())
        if not rows:
            return 0
        learned = ensure_utc(as_of)
        args = (
            [p.symbol for p in rows],
            learned,
            [p.provider for p in rows],
            [p.market_cap for p in rows],
            [p.shares_outstanding for p in rows],
            [p.currency for p in rows],
            [p.name for p in rows],
            [p.sector for p in rows],
            [p.industry for p in rows],
            [p.exchange for p in rows],
        )

        async def write(conn: asyncpg.Connection) -> int:
            async with conn.transaction():
                tag = await conn.execute(_UPSERT, *args)
            return int(tag.rsplit(" ", 1)[-1])

        return await self.db.write(write)

    async def profiles(
        self, symbols: Sequence[str], *, as_of: datetime | None = None
    ) -> dict[str, CompanyProfile]:
        if not symbols:
            return {}
        if as_of is None:
            rows = await self.db.fetch(_newest_sql(False), list(symbols))
        else:
            rows = await self.db.fetch(_newest_sql(True), list(symbols), ensure_utc(as_of))
        return {p.symbol: p for p in map(_profile, rows)}

    async def profile_history(self, symbol: str, *, limit: int = 100) -> list[CompanyProfile]:
        rows = await self.db.fetch(_HISTORY, symbol, max(0, limit))
        return [_profile(r) for r in rows]
