"""Reconciliation results on PostgreSQL: :class:`~mds.storage.base.QualityStore`.

Same contract as :mod:`mds.storage.sqlite.quality`. Each table's batch is one
``INSERT ... SELECT FROM unnest`` of column arrays, both in one transaction. Text is
ordered byte-wise (``COLLATE "C"``), as SQLite orders it, so the backends agree. The
re-check list reads ``confirmed_empty`` (owned by :mod:`mds.storage.postgres.continuity`)
through its ``(interval, ts)`` index; it never writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from mds.domain.models import Interval, ensure_utc
from mds.reconcile.records import DiffKind, Disagreement, EmptyMinute, QualityScore
from mds.storage.postgres.connection import PostgresPool

_SCORE_COLS = (
    "provider, symbol, interval, checked_at, start_ts, end_ts, compared, faults, unresolved, against"
)
_INSERT_SCORE = (
    f"INSERT INTO quality_scores ({_SCORE_COLS})"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],"
    " $6::timestamptz[], $7::int[], $8::int[], $9::int[], $10::text[])"
    " ON CONFLICT (provider, symbol, interval, checked_at) DO UPDATE SET"
    " start_ts = EXCLUDED.start_ts, end_ts = EXCLUDED.end_ts, compared = EXCLUDED.compared,"
    " faults = EXCLUDED.faults, unresolved = EXCLUDED.unresolved, against = EXCLUDED.against"
)
_DIS_COLS = (
    "checked_at, provider, other_provider, symbol, interval, ts, kind, field,"
    " stored_value, other_value, diff, blamed, note"
)
_INSERT_DIS = (
    f"INSERT INTO quality_disagreements ({_DIS_COLS})"
    " SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::timestamptz[], $7::text[], $8::text[], $9::float8[], $10::float8[], $11::float8[],"
    " $12::text[], $13::text[])"
)


def _score(r: asyncpg.Record) -> QualityScore:
    return QualityScore(
        r["provider"],
        r["symbol"],
        Interval(r["interval"]),
        r["checked_at"],
        r["start_ts"],
        r["end_ts"],
        r["compared"],
        r["faults"],
        r["unresolved"],
        r["against"],
    )


def _disagreement(r: asyncpg.Record) -> Disagreement:
    return Disagreement(
        r["checked_at"],
        r["provider"],
        r["other_provider"],
        r["symbol"],
        Interval(r["interval"]),
        r["ts"],
        DiffKind(r["kind"]),
        r["field"],
        r["stored_value"],
        r["other_value"],
        r["diff"],
        r["blamed"],
        r["note"],
    )


def _deleted(tag: str) -> int:
    return int(tag.rsplit(" ", 1)[-1])


class PostgresQuality:
    """The :class:`~mds.storage.base.QualityStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def write_quality(
        self, scores: Sequence[QualityScore], disagreements: Sequence[Disagreement]
    ) -> None:
        if not scores and not disagreements:
            return
        # One key twice in a batch would make ON CONFLICT DO UPDATE fail; the later wins,
        # as SQLite's INSERT OR REPLACE has it.
        latest = {
            (s.provider, s.symbol, Interval(s.interval).value, ensure_utc(s.checked_at)): s for s in scores
        }
        score_args = [
            [k[0] for k in latest],
            [k[1] for k in latest],
            [k[2] for k in latest],
            [k[3] for k in latest],
            [ensure_utc(s.start) for s in latest.values()],
            [ensure_utc(s.end) for s in latest.values()],
            [s.compared for s in latest.values()],
            [s.faults for s in latest.values()],
            [s.unresolved for s in latest.values()],
            [s.against for s in latest.values()],
        ]
        d = disagreements
        dis_args = [
            [ensure_utc(x.checked_at) for x in d],
            [x.provider for x in d],
            [x.other_provider for x in d],
            [x.symbol for x in d],
            [Interval(x.interval).value for x in d],
            [ensure_utc(x.ts) for x in d],
            [DiffKind(x.kind).value for x in d],
            [x.field for x in d],
            [x.stored_value for x in d],
            [x.other_value for x in d],
            [x.diff for x in d],
            [x.blamed for x in d],
            [x.note for x in d],
        ]

        async def write(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                if latest:
                    await conn.execute(_INSERT_SCORE, *score_args)
                if d:
                    await conn.execute(_INSERT_DIS, *dis_args)

        await self.db.write(write)

    async def quality_scores(
        self,
        *,
        provider: str | None = None,
        symbol: str | None = None,
        interval: Interval | None = None,
    ) -> list[QualityScore]:
        where, args = _filters(
            ("provider = {}", provider),
            ("symbol = {}", symbol),
            ("interval = {}", None if interval is None else Interval(interval).value),
        )
        sql = (
            f"SELECT {_SCORE_COLS} FROM (SELECT DISTINCT ON (provider, symbol, interval) {_SCORE_COLS}"
            f" FROM quality_scores{where} ORDER BY provider, symbol, interval, checked_at DESC) newest"
            ' ORDER BY provider COLLATE "C", symbol COLLATE "C", interval COLLATE "C"'
        )
        return [_score(r) for r in await self.db.fetch(sql, *args)]

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
        where, args = _filters(
            ("(provider = {0} OR other_provider = {0})", provider),
            ("symbol = {}", symbol),
            ("checked_at >= {}", None if since is None else ensure_utc(since)),
        )
        args.append(limit)
        sql = (
            f"SELECT {_DIS_COLS} FROM quality_disagreements{where}"
            f' ORDER BY checked_at DESC, ts, field COLLATE "C", id LIMIT ${len(args)}'
        )
        return [_disagreement(r) for r in await self.db.fetch(sql, *args)]

    async def delete_quality_before(self, cutoff: datetime) -> int:
        t = ensure_utc(cutoff)

        async def delete(conn: asyncpg.Connection) -> int:
            async with conn.transaction():
                a = await conn.execute("DELETE FROM quality_scores WHERE checked_at < $1", t)
                b = await conn.execute("DELETE FROM quality_disagreements WHERE checked_at < $1", t)
            return _deleted(a) + _deleted(b)

        return await self.db.write(delete)

    async def bar_rows(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[tuple[int, float, float, float, float, float, str]]:
        sql = (
            "SELECT extract(epoch FROM ts)::bigint, open, high, low, close, volume, provider FROM candles"
            " WHERE symbol = $1 AND interval = $2 AND ts >= $3 AND ts < $4 ORDER BY ts"
        )
        rows = await self.db.fetch(sql, symbol, Interval(interval).value, ensure_utc(start), ensure_utc(end))
        return [tuple(r) for r in rows]

    async def empty_minutes(
        self, interval: Interval, start: datetime, end: datetime, *, limit: int = 10_000
    ) -> list[EmptyMinute]:
        if limit <= 0:
            return []
        iv = Interval(interval)
        sql = (
            "SELECT symbol, ts, providers FROM confirmed_empty"
            ' WHERE interval = $1 AND ts >= $2 AND ts < $3 ORDER BY symbol COLLATE "C", ts LIMIT $4'
        )
        rows = await self.db.fetch(sql, iv.value, ensure_utc(start), ensure_utc(end), limit)
        return [
            EmptyMinute(r["symbol"], iv, r["ts"], tuple(p for p in r["providers"].split(",") if p))
            for r in rows
        ]


def _filters(*clauses: tuple[str, object]) -> tuple[str, list[Any]]:
    """`` WHERE a AND b`` over the clauses whose value is not None, numbered ``$1, $2 ...``;
    a clause names its one parameter ``{}`` or ``{0}`` (used more than once)."""
    parts: list[str] = []
    args: list[Any] = []
    for clause, value in clauses:
        if value is None:
            continue
        args.append(value)
        parts.append(clause.format(f"${len(args)}"))
    return (" WHERE " + " AND ".join(parts) if parts else ""), args
