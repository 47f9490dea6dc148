"""SqliteAnalysisStore: :class:`~mds.analysis.base.AnalysisStore` on SQLite.

On the tables of ``migrations/sqlite/0003_analysis.sql``, in the same database as the
bars; ``SqliteStore.open()`` applies that migration like every other.

Decision: it does not open connections of its own. It runs its statements through the
:class:`~mds.storage.sqlite.SqliteStore`'s connections (``store.db``: ``on_reader`` /
``transaction``), unchanged: so it shares the store's single writer thread (no second
writer fighting for SQLite's lock), works on ``:memory:`` databases, and needs no
lifecycle of its own (it lives as long as the store).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from mds.analysis.base import (
    CacheEntry,
    HistoryEntry,
    HistoryExists,
    RecordResult,
    headline,
    snapshot_json,
)
from mds.domain.models import Interval
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.store import SqliteStore

#: Symbols per reader hop in a bulk read, so other readers are not held up for long.
_CHUNK = 500

_LATEST = (
    "SELECT ts, open, high, low, close FROM candles"
    " WHERE symbol = ? AND interval = ? AND ts < ? ORDER BY ts DESC LIMIT ?"
)
# The same point-in-time rule as SqliteStore.read_bars(as_of=T): current rows learned by
# T plus superseded rows that were current at T.
_AS_OF = (
    "SELECT ts, open, high, low, close FROM candles"
    " WHERE symbol = ? AND interval = ? AND ts < ? AND as_of <= ?"
    " UNION ALL SELECT ts, open, high, low, close FROM candle_history"
    " WHERE symbol = ? AND interval = ? AND ts < ? AND as_of <= ? AND superseded_at > ?"
    " ORDER BY ts DESC LIMIT ?"
)
_EMPTY = np.zeros((0, 5))


class SqliteAnalysisStore:
    """:class:`~mds.analysis.base.AnalysisStore` on an open :class:`SqliteStore` (see the module docstring)."""

    def __init__(self, store: SqliteStore) -> None:
        self._db = store.db

    async def daily_bars(
        self, symbols: Sequence[str], end: datetime, *, as_of: datetime | None, limit: int
    ) -> dict[str, np.ndarray]:
        end_s, d1 = q.secs(end), Interval.D1.value
        t = None if as_of is None else q.micros(as_of)

        def read(conn: sqlite3.Connection, chunk: Sequence[str]) -> dict[str, np.ndarray]:
            out: dict[str, np.ndarray] = {}
            for sym in chunk:
                if t is None:
                    rows = conn.execute(_LATEST, (sym, d1, end_s, limit)).fetchall()
                else:
                    rows = conn.execute(_AS_OF, (sym, d1, end_s, t, sym, d1, end_s, t, t, limit)).fetchall()
                out[sym] = np.array(rows[::-1], dtype=np.float64) if rows else _EMPTY
            return out

        result: dict[str, np.ndarray] = {}
        for i in range(0, len(symbols), _CHUNK):
            chunk = symbols[i : i + _CHUNK]
            result.update(await self._db.on_reader(functools.partial(read, chunk=chunk)))
        return result

    async def put_cache(self, entries: Sequence[CacheEntry]) -> int:
        rows = [
            (
                e.symbol,
                e.analysis_type,
                e.snapshot.get("as_of"),
                q.micros(e.computed_at),
                q.micros(e.expires_at),
                int(e.snapshot.get("bars_used") or 0),
                *headline(e.snapshot),
                snapshot_json(e.snapshot),
            )
            for e in entries
        ]
        if not rows:
            return 0

        def run(conn: sqlite3.Connection) -> int:
            conn.executemany(
                "INSERT INTO market_analysis_cache (symbol, analysis_type, as_of_date, computed_at,"
                " expiry_timestamp, bars_used, ma_bucket, stage_label, stage_slope_pct,"
                " stage_dist_pct, raw_analysis) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (symbol, analysis_type) DO UPDATE SET"
                " as_of_date = excluded.as_of_date, computed_at = excluded.computed_at,"
                " expiry_timestamp = excluded.expiry_timestamp, bars_used = excluded.bars_used,"
                " ma_bucket = excluded.ma_bucket, stage_label = excluded.stage_label,"
                " stage_slope_pct = excluded.stage_slope_pct, stage_dist_pct = excluded.stage_dist_pct,"
                " raw_analysis = excluded.raw_analysis",
                rows,
            )
            return len(rows)

        return await self._db.transaction(run)

    async def get_cache(self, symbol: str, analysis_type: str, *, now: datetime) -> CacheEntry | None:
        sql = (
            "SELECT computed_at, expiry_timestamp, raw_analysis FROM market_analysis_cache"
            " WHERE symbol = ? AND analysis_type = ? AND expiry_timestamp > ?"
        )
        params = (symbol, analysis_type, q.micros(now))
        row = await self._db.on_reader(lambda conn: conn.execute(sql, params).fetchone())
        if row is None:
            return None
        computed, expires, raw = row
        return CacheEntry(
            symbol, analysis_type, json.loads(raw), q.from_micros(computed), q.from_micros(expires)
        )

    @staticmethod
    def _history_row(e: HistoryEntry) -> tuple[Any, ...]:
        s = e.snapshot
        return (
            e.symbol,
            e.analysis_type,
            e.as_of_date,
            q.micros(e.recorded_at),
            int(s.get("bars_used") or 0),
            s.get("close"),
            s.get("rsi_14"),
            s.get("ma_bucket"),
            s.get("stage_label"),
            snapshot_json(s),
        )

    _INSERT_HISTORY = (
        "INSERT INTO market_analysis_history (symbol, analysis_type, as_of_date, recorded_at,"
        " bars_used, close, rsi_14, ma_bucket, stage_label, raw_analysis)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    async def insert_history(self, entry: HistoryEntry) -> None:
        row = self._history_row(entry)

        def run(conn: sqlite3.Connection) -> bool:
            try:
                conn.execute(self._INSERT_HISTORY, row)
            except sqlite3.IntegrityError:
                return False
            return True

        if not await self._db.transaction(run):
            raise HistoryExists(entry.symbol, entry.analysis_type, entry.as_of_date)

    async def record_history(self, entries: Sequence[HistoryEntry]) -> RecordResult:
        rows = [self._history_row(e) for e in entries]
        written: list[str] = []
        refused: list[str] = []

        def run(conn: sqlite3.Connection) -> None:
            for row in rows:
                # ON CONFLICT DO NOTHING: an existing row is never touched, only counted.
                cur = conn.execute(self._INSERT_HISTORY + " ON CONFLICT DO NOTHING", row)
                (written if cur.rowcount == 1 else refused).append(row[0])

        if rows:
            await self._db.transaction(run)
        return RecordResult(written, refused)

    _HISTORY_COLS = "symbol, analysis_type, as_of_date, raw_analysis, recorded_at"

    @staticmethod
    def _history(row: tuple[Any, ...]) -> HistoryEntry:
        sym, kind, day, raw, recorded = row
        return HistoryEntry(sym, kind, day, json.loads(raw), q.from_micros(recorded))

    async def get_history(self, symbol: str, analysis_type: str, as_of_date: str) -> HistoryEntry | None:
        sql = (
            f"SELECT {self._HISTORY_COLS} FROM market_analysis_history"
            " WHERE symbol = ? AND analysis_type = ? AND as_of_date = ?"
        )
        params = (symbol, analysis_type, as_of_date)
        row = await self._db.on_reader(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else self._history(row)

    async def list_history(self, symbol: str, analysis_type: str, start: str, end: str) -> list[HistoryEntry]:
        sql = (
            f"SELECT {self._HISTORY_COLS} FROM market_analysis_history"
            " WHERE symbol = ? AND analysis_type = ? AND as_of_date >= ? AND as_of_date <= ?"
            " ORDER BY as_of_date"
        )
        params = (symbol, analysis_type, start, end)
        rows = await self._db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [self._history(r) for r in rows]
