-- Cross-vendor reconciliation (issue 17), PostgreSQL: the same tables as
-- migrations/sqlite/0009_quality.sql.

-- One provider's showing in one reconciliation of one symbol's range: of the `compared`
-- bar times it was a compared side of, `faults` were blamed on it by a third provider;
-- score = (compared - faults) / compared. `against` lists whom it was compared with.
CREATE TABLE quality_scores (
    provider   text        NOT NULL,
    symbol     text        NOT NULL,
    interval   text        NOT NULL,
    checked_at timestamptz NOT NULL,
    start_ts   timestamptz NOT NULL,
    end_ts     timestamptz NOT NULL,
    compared   integer     NOT NULL CHECK (compared >= 0),
    faults     integer     NOT NULL CHECK (faults >= 0 AND faults <= compared),
    unresolved integer     NOT NULL CHECK (unresolved >= 0),
    against    text        NOT NULL,
    PRIMARY KEY (provider, symbol, interval, checked_at)
);
-- Pruning by age.
CREATE INDEX ix_quality_scores_checked_at ON quality_scores (checked_at);

-- Each field of each bar on which the stored series and another vendor disagreed, for an
-- operator; never acted on. field is open/high/low/close/volume, or 'bar' for a bar time
-- only one side holds; diff is ticks (0.01) for a price, percent for volume. blamed is the
-- provider a third one sided against (NULL: nobody could tell).
CREATE TABLE quality_disagreements (
    id             bigserial        PRIMARY KEY,
    checked_at     timestamptz      NOT NULL,
    provider       text             NOT NULL,
    other_provider text             NOT NULL,
    symbol         text             NOT NULL,
    interval       text             NOT NULL,
    ts             timestamptz      NOT NULL,
    kind           text             NOT NULL CHECK (kind IN ('value', 'missing', 'extra')),
    field          text             NOT NULL,
    stored_value   double precision,
    other_value    double precision,
    diff           double precision,
    blamed         text,
    note           text             NOT NULL DEFAULT ''
);
-- "The newest disagreements" and pruning by age.
CREATE INDEX ix_quality_disagreements_checked_at ON quality_disagreements (checked_at);
