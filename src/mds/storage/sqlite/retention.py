"""The :class:`~mds.storage.base.RetentionStore` part of the Sqlite store (issue 14).

Old bars go a few hundred symbols per write transaction, so a first pass over a large
database (months of 1m bars) never holds the single writer for long: live writes queue
behind one batch at most. Which symbols hold anything to delete is found by skipping
from one symbol to the next on the primary key (a loose index scan) with one probe each,
so nothing reads the bars one by one. Evidence of "no trades" older than the cutoff goes
too; it only ever mattered to gap scans of recent bars.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from mds.domain.models import Interval
from mds.storage.base import RetentionCount
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

#: Symbols per delete transaction.
_BATCH = 200

# The table names below are constants of this module, never input.
_BAR_TABLES = ("candles", "candle_history")
_EVIDENCE_TABLES = ("empty_evidence", "confirmed_empty")


def _symbols_sql(table: str) -> str:
    # Each step seeks the next symbol; one probe asks whether it has a row to delete.
    return f"""
WITH RECURSIVE syms(s) AS (
    SELECT MIN(symbol) FROM {table}
    UNION ALL
    SELECT (SELECT MIN(symbol) FROM {table} WHERE symbol > syms.s) FROM syms WHERE syms.s IS NOT NULL
)
SELECT s FROM syms
WHERE s IS NOT NULL AND EXISTS (SELECT 1 FROM {table} WHERE symbol = syms.s AND interval = :iv AND ts < :cut)
"""


def _affected(conn: sqlite3.Connection, params: dict[str, object]) -> list[str]:
    found: set[str] = set()
    for table in _BAR_TABLES:
        found.update(row[0] for row in conn.execute(_symbols_sql(table), params))
    return sorted(found)


def _delete_batch(
    conn: sqlite3.Connection, symbols: Sequence[str], params: dict[str, object]
) -> tuple[int, int]:
    batch = {**params, "syms": json.dumps(list(symbols))}
    counts = [
        conn.execute(
            f"DELETE FROM {table} WHERE symbol IN (SELECT value FROM json_each(:syms))"
            " AND interval = :iv AND ts < :cut",
            batch,
        ).rowcount
        for table in _BAR_TABLES
    ]
    return counts[0], counts[1]


def _delete_evidence(conn: sqlite3.Connection, params: dict[str, object]) -> None:
    for table in _EVIDENCE_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE interval = :iv AND ts < :cut", params)


class SqliteRetention:
    """The :class:`~mds.storage.base.RetentionStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def delete_bars_before(self, interval: Interval, cutoff: datetime) -> RetentionCount:
        # Bar times are whole seconds: ts < cutoff is ts < ceil(cutoff).
        params: dict[str, object] = {"iv": Interval(interval).value, "cut": -(-q.micros(cutoff) // 1_000_000)}
        symbols = await self.db.on_reader(lambda conn: _affected(conn, params))
        bars = history = 0
        for i in range(0, len(symbols), _BATCH):
            delete = functools.partial(_delete_batch, symbols=symbols[i : i + _BATCH], params=params)
            b, h = await self.db.transaction(delete)
            bars += b
            history += h
        await self.db.transaction(lambda conn: _delete_evidence(conn, params))
        return RetentionCount(bars, history)
