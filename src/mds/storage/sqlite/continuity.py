"""Continuity on SQLite: the full gap scan and "no trades" evidence.

:class:`SqliteContinuity` is the :class:`~mds.storage.base.ContinuityStore` part of the
store; the work is done by plain functions on a ``sqlite3.Connection`` that it runs on
the reader or writer thread, one hop each. Lists of symbols and epochs go in as one JSON
parameter read by ``json_each`` (bound, never formatted into SQL), so there is no limit
on bound variables and the reader connection, which is ``query_only`` and may not create
temp tables, can run the scan.

Hand-written: no library knows MDS's notion of an expected bar or of a confirmed-empty one.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from mds.domain.models import Interval
from mds.storage.sqlite import sql as q
from mds.storage.sqlite.connection import SqliteConnections

# How many symbols one counting query takes; bounds each JSON parameter and result set.
_COUNT_CHUNK = 2000
# How many short symbols one detail query takes.
_DETAIL_CHUNK = 500

# Bar times of one symbol (``s.value``) that are expected: stored ones, and confirmed-empty
# ones not also stored (a stored bar wins; write_bars clears such rows anyway). The
# symbol list is the outer loop, so each symbol is one contiguous primary-key range scan,
# and each uncorrelated IN list is built once per statement into an ephemeral index. A
# correlated subquery per symbol beats a join with GROUP BY, which sorts every row.
_STORED = """
FROM candles c
WHERE c.symbol = s.value AND c.interval = :iv AND c.ts >= :lo AND c.ts <= :hi
  AND c.ts IN (SELECT value FROM json_each(:exp))
"""
_EMPTY = """
FROM confirmed_empty e
WHERE e.symbol = s.value AND e.interval = :iv AND e.ts >= :lo AND e.ts <= :hi
  AND e.ts IN (SELECT value FROM json_each(:exp))
  AND NOT EXISTS (SELECT 1 FROM candles c
                  WHERE c.symbol = e.symbol AND c.interval = e.interval AND c.ts = e.ts)
"""
# Per symbol: how many expected bar times are accounted for.
_COUNT = f"""
SELECT s.value, (SELECT count(*) {_STORED}) + (SELECT count(*) {_EMPTY})
FROM json_each(:syms) s
"""
# Per short symbol: the accounted-for bar times, as comma lists (one row per symbol is far
# cheaper to hand to Python than one row per bar).
_DETAIL = f"""
SELECT s.value, (SELECT group_concat(c.ts) {_STORED}), (SELECT group_concat(e.ts) {_EMPTY})
FROM json_each(:syms) s
"""

_ADD_EVIDENCE = """
INSERT INTO empty_evidence (symbol, interval, ts, provider, seen, last_seen)
SELECT :sym, :iv, x.value, :prov, 1, :now FROM json_each(:eps) x
WHERE NOT EXISTS (SELECT 1 FROM candles c
                  WHERE c.symbol = :sym AND c.interval = :iv AND c.ts = x.value)
ON CONFLICT (symbol, interval, ts, provider) DO UPDATE SET
    seen = empty_evidence.seen + 1, last_seen = excluded.last_seen
