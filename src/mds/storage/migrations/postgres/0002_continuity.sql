-- Continuity: telling "no trades" apart from "missing" (PostgreSQL). As migrations/sqlite/0002.

-- Evidence that a bar time had no trades: one row per provider whose successful, complete
-- answer lacked that bar; `seen` counts such answers.
CREATE TABLE empty_evidence (
    symbol    text        NOT NULL,
    interval  text        NOT NULL,
    ts        timestamptz NOT NULL,
    provider  text        NOT NULL,
    seen      integer     NOT NULL DEFAULT 1 CHECK (seen > 0),
    last_seen timestamptz NOT NULL,
    PRIMARY KEY (symbol, interval, ts, provider)
);

-- Bar times confirmed empty: enough answers from enough distinct providers lacked them,
-- so gap scans count them as present. `providers` is a sorted comma list.
CREATE TABLE confirmed_empty (
    symbol       text        NOT NULL,
    interval     text        NOT NULL,
    ts           timestamptz NOT NULL,
    providers    text        NOT NULL,
    answers      integer     NOT NULL,
    confirmed_at timestamptz NOT NULL,
    PRIMARY KEY (symbol, interval, ts)
);

-- count_confirmed_empty over every symbol of an interval and range.
CREATE INDEX ix_confirmed_empty_ts ON confirmed_empty (interval, ts);

-- The DLQ and "active jobs" views filter by status and order by age.
CREATE INDEX ix_backfill_jobs_status_created ON backfill_jobs (status, created_at, id);
