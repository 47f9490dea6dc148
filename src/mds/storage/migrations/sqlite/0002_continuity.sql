-- Continuity: telling "no trades" apart from "missing" (SQLite).
-- Time columns as in 0001: ts is epoch SECONDS UTC (the bar's open), last_seen and
-- confirmed_at are epoch MICROseconds UTC.

-- Evidence that a minute (or any bar time) had no trades: one row per provider whose
-- successful, complete answer lacked that bar; `seen` counts such answers.
CREATE TABLE empty_evidence (
    symbol    TEXT    NOT NULL,
    interval  TEXT    NOT NULL,
    ts        INTEGER NOT NULL,
    provider  TEXT    NOT NULL,
    seen      INTEGER NOT NULL DEFAULT 1 CHECK (seen > 0),
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (symbol, interval, ts, provider)
) WITHOUT ROWID;

-- Bar times confirmed empty: enough answers from enough distinct providers lacked them,
-- so gap scans count them as present. `providers` is a sorted comma list.
CREATE TABLE confirmed_empty (
    symbol       TEXT    NOT NULL,
    interval     TEXT    NOT NULL,
    ts           INTEGER NOT NULL,
    providers    TEXT    NOT NULL,
    answers      INTEGER NOT NULL,
    confirmed_at INTEGER NOT NULL,
    PRIMARY KEY (symbol, interval, ts)
) WITHOUT ROWID;

-- count_confirmed_empty over every symbol of an interval and range.
CREATE INDEX ix_confirmed_empty_ts ON confirmed_empty (interval, ts);

-- The DLQ and "active jobs" views filter by status and order by age.
CREATE INDEX ix_backfill_jobs_status_created ON backfill_jobs (status, created_at, id);
