"""Reconciliation results on SQLite: :class:`~mds.storage.base.QualityStore`.

``checked_at`` is epoch microseconds, bar times epoch seconds (``sql.py``). The re-check
list reads ``confirmed_empty`` (owned by :mod:`mds.storage.sqlite.continuity`) through its
``(interval, ts)`` index; it never writes it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mds.domain.models import Interval
from mds.reconcile.records import DiffKind, Disagreement, EmptyMinute, QualityScore
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

_SCORE_COLS = (
    "provider, symbol, interval, checked_at, start_ts, end_ts, compared, faults, unresolved, against"
)
_INSERT_SCORE = f"INSERT OR REPLACE INTO quality_scores ({_SCORE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_DIS_COLS = (
    "checked_at, provider, other_provider, symbol, interval, ts, kind, field,"
    " stored_value, other_value, diff, blamed, note"
)
_INSERT_DIS = (
    f"INSERT INTO quality_disagreements ({_DIS_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _score(row: tuple[Any, ...]) -> QualityScore:
    provider, symbol, interval, checked, start, end, compared, faults, unresolved, against = row
    return QualityScore(
        provider,
        symbol,
        Interval(interval),
        q.from_micros(checked),
        q.from_secs(start),
        q.from_secs(end),
        compared,
        faults,
        unresolved,
        against,
    )


def _disagreement(row: tuple[Any, ...]) -> Disagreement:
    checked, provider, other, symbol, interval, ts, kind, field, stored, other_v, diff, blamed, note = row
    return Disagreement(
        q.from_micros(checked),
        provider,
        other,
        symbol,
        Interval(interval),
        q.from_secs(ts),
        DiffKind(kind),
        field,
        stored,
        other_v,
        diff,
        blamed,
        note,
    )


class SqliteQuality:
    """The :class:`~mds.storage.base.QualityStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def write_quality(
        self, scores: Sequence[QualityScore], disagreements: Sequence[Disagreement]
    ) -> None:
        score_rows = [
            (
                s.provider,
                s.symbol,
                Interval(s.interval).value,
                q.micros(s.checked_at),
                q.secs(s.start),
                q.secs(s.end),
                s.compared,
                s.faults,
                s.unresolved,
                s.against,
            )
            for s in scores
        ]
        dis_rows = [
            (
                q.micros(d.checked_at),
                d.provider,
                d.other_provider,
                d.symbol,
                Interval(d.interval).value,
                q.secs(d.ts),
                DiffKind(d.kind).value,
                d.field,
                d.stored_value,
                d.other_value,
                d.diff,
                d.blamed,
                d.note,
            )
            for d in disagreements
        ]
        if not score_rows and not dis_rows:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(_INSERT_SCORE, score_rows)
            conn.executemany(_INSERT_DIS, dis_rows)

        await self.db.transaction(write)

    async def quality_scores(
        self,
        *,
        provider: str | None = None,
        symbol: str | None = None,
        interval: Interval | None = None,
    ) -> list[QualityScore]:
        where, params = _filters(
            ("provider = ?", provider),
            ("symbol = ?", symbol),
            ("interval = ?", None if interval is None else Interval(interval).value),
        )
        sql = (
            f"SELECT {_SCORE_COLS} FROM (SELECT {_SCORE_COLS}, row_number() OVER"
            " (PARTITION BY provider, symbol, interval ORDER BY checked_at DESC) AS newest"
            f" FROM quality_scores{where}) WHERE newest = 1 ORDER BY provider, symbol, interval"
        )
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [_score(r) for r in rows]

    async def quality_disagreements(
        self,
        *,
        provider: str | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[Disagreement]:
        if limit <= 0:
            return []
        where, params = _filters(
            ("provider = ?", provider),
            ("symbol = ?", symbol),
            ("checked_at >= ?", None if since is None else q.micros(since)),
        )
        if provider is not None:  # either side: the first clause is the provider's
            where = where.replace("provider = ?", "(provider = ? OR other_provider = ?)", 1)
            params.insert(0, provider)
        sql = (
            f"SELECT {_DIS_COLS} FROM quality_disagreements{where}"
            " ORDER BY checked_at DESC, ts, field, id LIMIT ?"
        )
        params.append(limit)
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [_disagreement(r) for r in rows]

    async def delete_quality_before(self, cutoff: datetime) -> int:
        t = q.micros(cutoff)

        def delete(conn: sqlite3.Connection) -> int:
            a = conn.execute("DELETE FROM quality_scores WHERE checked_at < ?", (t,)).rowcount
            b = conn.execute("DELETE FROM quality_disagreements WHERE checked_at < ?", (t,)).rowcount
            return int(a + b)

        return await self.db.transaction(delete)

    async def bar_rows(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[tuple[int, float, float, float, float, float, str]]:
        sql = f"SELECT ts, open, high, low, close, volume, provider FROM candles WHERE {q.RANGE} ORDER BY ts"
        params = (symbol, Interval(interval).value, q.secs(start), q.secs(end))
        return await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())

    async def empty_minutes(
        self, interval: Interval, start: datetime, end: datetime, *, limit: int = 10_000
    ) -> list[EmptyMinute]:
        if limit <= 0:
            return []
        iv = Interval(interval)
        sql = (
            "SELECT symbol, ts, providers FROM confirmed_empty"
            " WHERE interval = ? AND ts >= ? AND ts < ? ORDER BY symbol, ts LIMIT ?"
        )
        params = (iv.value, q.secs(start), q.secs(end), limit)
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [
            EmptyMinute(r[0], iv, q.from_secs(r[1]), tuple(p for p in r[2].split(",") if p)) for r in rows
        ]


def _filters(*clauses: tuple[str, object]) -> tuple[str, list[Any]]:
    """`` WHERE a AND b`` over the clauses whose value is not None, and their values."""
    used = [(c, v) for c, v in clauses if v is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in used), [v for _, v in used]
