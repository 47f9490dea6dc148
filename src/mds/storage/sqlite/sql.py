"""SQL text and row conversions for :class:`mds.storage.sqlite.SqliteStore`.

Units (see ``migrations/sqlite/0001_initial.sql``): bar and job ranges are epoch seconds
UTC, every ``as_of``/``*_at`` stamp and quote ``ts`` is epoch microseconds UTC. SQL here is
composed only from constant identifiers; values are always bound parameters.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from mds.domain.models import Bar, BarStatus, Interval, Tier, ensure_utc
from mds.domain.records import BackfillRecord, BackfillStatus

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MICRO = timedelta(microseconds=1)

BAR_COLS = "symbol, interval, ts, open, high, low, close, volume, provider, as_of, status, adjusted, revision"
JOB_COLS = (
    "id, symbol, interval, start_ts, end_ts, priority, status, attempts, last_error, created_at, updated_at"
)
KEY_JOIN = "c.symbol = n.symbol AND c.interval = n.interval AND c.ts = n.ts"


def changed(new: str, cur: str) -> str:
    """SQL for "the new bar is a revision": any OHLCV differs, or provisional becomes final.

    Built from the two table aliases only (never values). A provisional over an identical
    final is not a change, so a late provisional re-fetch cannot downgrade a final bar.
    """
    diffs = " OR ".join(
        f"{new}.{col} IS NOT {cur}.{col}" for col in ("open", "high", "low", "close", "volume")
    )
    return f"({diffs} OR ({cur}.status = 'provisional' AND {new}.status = 'final'))"


STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_bars (
    symbol TEXT NOT NULL, interval TEXT NOT NULL, ts INTEGER NOT NULL,
    open REAL, high REAL, low REAL, close REAL, volume REAL,
    provider TEXT NOT NULL, status TEXT NOT NULL, adjusted INTEGER NOT NULL,
    PRIMARY KEY (symbol, interval, ts)
)
"""
CLASSIFY = f"""
SELECT COALESCE(SUM(c.symbol IS NULL), 0),
       COALESCE(SUM(c.symbol IS NOT NULL AND {changed("n", "c")}), 0)
FROM temp.stage_bars n LEFT JOIN candles c ON {KEY_JOIN}
"""
# The keys CLASSIFY counts, for streaming: new or revised bars at or after a time.
CHANGED_SINCE = f"""
SELECT n.symbol, n.interval, n.ts
FROM temp.stage_bars n LEFT JOIN candles c ON {KEY_JOIN}
WHERE n.ts >= ? AND (c.symbol IS NULL OR {changed("n", "c")})
ORDER BY n.symbol, n.interval, n.ts
"""
TO_HISTORY = f"""
INSERT INTO candle_history ({BAR_COLS}, superseded_at)
SELECT {", ".join("c." + c.strip() for c in BAR_COLS.split(","))}, ?
FROM temp.stage_bars n JOIN candles c ON {KEY_JOIN}
WHERE {changed("n", "c")}
"""
# "WHERE true" resolves SQLite's parsing ambiguity between a join and ON CONFLICT.
UPSERT = f"""
INSERT INTO candles ({BAR_COLS})
SELECT symbol, interval, ts, open, high, low, close, volume, provider, ?, status, adjusted, 0
FROM temp.stage_bars WHERE true
ON CONFLICT (symbol, interval, ts) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, provider = excluded.provider, as_of = excluded.as_of,
    status = excluded.status, adjusted = excluded.adjusted, revision = candles.revision + 1
WHERE {changed("excluded", "candles")}
"""
RANGE = "symbol = ? AND interval = ? AND ts >= ? AND ts < ?"

CREATE_JOB = (
    "INSERT INTO backfill_jobs (symbol, interval, start_ts, end_ts, priority,"
    " status, attempts, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?)"
)
# The symbol list is one JSON parameter (no limit on bound variables); only active rows
# are read, so the status index bounds the scan by the backlog, not the table.
ACTIVE_JOBS_OF = (
    f"SELECT {JOB_COLS} FROM backfill_jobs WHERE status IN ('queued', 'running')"
    " AND interval = ? AND symbol IN (SELECT value FROM json_each(?)) ORDER BY created_at, id"
)


def secs(ts: datetime) -> int:
    """Epoch seconds, in exact integer arithmetic (``timestamp()`` goes through a float)."""
    return (ensure_utc(ts) - EPOCH) // SECOND


def micros(ts: datetime) -> int:
    return (ensure_utc(ts) - EPOCH) // MICRO


def from_secs(value: int) -> datetime:
    return EPOCH + timedelta(seconds=value)


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def now_micros() -> int:
    # Only for bookkeeping stamps the protocol gives no ``now`` for (universe versions).
    return time.time_ns() // 1000


def bar(row: sqlite3.Row | tuple[Any, ...]) -> Bar:
    sym, interval, ts, o, h, lo, c, v, provider, as_of, status, adjusted, _rev = row
    return Bar(
        symbol=sym,
        interval=Interval(interval),
        ts=from_secs(ts),
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        provider=provider,
        adjusted=bool(adjusted),
        status=BarStatus(status),
        as_of=from_micros(as_of),
    )


def new_job(job_id: int, row: tuple[str, str, int, int, str], created: datetime) -> BackfillRecord:
    """The record of a row just inserted from ``row`` (as ``CREATE_JOB`` binds it), unread.

    ``created`` is shared by the whole batch: one stamp, one object.
    """
    sym, interval, start, end, prio = row
    return BackfillRecord(
        id=job_id,
        symbol=sym,
        interval=Interval(interval),
        start=from_secs(start),
        end=from_secs(end),
        priority=Tier(prio),
        status=BackfillStatus.QUEUED,
        attempts=0,
        last_error=None,
        created_at=created,
        updated_at=created,
    )


def job(row: tuple[Any, ...]) -> BackfillRecord:
    jid, sym, interval, start, end, prio, status, attempts, err, created, updated = row
    return BackfillRecord(
        id=jid,
        symbol=sym,
        interval=Interval(interval),
        start=from_secs(start),
        end=from_secs(end),
        priority=Tier(prio),
        status=BackfillStatus(status),
        attempts=attempts,
        last_error=err,
        created_at=from_micros(created),
        updated_at=from_micros(updated),
    )
