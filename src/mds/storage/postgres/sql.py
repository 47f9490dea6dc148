"""SQL text and row conversions for :class:`mds.storage.postgres.PostgresStore`.

Every time column is ``timestamptz`` (see ``migrations/postgres/0001_initial.sql``); asyncpg
hands them back as aware UTC datetimes, so only the protocol's epoch-second results are
converted here. SQL is composed only from constant identifiers; values are always bound
parameters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from mds.domain.models import Bar, BarStatus, Interval, Tier, ensure_utc
from mds.domain.records import BackfillRecord, BackfillStatus

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)

# A bar row as candles holds it, in the order of every COPY record and of BAR_COLS.
BAR_COLUMNS = (
    "symbol",
    "interval",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "provider",
    "as_of",
    "status",
    "adjusted",
    "revision",
)
BAR_COLS = ", ".join(BAR_COLUMNS)
JOB_COLS = (
    "id, symbol, interval, start_ts, end_ts, priority, status, attempts, last_error, created_at, updated_at"
)

# One per connection (created by the pool's init); ON COMMIT DELETE ROWS empties it at the
# end of every write transaction, and a rolled-back one leaves nothing either. ``seq``
# numbers rows in COPY order, so when a key repeats in a batch the merge keeps the last.
STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_bars (
    symbol text NOT NULL, interval text NOT NULL, ts timestamptz NOT NULL,
    open double precision, high double precision, low double precision,
    close double precision, volume double precision,
    provider text NOT NULL, as_of timestamptz, status text NOT NULL, adjusted boolean NOT NULL,
    revision integer, seq bigint GENERATED ALWAYS AS IDENTITY
) ON COMMIT DELETE ROWS
"""

_CHANGED = " OR ".join(
    f"excluded.{col} IS DISTINCT FROM candles.{col}" for col in ("open", "high", "low", "close", "volume")
)
# The one merge statement. New keys are inserted as revision 0; a changed bar (any OHLCV
# differs, or provisional becomes final) updates the current row, and the
# candles_keep_history trigger files the row it replaces in candle_history first, so the
# copy to history is part of this statement. An identical bar (or a provisional over an
# identical final) fails the DO UPDATE WHERE and writes nothing. Rows go in key order so
# two concurrent batches lock shared keys in the same order. New bars also drop their
# "no trades" evidence (a bar that exists is not empty). ``revision`` tells an insert (0)
# from an update (>= 1) in RETURNING. A key given twice in a batch counts once, with its
# last bar (DISTINCT ON over the COPY order); ``keys`` is how many distinct keys came;
# then the written keys at or after $2 (NULL: none asked for) as three parallel arrays.
MERGE = f"""
WITH src AS (
    SELECT DISTINCT ON (symbol, interval, ts) *
    FROM stage_bars ORDER BY symbol, interval, ts, seq DESC
), up AS (
    INSERT INTO candles ({BAR_COLS})
    SELECT symbol, interval, ts, open, high, low, close, volume, provider, $1::timestamptz, status, adjusted, 0
    FROM src ORDER BY symbol, interval, ts
    ON CONFLICT (symbol, interval, ts) DO UPDATE SET
        open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
        volume = excluded.volume, provider = excluded.provider, as_of = excluded.as_of,
        status = excluded.status, adjusted = excluded.adjusted, revision = candles.revision + 1
    WHERE {_CHANGED} OR (candles.status = 'provisional' AND excluded.status = 'final')
    RETURNING symbol, interval, ts, revision
), ev AS (
    DELETE FROM empty_evidence e USING up
    WHERE up.revision = 0 AND e.symbol = up.symbol AND e.interval = up.interval AND e.ts = up.ts
), ce AS (
    DELETE FROM confirmed_empty e USING up
    WHERE up.revision = 0 AND e.symbol = up.symbol AND e.interval = up.interval AND e.ts = up.ts
)
SELECT count(*) FILTER (WHERE revision = 0) AS inserted,
       count(*) FILTER (WHERE revision > 0) AS revised,
       (SELECT count(*) FROM src) AS keys,
       array_agg(symbol ORDER BY symbol, interval, ts) FILTER (WHERE ts >= $2::timestamptz),
       array_agg(interval ORDER BY symbol, interval, ts) FILTER (WHERE ts >= $2::timestamptz),
       array_agg(ts ORDER BY symbol, interval, ts) FILTER (WHERE ts >= $2::timestamptz)
FROM up
"""

