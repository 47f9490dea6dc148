"""Options metrics and macro factors on PostgreSQL: :class:`~mds.storage.base.OptionsMetricsStore`
and :class:`~mds.storage.base.MacroStore`.

Same contract as :mod:`mds.storage.sqlite.factors`: both tables only grow, and a row whose
key is stored already is left as it was. A batch is one ``INSERT ... SELECT FROM unnest``
of column arrays (one round trip however many rows); its command tag says how many were
new. A NaN value is stored as NULL, as on SQLite, and text is ordered byte-wise (``COLLATE
"C"``), as SQLite orders it, so the backends agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from mds.domain.macro import MacroRow
from mds.domain.models import ensure_utc
from mds.domain.options import OptionsMetricRow
from mds.storage.postgres.connection import PostgresPool

_OPTIONS_COLS = "symbol, as_of, metric, tenor, value, source"
_INSERT_OPTIONS = (
    f"INSERT INTO options_metrics ({_OPTIONS_COLS})"
    " SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::float8[], $6::text[])"
    " ON CONFLICT DO NOTHING"
)
_MACRO_COLS = "factor_key, date, value, realtime_start, as_of, source"
_INSERT_MACRO = (
    f"INSERT INTO macro_factors ({_MACRO_COLS})"
    " SELECT * FROM unnest($1::text[], $2::date[], $3::float8[], $4::date[], $5::timestamptz[], $6::text[])"
    " ON CONFLICT DO NOTHING"
)


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _inserted(tag: str) -> int:
    """Rows an ``INSERT 0 <n>`` command tag says were inserted."""
    return int(tag.rsplit(" ", 1)[-1])


def _options_row(r: asyncpg.Record) -> OptionsMetricRow:
    return OptionsMetricRow(r["symbol"], r["as_of"], r["metric"], r["tenor"], r["value"], r["source"])


def _macro_row(r: asyncpg.Record) -> MacroRow:
    return MacroRow(r["factor_key"], r["date"], r["value"], r["realtime_start"], r["as_of"], r["source"])


class PostgresFactors:
    """The :class:`~mds.storage.base.OptionsMetricsStore` and :class:`~mds.storage.base.MacroStore`
    parts of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    # -- options_metrics -------------------------------------------------------------
    async def write_options_metrics(self, rows: Sequence[OptionsMetricRow]) -> int:
        if not rows:
            return 0
        tag = await self.db.execute(
            _INSERT_OPTIONS,
            [r.symbol for r in rows],
            [ensure_utc(r.as_of) for r in rows],
            [r.metric for r in rows],
            [r.tenor for r in rows],
            [_number(r.value) for r in rows],
            [r.source for r in rows],
        )
        return _inserted(tag)

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
        sql = f"SELECT {_OPTIONS_COLS} FROM options_metrics WHERE symbol = $1"
        params: list[Any] = [symbol]
        for clause, value in (
            ("metric =", metric),
            ("tenor =", tenor),
            ("as_of >=", None if start is None else ensure_utc(start)),
            ("as_of <", None if end is None else ensure_utc(end)),
        ):
            if value is not None:
                params.append(value)
                sql += f" AND {clause} ${len(params)}"
        # The newest `limit` rows, turned oldest first below.
        params.append(limit)
        sql += f' ORDER BY as_of DESC, metric COLLATE "C" DESC, tenor COLLATE "C" DESC LIMIT ${len(params)}'
        rows = await self.db.fetch(sql, *params)
        return [_options_row(r) for r in reversed(rows)]

    async def latest_options_metrics(self, symbol: str) -> list[OptionsMetricRow]:
        rows = await self.db.fetch(
            f"SELECT {_OPTIONS_COLS} FROM options_metrics WHERE symbol = $1"
            " AND as_of = (SELECT max(as_of) FROM options_metrics WHERE symbol = $1)"
            ' ORDER BY metric COLLATE "C", tenor COLLATE "C"',
            symbol,
        )
        return [_options_row(r) for r in rows]

    # -- macro_factors ---------------------------------------------------------------
    async def write_macro_rows(self, rows: Sequence[MacroRow]) -> int:
        if not rows:
            return 0
        tag = await self.db.execute(
            _INSERT_MACRO,
            [r.factor_key for r in rows],
            [r.date for r in rows],
            [_number(r.value) for r in rows],
            [r.realtime_start for r in rows],
            [ensure_utc(r.as_of) for r in rows],
            [r.source for r in rows],
        )
        return _inserted(tag)

    async def macro_history(
        self,
        factor_key: str,
        *,
        start: date | None = None,
        end: date | None = None,
        as_of: date | None = None,
    ) -> list[MacroRow]:
        sql = f"SELECT DISTINCT ON (date) {_MACRO_COLS} FROM macro_factors WHERE factor_key = $1"
        params: list[Any] = [factor_key]
        for clause, value in (("date >=", start), ("date <=", end), ("realtime_start <=", as_of)):
            if value is not None:
                params.append(value)
                sql += f" AND {clause} ${len(params)}"
        # Per date, the vintage with the greatest realtime_start known by as_of.
        sql += " ORDER BY date, realtime_start DESC"
        rows = await self.db.fetch(sql, *params)
        return [_macro_row(r) for r in rows]

    async def macro_factor_keys(self) -> list[str]:
        rows = await self.db.fetch(
            'SELECT factor_key FROM macro_factors GROUP BY factor_key ORDER BY factor_key COLLATE "C"'
        )
        return [r[0] for r in rows]
