"""Company profiles on SQLite: :class:`~mds.storage.base.ProfileStore`.

Every profile learned is a row keyed by ``(symbol, as_of)``; a second write at the same key
replaces the first. ``as_of`` is epoch microseconds (``sql.py``). A page of symbols is read
in one statement: the symbols go in as one JSON array (no bound-variable limit), and per
symbol a correlated ``max(as_of)`` seeks the primary key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mds.domain.profile import CompanyProfile
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

_COLS = "symbol, as_of, provider, market_cap, shares_outstanding, currency, name, sector, industry, exchange"
_UPSERT = (
    f"INSERT INTO company_profiles ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (symbol, as_of) DO UPDATE SET provider = excluded.provider,"
    " market_cap = excluded.market_cap, shares_outstanding = excluded.shares_outstanding,"
    " currency = excluded.currency, name = excluded.name, sector = excluded.sector,"
    " industry = excluded.industry, exchange = excluded.exchange"
)
_P_COLS = ", ".join(f"p.{c.strip()}" for c in _COLS.split(","))
# Per distinct symbol of the JSON array, its newest row learned at or before the bound.
_NEWEST = (
    f"SELECT {_P_COLS} FROM (SELECT DISTINCT value AS symbol FROM json_each(?)) s"
    " JOIN company_profiles p ON p.symbol = s.symbol AND p.as_of = ("
    " SELECT max(b.as_of) FROM company_profiles b WHERE b.symbol = s.symbol AND b.as_of <= ?)"
)
_HISTORY = f"SELECT {_COLS} FROM company_profiles WHERE symbol = ? ORDER BY as_of DESC LIMIT ?"
_MAX_MICROS = 2**63 - 1


def _profile(r: tuple[Any, ...]) -> CompanyProfile:
    symbol, as_of, provider, market_cap, shares, currency, name, sector, industry, exchange = r
    return CompanyProfile(
        symbol,
        provider,
        market_cap,
        shares,
        currency,
        name,
        sector,
        industry,
        exchange,
        q.from_micros(as_of),
    )


def _params(p: CompanyProfile, stamp: int) -> tuple[Any, ...]:
    return (
        p.symbol,
        stamp,
        p.provider,
        p.market_cap,
        p.shares_outstanding,
        p.currency,
        p.name,
        p.sector,
        p.industry,
        p.exchange,
    )


class SqliteProfiles:
    """The :class:`~mds.storage.base.ProfileStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def write_profiles(self, profiles: Sequence[CompanyProfile], *, as_of: datetime) -> int:
        stamp = q.micros(as_of)
        # One row per symbol: within a batch the last profile of a symbol is the one meant.
        params = [_params(p, stamp) for p in {p.symbol: p for p in profiles}.values()]
        if not params:
            return 0

        def write(conn: sqlite3.Connection) -> int:
            conn.executemany(_UPSERT, params)
            return len(params)

        return await self.db.transaction(write)

    async def profiles(
        self, symbols: Sequence[str], *, as_of: datetime | None = None
    ) -> dict[str, CompanyProfile]:
        if not symbols:
            return {}
        bound = _MAX_MICROS if as_of is None else q.micros(as_of)
        params = (json.dumps(list(symbols)), bound)
        rows = await self.db.on_reader(lambda conn: conn.execute(_NEWEST, params).fetchall())
        return {p.symbol: p for p in map(_profile, rows)}

    async def profile_history(self, symbol: str, *, limit: int = 100) -> list[CompanyProfile]:
        params = (symbol, max(0, limit))
        rows = await self.db.on_reader(lambda conn: conn.execute(_HISTORY, params).fetchall())
        return [_profile(r) for r in rows]
