"""Corporate actions on SQLite: :class:`~mds.storage.base.CorporateActionStore`.

A version of an action is only ever added: a restated action (a new ratio or amount) is a
new row with the later ``as_of``, and an announcement that repeats the current terms stores
nothing, so the knowledge time of an action stays the first time MDS learned it.
``as_of``/``detected_at`` are epoch microseconds (``sql.py``), dates ISO text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from mds.domain.actions import (
    ActionKey,
    ActionType,
    CorporateAction,
    SuspectedAction,
    action_key,
    last_per_key,
    restated,
)
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

_COLS = "symbol, type, ex_date, as_of, ratio, amount, currency, declared_date, record_date, pay_date, source"
_INSERT = (
    f"INSERT INTO corporate_actions ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
# Per (type, ex_date), the newest version learned by the bound time.
_CURRENT = (
    f"SELECT {_COLS} FROM corporate_actions a WHERE symbol = ? AND as_of = ("
    " SELECT max(as_of) FROM corporate_actions b"
    " WHERE b.symbol = a.symbol AND b.type = a.type AND b.ex_date = a.ex_date AND b.as_of <= ?)"
)
_SUSPECT_COLS = "symbol, session, previous_close, open, ratio, detected_at"
_MAX_MICROS = 2**63 - 1


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _undate(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _action(r: tuple[Any, ...]) -> CorporateAction:
    symbol, kind, ex_date, as_of, ratio, amount, currency, declared, record, pay, source = r
    return CorporateAction(
        symbol,
        ActionType(kind),
        date.fromisoformat(ex_date),
        ratio,
        amount,
        currency,
        _undate(declared),
        _undate(record),
        _undate(pay),
        source,
        q.from_micros(as_of),
    )


def _current(conn: sqlite3.Connection, symbol: str, as_of_us: int) -> list[CorporateAction]:
    rows = conn.execute(_CURRENT + " ORDER BY ex_date, type", (symbol, as_of_us)).fetchall()
    return [_action(r) for r in rows]


class SqliteActions:
    """The :class:`~mds.storage.base.CorporateActionStore` part of :class:`~mds.storage.sqlite.SqliteStore`."""

    db: SqliteConnections

    async def write_corporate_actions(
        self, actions: Sequence[CorporateAction], *, as_of: datetime
    ) -> list[CorporateAction]:
        stamp = q.micros(as_of)
        learned = q.from_micros(stamp)

        def write(conn: sqlite3.Connection) -> list[CorporateAction]:
            current: dict[ActionKey, CorporateAction] = {}
            loaded: set[str] = set()
            out: list[CorporateAction] = []
            for action in last_per_key(actions):
                if action.symbol not in loaded:
                    loaded.add(action.symbol)
                    current.update((action_key(a), a) for a in _current(conn, action.symbol, _MAX_MICROS))
                new = restated(current, action, learned)
                if new is not None:
                    conn.execute(_INSERT, _params(new, stamp))
                    out.append(new)
            return out

        if not actions:
            return []
        return await self.db.transaction(write)

    async def corporate_actions(
        self,
        symbol: str,
        *,
        as_of: datetime | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> list[CorporateAction]:
        bound = _MAX_MICROS if as_of is None else q.micros(as_of)
        sql = _CURRENT
        params: list[Any] = [symbol, bound]
        if start is not None:
            sql += " AND ex_date >= ?"
            params.append(start.isoformat())
        if end is not None:
            sql += " AND ex_date <= ?"
            params.append(end.isoformat())
        sql += " ORDER BY ex_date, type"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [_action(r) for r in rows]

    async def corporate_action_symbols(self, *, learned_since: datetime | None = None) -> dict[str, datetime]:
        sql = "SELECT symbol, max(as_of) FROM corporate_actions"
        params: list[Any] = []
        if learned_since is not None:
            sql += " WHERE as_of >= ?"
            params.append(q.micros(learned_since))
        sql += " GROUP BY symbol ORDER BY symbol"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return {s: q.from_micros(t) for s, t in rows}

    async def record_suspected_actions(self, rows: Sequence[SuspectedAction]) -> int:
        params = [
            (r.symbol, r.session.isoformat(), r.previous_close, r.open, r.ratio, q.micros(r.detected_at))
            for r in rows
        ]
        if not params:
            return 0
        sql = f"INSERT INTO suspected_actions ({_SUSPECT_COLS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        return int(await self.db.transaction(lambda conn: conn.executemany(sql, params).rowcount))

    async def suspected_actions(
        self, *, symbol: str | None = None, limit: int = 100
    ) -> list[SuspectedAction]:
        sql = f"SELECT {_SUSPECT_COLS} FROM suspected_actions"
        params: list[Any] = []
        if symbol is not None:
            sql += " WHERE symbol = ?"
            params.append(symbol)
        sql += " ORDER BY session DESC, symbol LIMIT ?"
        params.append(max(0, limit))
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [
            SuspectedAction(s, date.fromisoformat(d), pc, o, r, q.from_micros(t))
            for s, d, pc, o, r, t in rows
        ]

    async def clear_suspected_actions(self, symbol: str, sessions: Sequence[date]) -> int:
        params = [(symbol, d.isoformat()) for d in sessions]
        if not params:
            return 0
        sql = "DELETE FROM suspected_actions WHERE symbol = ? AND session = ?"
        return int(await self.db.transaction(lambda conn: conn.executemany(sql, params).rowcount))


def _params(a: CorporateAction, stamp: int) -> tuple[Any, ...]:
    return (
        a.symbol,
        a.type.value,
        a.ex_date.isoformat(),
        stamp,
        a.ratio,
        a.amount,
        a.currency,
        _day(a.declared_date),
        _day(a.record_date),
        _day(a.pay_date),
        a.source,
    )
