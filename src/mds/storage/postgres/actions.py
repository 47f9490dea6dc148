"""Corporate actions on PostgreSQL: :class:`~mds.storage.base.CorporateActionStore`.

Same contract as :mod:`mds.storage.sqlite.actions`: versions are only added, and an
announcement that repeats the current terms stores nothing (see
:func:`mds.domain.actions.restated`). A batch is written in one transaction holding an
advisory lock per symbol, so two processes refreshing one symbol cannot both add a version.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from mds.domain.actions import (
    ActionKey,
    ActionType,
    CorporateAction,
    SuspectedAction,
    action_key,
    last_per_key,
    restated,
)
from mds.domain.models import ensure_utc
from mds.storage.postgres.connection import PostgresPool

_COLS = "symbol, type, ex_date, as_of, ratio, amount, currency, declared_date, record_date, pay_date, source"
_INSERT = (
    f"INSERT INTO corporate_actions ({_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    " ON CONFLICT DO NOTHING"
)
_SUSPECT_COLS = "symbol, session, previous_close, open, ratio, detected_at"


def _action(r: asyncpg.Record) -> CorporateAction:
    return CorporateAction(
        r["symbol"],
        ActionType(r["type"]),
        r["ex_date"],
        r["ratio"],
        r["amount"],
        r["currency"],
        r["declared_date"],
        r["record_date"],
        r["pay_date"],
        r["source"],
        r["as_of"],
    )


def _current_sql(as_of: bool, start: bool, end: bool) -> str:
    # Per (type, ex_date), the newest version learned by $2 (every version when no bound).
    sql = f"SELECT DISTINCT ON (type, ex_date) {_COLS} FROM corporate_actions WHERE symbol = $1"
    n = 1
    for flag, clause in ((as_of, "as_of <="), (start, "ex_date >="), (end, "ex_date <=")):
        if flag:
            n += 1
            sql += f" AND {clause} ${n}"
    return sql + " ORDER BY type, ex_date, as_of DESC"


def _by_date(actions: list[CorporateAction]) -> list[CorporateAction]:
    return sorted(actions, key=lambda a: (a.ex_date, a.type.value))


class PostgresActions:
    """The :class:`~mds.storage.base.CorporateActionStore` part of :class:`~mds.storage.postgres.PostgresStore`."""

    db: PostgresPool

    async def write_corporate_actions(
        self, actions: Sequence[CorporateAction], *, as_of: datetime
    ) -> list[CorporateAction]:
        if not actions:
            return []
        learned = ensure_utc(as_of)

        async def write(conn: asyncpg.Connection) -> list[CorporateAction]:
            current: dict[ActionKey, CorporateAction] = {}
            out: list[CorporateAction] = []
            async with conn.transaction():
                for symbol in sorted({a.symbol for a in actions}):
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtext('corporate_actions:' || $1))", symbol
                    )
                    rows = await conn.fetch(_current_sql(False, False, False), symbol)
                    current.update((action_key(a), a) for a in map(_action, rows))
                for action in last_per_key(actions):
                    new = restated(current, action, learned)
                    if new is None:
                        continue
                    await conn.execute(
                        _INSERT,
                        new.symbol,
                        new.type.value,
                        new.ex_date,
                        learned,
                        new.ratio,
                        new.amount,
                        new.currency,
                        new.declared_date,
                        new.record_date,
                        new.pay_date,
                        new.source,
                    )
                    out.append(new)
            return out

        return await self.db.write(write)

    async def corporate_actions(
        self,
        symbol: str,
        *,
        as_of: datetime | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> list[CorporateAction]:
        params: list[Any] = [symbol] + [v for v in (as_of and ensure_utc(as_of), start, end) if v is not None]
        sql = _current_sql(as_of is not None, start is not None, end is not None)
        return _by_date([_action(r) for r in await self.db.fetch(sql, *params)])

    async def corporate_action_symbols(self, *, learned_since: datetime | None = None) -> dict[str, datetime]:
        if learned_since is None:
            rows = await self.db.fetch(
                'SELECT symbol, max(as_of) FROM corporate_actions GROUP BY symbol ORDER BY symbol COLLATE "C"'
            )
        else:
            rows = await self.db.fetch(
                "SELECT symbol, max(as_of) FROM corporate_actions WHERE as_of >= $1"
                ' GROUP BY symbol ORDER BY symbol COLLATE "C"',
                ensure_utc(learned_since),
            )
        return {r[0]: r[1] for r in rows}

    async def record_suspected_actions(self, rows: Sequence[SuspectedAction]) -> int:
        if not rows:
            return 0
        tag = await self.db.execute(
            f"INSERT INTO suspected_actions ({_SUSPECT_COLS})"
            " SELECT * FROM unnest($1::text[], $2::date[], $3::float8[], $4::float8[], $5::float8[], $6::timestamptz[])"
            " ON CONFLICT DO NOTHING",
            [r.symbol for r in rows],
            [r.session for r in rows],
            [r.previous_close for r in rows],
            [r.open for r in rows],
            [r.ratio for r in rows],
            [ensure_utc(r.detected_at) for r in rows],
        )
        return int(tag.rsplit(" ", 1)[-1])

    async def suspected_actions(
        self, *, symbol: str | None = None, limit: int = 100
    ) -> list[SuspectedAction]:
        where, params = ("WHERE symbol = $2", [symbol]) if symbol is not None else ("", [])
        rows = await self.db.fetch(
            f"SELECT {_SUSPECT_COLS} FROM suspected_actions {where}"
            ' ORDER BY session DESC, symbol COLLATE "C" LIMIT $1',
            max(0, limit),
            *params,
        )
        return [SuspectedAction(*r) for r in rows]

    async def clear_suspected_actions(self, symbol: str, sessions: Sequence[date]) -> int:
        if not sessions:
            return 0
        tag = await self.db.execute(
            "DELETE FROM suspected_actions WHERE symbol = $1 AND session = ANY($2::date[])",
            symbol,
            list(sessions),
        )
        return int(tag.rsplit(" ", 1)[-1])