# The fast path's precondition: does any series of the batch already hold a bar inside
# the batch's time span? One index probe per (symbol, interval); when none does, every key
# is new and the batch can be COPYed straight into candles (see PostgresStore.write_bars).
ANY_STORED_IN_SPAN = """
SELECT EXISTS (
    SELECT 1 FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS r(s, i, a, b)
    WHERE EXISTS (SELECT 1 FROM candles c WHERE c.symbol = r.s AND c.interval = r.i
                                           AND c.ts >= r.a AND c.ts <= r.b)
)
"""
# After a direct COPY: "no trades" evidence for a minute that now has a bar is wrong
# whichever write brought the bar, so the join needs no list of the batch's keys; both
# tables are small, and the symbol filter keeps the probe to the batch's series.
DROP_EVIDENCE_OF_STORED = """
WITH ev AS (
    DELETE FROM empty_evidence e USING candles c
    WHERE e.symbol = ANY($1::text[]) AND c.symbol = e.symbol AND c.interval = e.interval AND c.ts = e.ts
)
DELETE FROM confirmed_empty e USING candles c
WHERE e.symbol = ANY($1::text[]) AND c.symbol = e.symbol AND c.interval = e.interval AND c.ts = e.ts
"""
RANGE = "symbol = $1 AND interval = $2 AND ts >= $3 AND ts < $4"
READ_CURRENT = f"SELECT {BAR_COLS} FROM candles WHERE {RANGE}"
# What was current at $5: current rows learned by then, plus history rows current then.
READ_AS_OF = (
    f"SELECT {BAR_COLS} FROM candles WHERE {RANGE} AND as_of <= $5"
    f" UNION ALL SELECT {BAR_COLS} FROM candle_history"
    f" WHERE {RANGE} AND as_of <= $5 AND superseded_at > $5"
)


# 1m bars rolled up in the database (the service's rule, services/rollup.py): each bar
# goes to the session holding it ($5/$6: the sessions' opens and closes, from the
# exchange calendar, so an early close just ends the last bucket), and date_bin with the
# session open as origin gives its bucket. Providers are joined as "a+b" in code-point
# order; a bucket is "final" here when every part is, and the service still demotes
# buckets that have not ended. $7 is the bucket width.
def rollup_sql(as_of: bool) -> str:
    rows = READ_AS_OF if as_of else READ_CURRENT
    origin_args = ("$6", "$7", "$8") if as_of else ("$5", "$6", "$7")
    opens, closes, step = origin_args
    return f"""
WITH src AS ({rows}),
s AS (SELECT * FROM unnest({opens}::timestamptz[], {closes}::timestamptz[]) AS s(open, close))
SELECT date_bin({step}::interval, src.ts, s.open) AS bucket,
       (array_agg(src.open ORDER BY src.ts))[1],
       max(src.high),
       min(src.low),
       (array_agg(src.close ORDER BY src.ts DESC))[1],
       sum(src.volume),
       string_agg(DISTINCT src.provider COLLATE "C", '+' ORDER BY src.provider COLLATE "C"),
       bool_and(src.status = 'final'),
       max(src.as_of),
       bool_or(src.adjusted)
FROM src JOIN s ON src.ts >= s.open AND src.ts < s.close
GROUP BY 1
ORDER BY 1
"""


REVISIONS = (
    f"SELECT {BAR_COLS} FROM candle_history WHERE symbol = $1 AND interval = $2 AND ts = $3"
    f" UNION ALL SELECT {BAR_COLS} FROM candles WHERE symbol = $1 AND interval = $2 AND ts = $3"
    " ORDER BY revision"
)

WRITE_QUOTES = """
WITH ins AS (
    INSERT INTO quotes_l1 (symbol, ts, bid, ask, bid_size, ask_size, last, provider, as_of)
    SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[],
                         $6::float8[], $7::float8[], $8::text[], $9::timestamptz[])
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM ins
"""

