"""PostgresAnalysisStore: :class:`~mds.analysis.base.AnalysisStore` on PostgreSQL.

The same contract as :class:`~mds.storage.sqlite.analysis.SqliteAnalysisStore`, on the
tables of ``migrations/postgres/0003_analysis.sql``, which ``PostgresStore.open()`` applies.

Decision: like its SQLite sibling it owns no connections. Every statement runs through
the :class:`~mds.storage.postgres.PostgresStore`'s pool (``store.db``: ``read`` /
``write``), so it shares the store's pool and lifetime and inherits its outage rules: a
read retries once and a write retries through an outage, and a failure surfaces as
``StorageError`` (the API's 503), never as a raw asyncpg error.

Statements are set-based: the bulk bar read is one ``LATERAL`` join over the symbol
array per chunk, and the bulk writes ``unnest`` column arrays into one INSERT. ``jsonb``
travels as JSON text both ways (orjson), which is asyncpg's default for the type.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import orjson

from mds.analysis.base import (
    CacheEntry,
    HistoryEntry,
    HistoryExists,
    RecordResult,
    headline,
    snapshot_json,
)
from mds.domain.models import Interval, ensure_utc
from mds.storage.postgres.connection import Job
from mds.storage.postgres.store import PostgresStore

#: Symbols per statement in a bulk read, so one statement stays well inside the
#: store's statement_timeout even on a cold cache.
_CHUNK = 1000
_EMPTY = np.zeros((0, 5))

# Per symbol, the newest $4 bars as one float8[k][5] array in time order (NULL when
# there are none): one array per symbol instead of k records to build. date_part, not
# extract, because extract returns numeric since PostgreSQL 14 and the cast costs.
_ROWS = "array_agg(ARRAY[date_part('epoch', b.ts), b.open, b.high, b.low, b.close] ORDER BY b.ts)"
_LATEST = (
    f"SELECT s.symbol, (SELECT {_ROWS} FROM ("
    " SELECT ts, open, high, low, close FROM candles"
    " WHERE symbol = s.symbol AND interval = $2 AND ts < $3 ORDER BY ts DESC LIMIT $4) b)"
    " FROM unnest($1::text[]) AS s(symbol)"
)
# The point-in-time rule of PostgresStore.read_bars(as_of=$5): current rows learned by
# then plus superseded rows that were current then.
_AS_OF = (
    f"SELECT s.symbol, (SELECT {_ROWS} FROM ("
    " SELECT ts, open, high, low, close FROM candles"
    " WHERE symbol = s.symbol AND interval = $2 AND ts < $3 AND as_of <= $5"
    " UNION ALL SELECT ts, open, high, low, close FROM candle_history"
    " WHERE symbol = s.symbol AND interval = $2 AND ts < $3 AND as_of <= $5 AND superseded_at > $5"
    " ORDER BY ts DESC LIMIT $4) b)"
    " FROM unnest($1::text[]) AS s(symbol)"
)

_PUT_CACHE = (
    "INSERT INTO market_analysis_cache (symbol, analysis_type, as_of_date, computed_at,"
    " expiry_timestamp, bars_used, ma_bucket, stage_label, stage_slope_pct, stage_dist_pct,"
    " raw_analysis)"
    " SELECT symbol, analysis_type, as_of_date, computed_at, expiry_timestamp, bars_used,"
    " ma_bucket, stage_label, stage_slope_pct, stage_dist_pct, raw::jsonb"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],"
    " $6::integer[], $7::text[], $8::text[], $9::float8[], $10::float8[], $11::text[])"
    " AS t(symbol, analysis_type, as_of_date, computed_at, expiry_timestamp, bars_used,"
    " ma_bucket, stage_label, stage_slope_pct, stage_dist_pct, raw)"
    " ON CONFLICT (symbol, analysis_type) DO UPDATE SET"
    " as_of_date = excluded.as_of_date, computed_at = excluded.computed_at,"
    " expiry_timestamp = excluded.expiry_timestamp, bars_used = excluded.bars_used,"
    " ma_bucket = excluded.ma_bucket, stage_label = excluded.stage_label,"
    " stage_slope_pct = excluded.stage_slope_pct, stage_dist_pct = excluded.stage_dist_pct,"
    " raw_analysis = excluded.raw_analysis"
)
_GET_CACHE = (
    "SELECT computed_at, expiry_timestamp, raw_analysis FROM market_analysis_cache"
    " WHERE symbol = $1 AND analysis_type = $2 AND expiry_timestamp > $3"
)

_HISTORY_INTO = (
    "INSERT INTO market_analysis_history (symbol, analysis_type, as_of_date, recorded_at,"
    " bars_used, close, rsi_14, ma_bucket, stage_label, raw_analysis)"
)
_INSERT_HISTORY = (
    _HISTORY_INTO + " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)"
    " ON CONFLICT (symbol, analysis_type, as_of_date) DO NOTHING RETURNING true"
)
# ON CONFLICT DO NOTHING: an existing row is never touched; RETURNING names the new ones.
_RECORD_HISTORY = (
    _HISTORY_INTO + " SELECT symbol, analysis_type, as_of_date, recorded_at, bars_used, close,"
    " rsi_14, ma_bucket, stage_label, raw::jsonb"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::integer[],"
    " $6::float8[], $7::float8[], $8::text[], $9::text[], $10::text[])"
    " AS t(symbol, analysis_type, as_of_date, recorded_at, bars_used, close, rsi_14,"
    " ma_bucket, stage_label, raw)"
    " ON CONFLICT (symbol, analysis_type, as_of_date) DO NOTHING"
    " RETURNING symbol, analysis_type, as_of_date"
)
_HISTORY_COLS = "symbol, analysis_type, as_of_date, raw_analysis, recorded_at"
_GET_HISTORY = (
    f"SELECT {_HISTORY_COLS} FROM market_analysis_history"
    " WHERE symbol = $1 AND analysis_type = $2 AND as_of_date = $3"
)
# COLLATE "C": byte order, as SQLite compares text, whatever the database's collation.
_LIST_HISTORY = (
    f"SELECT {_HISTORY_COLS} FROM market_analysis_history"
    ' WHERE symbol = $1 AND analysis_type = $2 AND as_of_date COLLATE "C" >= $3'
    ' AND as_of_date COLLATE "C" <= $4 ORDER BY as_of_date COLLATE "C"'
)

_Key = tuple[str, str, str]


def _history_row(e: HistoryEntry) -> tuple[Any, ...]:
    s = e.snapshot
    return (
        e.symbol,
        e.analysis_type,
        e.as_of_date,
        ensure_utc(e.recorded_at),
        int(s.get("bars_used") or 0),
        s.get("close"),
        s.get("rsi_14"),
        s.get("ma_bucket"),
        s.get("stage_label"),
        snapshot_json(s),
    )


def _history(row: asyncpg.Record) -> HistoryEntry:
    sym, kind, day, raw, recorded = row
    return HistoryEntry(sym, kind, day, orjson.loads(raw), recorded)


class PostgresAnalysisStore:
    """:class:`~mds.analysis.base.AnalysisStore` on an open :class:`PostgresStore`.

    See the module docstring for how it uses the store.
    """

    def __init__(self, store: PostgresStore) -> None:
        self._db = store.db

    async def daily_bars(
        self, symbols: Sequence[str], end: datetime, *, as_of: datetime | None, limit: int
    ) -> dict[str, np.ndarray]:
        args: list[Any] = [Interval.D1.value, ensure_utc(end), limit]
        sql = _LATEST
        if as_of is not None:
            sql = _AS_OF
            args.append(ensure_utc(as_of))

        def fetch(chunk: list[str]) -> Job[list[asyncpg.Record]]:
            return lambda conn: conn.fetch(sql, chunk, *args)

        # Keys in the caller's order: the engine lays its batch out by it.
        result: dict[str, np.ndarray] = dict.fromkeys(symbols, _EMPTY)
        unique = list(result)
        for i in range(0, len(unique), _CHUNK):
            rows = await self._db.read(fetch(unique[i : i + _CHUNK]))
            for sym, bars in rows:
                if bars is not None:
                    result[sym] = np.array(bars, dtype=np.float64)
        return result

    async def put_cache(self, entries: Sequence[CacheEntry]) -> int:
        if not entries:
            return 0
        # One upsert may not touch a row twice; the last entry of a key wins, as when
        # the entries are written one after the other.
        latest = {(e.symbol, e.analysis_type): e for e in entries}.values()
        heads = [headline(e.snapshot) for e in latest]
        columns = (
            [e.symbol for e in latest],
            [e.analysis_type for e in latest],
            [e.snapshot.get("as_of") for e in latest],
            [ensure_utc(e.computed_at) for e in latest],
            [ensure_utc(e.expires_at) for e in latest],
            [int(e.snapshot.get("bars_used") or 0) for e in latest],
            *([h[i] for h in heads] for i in range(4)),
            [snapshot_json(e.snapshot) for e in latest],
        )
        await self._db.write(lambda conn: conn.execute(_PUT_CACHE, *columns))
        return len(entries)

    async def get_cache(self, symbol: str, analysis_type: str, *, now: datetime) -> CacheEntry | None:
        stamp = ensure_utc(now)
        row = await self._db.read(lambda conn: conn.fetchrow(_GET_CACHE, symbol, analysis_type, stamp))
        if row is None:
            return None
        computed, expires, raw = row
        return CacheEntry(symbol, analysis_type, orjson.loads(raw), computed, expires)

    async def insert_history(self, entry: HistoryEntry) -> None:
        row = _history_row(entry)
        inserted = await self._db.write(lambda conn: conn.fetchval(_INSERT_HISTORY, *row))
        if not inserted:
            raise HistoryExists(entry.symbol, entry.analysis_type, entry.as_of_date)

    async def record_history(self, entries: Sequence[HistoryEntry]) -> RecordResult:
        written: list[str] = []
        refused: list[str] = []
        if not entries:
            return RecordResult(written, refused)
        # A key repeated within the batch: the first is offered, the rest are refused,
        # as when the rows are inserted one by one.
        first: dict[_Key, HistoryEntry] = {}
        for e in entries:
            first.setdefault((e.symbol, e.analysis_type, e.as_of_date), e)
        rows = [_history_row(e) for e in first.values()]
        columns = [list(col) for col in zip(*rows, strict=True)]
        returned = await self._db.write(lambda conn: conn.fetch(_RECORD_HISTORY, *columns))
        new = {(r[0], r[1], r[2]) for r in returned}
        seen: set[_Key] = set()
        for e in entries:
            key = (e.symbol, e.analysis_type, e.as_of_date)
            (written if key in new and key not in seen else refused).append(e.symbol)
            seen.add(key)
        return RecordResult(written, refused)

    async def get_history(self, symbol: str, analysis_type: str, as_of_date: str) -> HistoryEntry | None:
        row = await self._db.read(lambda conn: conn.fetchrow(_GET_HISTORY, symbol, analysis_type, as_of_date))
        return None if row is None else _history(row)

    async def list_history(self, symbol: str, analysis_type: str, start: str, end: str) -> list[HistoryEntry]:
        rows = await self._db.read(lambda conn: conn.fetch(_LIST_HISTORY, symbol, analysis_type, start, end))
        return [_history(r) for r in rows]
