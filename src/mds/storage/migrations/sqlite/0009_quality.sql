-- Cross-vendor reconciliation (issue 17), SQLite. checked_at is epoch MICROseconds UTC;
-- start_ts, end_ts and ts are epoch SECONDS UTC (bar open times, as in 0001).

-- One provider's showing in one reconciliation of one symbol's range: of the `compared`
-- bar times it was a compared side of, `faults` were blamed on it by a third provider;
-- score = (compared - faults) / compared. `against` lists whom it was compared with.
CREATE TABLE quality_scores (
    provider   TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    interval   TEXT    NOT NULL,
    checked_at INTEGER NOT NULL,
    start_ts   INTEGER NOT NULL,
    end_ts     INTEGER NOT NULL,
    compared   INTEGER NOT NULL CHECK (compared >= 0),
    faults     INTEGER NOT NULL CHECK (faults >= 0 AND faults <= compared),
    unresolved INTEGER NOT NULL CHECK (unresolved >= 0),
    against    TEXT    NOT NULL,
    PRIMARY KEY (provider, symbol, interval, checked_at)
) WITHOUT ROWID;
-- Pruning by age.
CREATE INDEX ix_quality_scores_checked_at ON quality_scores (checked_at);

-- Each field of each bar on which the stored series and another vendor disagreed, for an
-- operator; never acted on. field is open/high/low/close/volume, or 'bar' for a bar time
-- only one side holds; diff is ticks (0.01) for a price, percent for volume. blamed is the
-- provider a third one sided against (NULL: nobody could tell).
CREATE TABLE quality_disagreements (
    id             INTEGER PRIMARY KEY,
    checked_at     INTEGER NOT NULL,
    provider       TEXT    NOT NULL,
    other_provider TEXT    NOT NULL,
    symbol         TEXT    NOT NULL,
    interval       TEXT    NOT NULL,
    ts             INTEGER NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('value', 'missing', 'extra')),
    field          TEXT    NOT NULL,
    stored_value   REAL,
    other_value    REAL,
    diff           REAL,
    blamed         TEXT,
    note           TEXT    NOT NULL DEFAULT ''
);
-- "The newest disagreements" and pruning by age.
CREATE INDEX ix_quality_disagreements_checked_at ON quality_disagreements (checked_at);
