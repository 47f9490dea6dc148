"""Where analysis snapshots live: MarketAnalysisCache and MarketAnalysisHistory (seed 004).

Kept apart from the :class:`~mds.storage.base.Store` protocol on purpose, so the
PostgreSQL store could land without waiting for analysis: :class:`AnalysisStore` is its
own small protocol. :class:`SqliteAnalysisStore` implements it on the tables of
``migrations/sqlite/0003_analysis.sql`` in the same SQLite database as the bars, and
:class:`~mds.analysis.pg_store.PostgresAnalysisStore` on those of
``migrations/postgres/0003_analysis.sql``; :func:`analysis_store_for` picks the one that
goes with a bar store, and ``tests/contract/test_analysis_store_contract.py`` holds both
to the same assertions.

Decision: ``SqliteAnalysisStore`` does not open connections of its own. It runs its
statements through the :class:`~mds.storage.sqlite.SqliteStore`'s reader and writer
helpers (``_on_reader`` / ``_transaction``), unchanged: so it shares the store's single
writer thread (no second writer fighting for SQLite's lock), works on ``:memory:``
databases, and needs no lifecycle of its own (it lives as long as the store). The
migration is applied by ``SqliteStore.open()`` like every other.

It also reads daily bars in bulk (:meth:`SqliteAnalysisStore.daily_bars`), straight into
arrays, with exactly the point-in-time rule of ``SqliteStore.read_bars``; building 8,000
snapshots through ``Bar`` objects would spend most of its time making tuples.

History rows are immutable: writing a key that exists raises :class:`HistoryExists`
(the bulk writer reports such keys as refused instead), and triggers refuse UPDATE and
DELETE at the database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import orjson

from mds.domain.models import Interval
from mds.errors import Conflict, StorageError
from mds.storage import _sqlite_sql as q
from mds.storage.sqlite import SqliteStore

#: The analysis type of the technical snapshot (the history key's middle part).
TECHNICAL = "technical"
#: Symbols per reader hop in a bulk read, so other readers are not held up for long.
_CHUNK = 500


class HistoryExists(Conflict):
    """A history row with this (symbol, analysis_type, as_of_date) is already recorded.

    History is immutable: the first record stands. The API answers 409.
    """

    def __init__(self, symbol: str, analysis_type: str, as_of_date: str) -> None:
        super().__init__(
            "analysis history",
            f"{symbol}/{analysis_type}/{as_of_date}",
            f"history for {symbol} {analysis_type} {as_of_date} is already recorded",
        )
        self.symbol = symbol
        self.analysis_type = analysis_type
        self.as_of_date = as_of_date


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached snapshot.

    Attributes:
        symbol: Ticker.
        analysis_type: E.g. ``"technical"``.
        snapshot: The snapshot dict (JSON-ready).
        computed_at: When it was computed (UTC).
        expires_at: When it stops being served (UTC).
    """

    symbol: str
    analysis_type: str
    snapshot: dict[str, Any]
    computed_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One immutable history row; ``as_of_date`` is the snapshot's ISO session date."""

    symbol: str
    analysis_type: str
    as_of_date: str
    snapshot: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class RecordResult:
    """Outcome of a bulk history write: keys written and keys refused (already there)."""

    written: list[str]
    refused: list[str]


class AnalysisStore(Protocol):
    async def daily_bars(
        self, symbols: Sequence[str], end: datetime, *, as_of: datetime | None, limit: int
    ) -> dict[str, np.ndarray]:
        """The newest ``limit`` daily bars with ``ts < end`` per symbol, as MDS knew them
        at ``as_of`` (current revisions when None).

        Returns:
            Symbol -> ``(k, 5)`` float64 array of epoch-second ts, open, high, low, close
            in time order; symbols without bars map to an empty ``(0, 5)`` array.
        """
        ...

    async def put_cache(self, entries: Sequence[CacheEntry]) -> int:
        """Replace the cached snapshot of each (symbol, analysis_type); return how many."""
        ...

    async def get_cache(self, symbol: str, analysis_type: str, *, now: datetime) -> CacheEntry | None:
        """The cached snapshot, or None when there is none or it expired by ``now``."""
        ...

    async def insert_history(self, entry: HistoryEntry) -> None:
        """Record one row. Raises HistoryExists when its key is already recorded."""
        ...

    async def record_history(self, entries: Sequence[HistoryEntry]) -> RecordResult:
        """Record rows whose key is new; report the others as refused (never overwrite)."""
        ...

    async def get_history(self, symbol: str, analysis_type: str, as_of_date: str) -> HistoryEntry | None: ...

    async def list_history(self, symbol: str, analysis_type: str, start: str, end: str) -> list[HistoryEntry]:
        """Rows with ``start <= as_of_date <= end`` (ISO dates), oldest first."""
        ...


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


def _dumps(snapshot: dict[str, Any]) -> str:
    return orjson.dumps(snapshot).decode()


def _headline(s: dict[str, Any]) -> tuple[Any, ...]:
    return (s.get("ma_bucket"), s.get("stage_label"), s.get("stage_slope_pct"), s.get("stage_dist_pct"))


class SqliteAnalysisStore:
    """:class:`AnalysisStore` on an open :class:`SqliteStore` (see the module docstring)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

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
            result.update(await self._store._on_reader(lambda conn, c=chunk: read(conn, c)))
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
                *_headline(e.snapshot),
                _dumps(e.snapshot),
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

        return await self._store._transaction(run)

    async def get_cache(self, symbol: str, analysis_type: str, *, now: datetime) -> CacheEntry | None:
        sql = (
            "SELECT computed_at, expiry_timestamp, raw_analysis FROM market_analysis_cache"
            " WHERE symbol = ? AND analysis_type = ? AND expiry_timestamp > ?"
        )
        params = (symbol, analysis_type, q.micros(now))
        row = await self._store._on_reader(lambda conn: conn.execute(sql, params).fetchone())
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
            _dumps(s),
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

        if not await self._store._transaction(run):
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
            await self._store._transaction(run)
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
        row = await self._store._on_reader(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else self._history(row)

    async def list_history(self, symbol: str, analysis_type: str, start: str, end: str) -> list[HistoryEntry]:
        sql = (
            f"SELECT {self._HISTORY_COLS} FROM market_analysis_history"
            " WHERE symbol = ? AND analysis_type = ? AND as_of_date >= ? AND as_of_date <= ?"
            " ORDER BY as_of_date"
        )
        params = (symbol, analysis_type, start, end)
        rows = await self._store._on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [self._history(r) for r in rows]


def analysis_store_for(store: object) -> AnalysisStore:
    """The analysis store that goes with a bar store.

    Raises:
        StorageError: No analysis store exists for this kind of bar store.
    """
    if isinstance(store, SqliteStore):
        return SqliteAnalysisStore(store)
    # Imported here so SQLite-only use never loads the asyncpg-specific module.
    from mds.analysis.pg_store import PostgresAnalysisStore
    from mds.storage.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        return PostgresAnalysisStore(store)
    raise StorageError(f"no analysis store for {type(store).__name__}")