"""
_EVIDENCE_FOR = """
SELECT ts, provider, seen FROM empty_evidence
WHERE symbol = :sym AND interval = :iv AND ts IN (SELECT value FROM json_each(:eps))
"""
_CONFIRMED_FOR = """
SELECT ts FROM confirmed_empty
WHERE symbol = :sym AND interval = :iv AND ts IN (SELECT value FROM json_each(:eps))
"""
_CONFIRM = """
INSERT INTO confirmed_empty (symbol, interval, ts, providers, answers, confirmed_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (symbol, interval, ts) DO UPDATE SET
    providers = excluded.providers, answers = excluded.answers
"""

# write_bars: a bar that exists is not empty. Only run when either table has rows at all;
# the CROSS JOIN walks the staged batch and probes the (usually tiny) evidence tables.
ANY_EMPTY_ROWS = "SELECT EXISTS (SELECT 1 FROM empty_evidence) OR EXISTS (SELECT 1 FROM confirmed_empty)"
CLEAR_STAGED = tuple(
    f"""
DELETE FROM {table} WHERE (symbol, interval, ts) IN (
    SELECT n.symbol, n.interval, n.ts FROM temp.stage_bars n CROSS JOIN {table} e
    ON e.symbol = n.symbol AND e.interval = n.interval AND e.ts = n.ts)
"""
    for table in ("empty_evidence", "confirmed_empty")
)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _epochs(text: str | None) -> np.ndarray:
    """A comma list of integers from ``group_concat`` (None for no rows) as int64."""
    if not text:
        return np.empty(0, dtype=np.int64)
    return np.fromstring(text, dtype=np.int64, sep=",")


def _scan_missing(
    conn: sqlite3.Connection, interval: str, expected: np.ndarray, symbols: Sequence[str]
) -> dict[str, np.ndarray]:
    """Expected epochs neither stored in ``candles`` nor confirmed empty, per short symbol.

    Counting runs in SQLite (one statement per chunk of symbols); only symbols that come
    up short have their bar times fetched, and a symbol with nothing at all gets
    ``expected`` without that. Everything is read inside one read transaction, so counts and
    details come from the same snapshot.
    """
    exp = np.unique(np.asarray(expected, dtype=np.int64))
    syms = list(dict.fromkeys(symbols))
    if exp.size == 0 or not syms:
        return {}
    base: dict[str, Any] = {
        "iv": interval,
        "lo": int(exp[0]),
        "hi": int(exp[-1]),
        "exp": json.dumps(exp.tolist()),
    }
    out: dict[str, np.ndarray] = {}
    conn.execute("BEGIN")
    try:
        partial: list[str] = []
        for chunk in _chunks(syms, _COUNT_CHUNK):
            params = {**base, "syms": json.dumps(list(chunk))}
            for sym, n in conn.execute(_COUNT, params):
                if n == 0:
                    out[sym] = exp.copy()
                elif n < exp.size:
                    partial.append(sym)
        for chunk in _chunks(partial, _DETAIL_CHUNK):
            params = {**base, "syms": json.dumps(list(chunk))}
            for sym, stored, empty in conn.execute(_DETAIL, params):
                have = np.concatenate([_epochs(stored), _epochs(empty)])
                out[sym] = exp[~np.isin(exp, have)]
    finally:
        conn.execute("COMMIT")
    return {sym: out[sym] for sym in syms if sym in out}


def _record_empty_evidence(
    conn: sqlite3.Connection,
    symbol: str,
    interval: str,
    epochs: Sequence[int],
    provider: str,
    *,
    now_us: int,
    needed_answers: int,
    needed_providers: int,
) -> list[int]:
    """Add one answer's evidence; confirm what now meets both thresholds (in a transaction).

    Bar times that are stored get no evidence: a bar that exists is not empty.

    Returns:
        The epochs that became confirmed empty by this call, ascending.
    """
    eps = json.dumps(sorted({int(e) for e in epochs}))
    params = {"sym": symbol, "iv": interval, "eps": eps, "prov": provider, "now": now_us}
    conn.execute(_ADD_EVIDENCE, params)
    totals: dict[int, tuple[int, list[str]]] = {}
    for ts, prov, seen in conn.execute(_EVIDENCE_FOR, params):
        answers, provs = totals.get(ts, (0, []))
        totals[ts] = (answers + seen, [*provs, prov])
    ready = {
        ts: (answers, provs)
        for ts, (answers, provs) in totals.items()
        if answers >= needed_answers and len(provs) >= needed_providers
    }
    if not ready:
        return []
    already = {row[0] for row in conn.execute(_CONFIRMED_FOR, params)}
    conn.executemany(
        _CONFIRM,
        [
            (symbol, interval, ts, ",".join(sorted(provs)), answers, now_us)
            for ts, (answers, provs) in ready.items()
        ],
    )
    return sorted(set(ready) - already)


def _clear_empty_evidence(
    conn: sqlite3.Connection, symbol: str, interval: str, epochs: Sequence[int]
) -> None:
    """Forget evidence and confirmation for these bar times."""
    params = {"sym": symbol, "iv": interval, "eps": json.dumps(sorted({int(e) for e in epochs}))}
    for table in ("empty_evidence", "confirmed_empty"):
        # The table name is one of two constants, never input.
        conn.execute(
            f"DELETE FROM {table} WHERE symbol = :sym AND interval = :iv"
            " AND ts IN (SELECT value FROM json_each(:eps))",
            params,
        )


class SqliteContinuity:
    """The :class:`~mds.storage.base.ContinuityStore` part of :class:`~mds.storage.sqlite.SqliteStore`.

    The gap scan reads on the reader connection (one snapshot), so writers are not held up.
    """

    db: SqliteConnections

    async def scan_missing(
        self, interval: Interval, expected: np.ndarray, symbols: Sequence[str]
    ) -> dict[str, np.ndarray]:
        fn = functools.partial(
            _scan_missing,
            interval=Interval(interval).value,
            expected=expected,
            symbols=list(symbols),
        )
        return await self.db.on_reader(fn)

    async def record_empty_evidence(
        self,
        symbol: str,
        interval: Interval,
        epochs: Sequence[int],
        provider: str,
        *,
        now: datetime,
        needed_answers: int,
        needed_providers: int,
    ) -> list[int]:
        if needed_answers < 1 or needed_providers < 1:
            raise ValueError("needed_answers and needed_providers must be at least 1")
        fn = functools.partial(
            _record_empty_evidence,
            symbol=symbol,
            interval=Interval(interval).value,
            epochs=list(epochs),
            provider=provider,
            now_us=q.micros(now),
            needed_answers=needed_answers,
            needed_providers=needed_providers,
        )
        return await self.db.transaction(fn)

    async def clear_empty_evidence(self, symbol: str, interval: Interval, epochs: Sequence[int]) -> None:
        fn = functools.partial(
            _clear_empty_evidence,
            symbol=symbol,
            interval=Interval(interval).value,
            epochs=list(epochs),
        )
        await self.db.transaction(fn)

    async def confirmed_empty(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> list[int]:
        params = (symbol, Interval(interval).value, q.secs(start), q.secs(end))
        sql = f"SELECT ts FROM confirmed_empty WHERE {q.RANGE} ORDER BY ts"
        rows = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchall())
        return [r[0] for r in rows]

    async def count_confirmed_empty(
        self,
        interval: Interval,
        start: datetime,
        end: datetime,
        symbols: Sequence[str] | None = None,
    ) -> int:
        sql = "SELECT count(*) FROM confirmed_empty WHERE interval = ? AND ts >= ? AND ts < ?"
        params: list[Any] = [Interval(interval).value, q.secs(start), q.secs(end)]
        if symbols is not None:
            sql += " AND symbol IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(dict.fromkeys(symbols))))
        row = await self.db.on_reader(lambda conn: conn.execute(sql, params).fetchone())
        return int(row[0])
