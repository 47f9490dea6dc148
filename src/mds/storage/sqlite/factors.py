"""Options metrics and macro factors on SQLite: :class:`~mds.storage.base.OptionsMetricsStore`
and :class:`~mds.storage.base.MacroStore`.

Both tables only grow: a row whose key is stored already is left as it was (``ON CONFLICT
DO NOTHING``), so writing the same computation or the same vintage twice stores nothing
twice. ``as_of`` is epoch microseconds (``sql.py``), dates are ISO text. A NaN value is
stored as NULL (SQLite has no NaN, and a missing value is what it means).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from mds.domain.macro import MacroRow
from mds.domain.options import OptionsMetricRow
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

_OPTIONS_COLS = "symbol, as_of, metric, tenor, value, source"
_INSERT_OPTIONS = (
    f"INSERT INTO options_metrics ({_OPTIONS_COLS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_MACRO_COLS = "factor_key, date, value, realtime_start, as_of, source"
_INSERT_MACRO = f"INSERT INTO macro_factors ({_MACRO_COLS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _iso(day: date) -> str:
    # A function, not ``.isoformat()`` on the field: mypy reads MacroRow's annotations after
    # its ``date`` field as that field, so ``realtime_start`` would be left untyped.
    return day.isoformat()


def _options_row(row: tuple[Any, ...]) -> OptionsMetricRow:
    symbol, as_of, metric, tenor, value, source = row
    return OptionsMetricRow(symbol, q.from_micros(as_of), metric, tenor, value, source)


def _macro_row(row: tuple[Any, ...]) -> MacroRow:
    key, day, value, realtime_start, as_of, source = row
    return MacroRow(
        key, date.fromisoformat(day), value, date.fromisoformat(realtime_start), q.from_micros(as_of), source
    )


class SqliteFactors:
    """The :class:`~mds.storage.base.OptionsMetricsStore` and :class:`~mds.storage.base.MacroStore`
    parts of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    # -- options_metrics -------------------------------------------------------------
    async def write_options_metrics(self, rows: Sequence[OptionsMetricRow]) -> int:
        params = [(r.symbol, q.micros(r.as_of), r.metric, r.tenor, _number(r.value), r.source) for r in rows]
        if not params:
            return 0
        # executemany sums the rows each insert changed: a conflict changes none.
        return int(await self.db.transaction(lambda conn: conn.executemany(_INSERT_OPTIONS, params).rowcount))

    async def options_metrics_history(
        self,
        symbol: str,
        *,
        metric: str | None = None,
        tenor: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
    ) -> list[OptionsMetricRow]:
        if limit <= 0:
            return []
        sql = f"SELECT {_OPTIONS_COLS} FROM options_metrics WHERE symbol = ?"
        params: list[Any] = [symbol]
        for clause, value in (
            (" AND metric = ?", metric),
            (" AND tenor = ?", tenor),
            (" AND as_of >= ?", None if start is None else q.micros(start)),
            (" AND as_of < ?", None if end is None else q.micros(end)),
        ):
            if value is not None:
                sql += clause
                params.append(value)
        # The newest `limit` rows, turned oldest first below.
        sql += " ORDER BY as_of DESC, metric DESC, tenor DESC LIMIT ?"
        params.append(limit)
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [_options_row(r) for r in reversed(rows)]

    async def latest_options_metrics(self, symbol: str) -> list[OptionsMetricRow]:
        sql = (
            f"SELECT {_OPTIONS_COLS} FROM options_metrics WHERE symbol = ?"
            " AND as_of = (SELECT max(as_of) FROM options_metrics WHERE symbol = ?) ORDER BY metric, tenor"
        )
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, (symbol, symbol)).fetchall())
        return [_options_row(r) for r in rows]

    # -- macro_factors ---------------------------------------------------------------
    async def write_macro_rows(self, rows: Sequence[MacroRow]) -> int:
        params = [
            (
                r.factor_key,
                _iso(r.date),
                _number(r.value),
                _iso(r.realtime_start),
                q.micros(r.as_of),
                r.source,
            )
            for r in rows
        ]
        if not params:
            return 0
        return int(await self.db.transaction(lambda conn: conn.executemany(_INSERT_MACRO, params).rowcount))

    async def macro_history(
        self,
        factor_key: str,
        *,
        start: date | None = None,
        end: date | None = None,
        as_of: date | None = None,
    ) -> list[MacroRow]:
        where = "factor_key = ?"
        params: list[Any] = [factor_key]
        for clause, value in (
            (" AND date >= ?", start),
            (" AND date <= ?", end),
            (" AND realtime_start <= ?", as_of),
        ):
            if value is not None:
                where += clause
                params.append(value.isoformat())
        # Per date, the vintage with the greatest realtime_start known by as_of.
        sql = (
            f"SELECT {_MACRO_COLS} FROM (SELECT {_MACRO_COLS},"
            " row_number() OVER (PARTITION BY date ORDER BY realtime_start DESC) AS newest"
            f" FROM macro_factors WHERE {where}) WHERE newest = 1 ORDER BY date"
        )
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [_macro_row(r) for r in rows]

    async def macro_factor_keys(self) -> list[str]:
        sql = "SELECT DISTINCT factor_key FROM macro_factors ORDER BY factor_key"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql).fetchall())
        return [r[0] for r in rows]