UPSERT_UNIVERSE = """
INSERT INTO symbol_universe (symbol, tier, active, name, exchange, etf, updated_at)
SELECT s, t, a, n, x, e, $7
FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::bool[]) AS u(s, t, a, n, x, e)
ON CONFLICT (symbol) DO UPDATE SET
    tier = excluded.tier, active = excluded.active, name = excluded.name,
    exchange = excluded.exchange, etf = excluded.etf, updated_at = excluded.updated_at
"""
RECORD_VERSION = """
INSERT INTO universe_versions
    (version_tag, source_meta, created_at, source, file_time, added, removed, unchanged)
VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, $8)
ON CONFLICT (version_tag) DO UPDATE SET
    source_meta = excluded.source_meta, created_at = excluded.created_at, source = excluded.source,
    file_time = excluded.file_time, added = excluded.added, removed = excluded.removed,
    unchanged = excluded.unchanged
"""

ADVANCE_CURSOR = """
INSERT INTO ingestion_cursor (symbol, interval, source, last_ts, updated_at)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (symbol, interval, source) DO UPDATE SET
    last_ts = excluded.last_ts, updated_at = excluded.updated_at
WHERE excluded.last_ts > ingestion_cursor.last_ts
"""

CREATE_JOB = f"""
INSERT INTO backfill_jobs (symbol, interval, start_ts, end_ts, priority, status, attempts,
                           created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6)
RETURNING {JOB_COLS}
"""
# One statement for a whole batch: the arrays are bound parameters, unnested in order.
CREATE_JOBS = f"""
INSERT INTO backfill_jobs (symbol, interval, start_ts, end_ts, priority, status, attempts,
                           created_at, updated_at)
SELECT s, i, a, b, p, 'queued', 0, $6, $6
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[])
     WITH ORDINALITY AS u(s, i, a, b, p, n)
ORDER BY n
RETURNING {JOB_COLS}
"""
ACTIVE_JOBS_OF = f"""
SELECT {JOB_COLS} FROM backfill_jobs
WHERE status IN ('queued', 'running') AND interval = $1 AND symbol = ANY($2::text[])
ORDER BY created_at, id
"""
UPDATE_JOB = """
UPDATE backfill_jobs SET status = $1, updated_at = $2,
    attempts = COALESCE($3::integer, attempts), last_error = COALESCE($4::text, last_error)
WHERE id = $5
"""
JOB_STATS = """
SELECT priority, status, count(*), min(created_at) FILTER (WHERE status = 'queued')
FROM backfill_jobs GROUP BY 1, 2
"""


def secs(ts: datetime) -> int:
    """Epoch seconds, in exact integer arithmetic (``timestamp()`` goes through a float)."""
    return (ensure_utc(ts) - EPOCH) // SECOND


def from_secs(value: int) -> datetime:
    return EPOCH + timedelta(seconds=int(value))


def rowcount(status: str) -> int:
    """The row count at the end of a command tag such as ``"UPDATE 3"``."""
    return int(status.rsplit(" ", 1)[-1])


def bar(row: asyncpg.Record) -> Bar:
    sym, interval, ts, o, h, lo, c, v, provider, as_of, status, adjusted, _rev = row
    return Bar(
        symbol=sym,
        interval=Interval(interval),
        ts=ts,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        provider=provider,
        adjusted=adjusted,
        status=BarStatus(status),
        as_of=as_of,
    )


def job_key(rec: BackfillRecord) -> tuple[str, str, datetime, datetime, str]:
    """What a created job was made from, as ``CREATE_JOBS`` binds it (plain strings)."""
    return (rec.symbol, rec.interval.value, rec.start, rec.end, rec.priority.value)


def job(row: asyncpg.Record) -> BackfillRecord:
    jid, sym, interval, start, end, prio, status, attempts, err, created, updated = row
    return BackfillRecord(
        id=jid,
        symbol=sym,
        interval=Interval(interval),
        start=start,
        end=end,
        priority=Tier(prio),
        status=BackfillStatus(status),
        attempts=attempts,
        last_error=err,
        created_at=created,
        updated_at=updated,
    )
