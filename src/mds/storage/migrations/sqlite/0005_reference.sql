-- What MDS tracks (issue 14), SQLite. Times are epoch MICROseconds UTC unless named
-- *_session (epoch SECONDS: a daily bar's ts, the session's open).

-- A symbol's listing facts. etf: the directory's ETF flag. first_trade_session: the
-- first session the market traded it, when known (sessions before it are never expected,
-- so a backfill that reaches back past a listing is not a failure).
ALTER TABLE symbol_universe ADD COLUMN etf INTEGER NOT NULL DEFAULT 0 CHECK (etf IN (0, 1));
ALTER TABLE symbol_universe ADD COLUMN first_trade_session INTEGER;
ALTER TABLE symbol_universe ADD COLUMN source_symbol TEXT NOT NULL DEFAULT '';

-- Each import: where it came from, the file's own time, and what it changed.
ALTER TABLE universe_versions ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE universe_versions ADD COLUMN file_time INTEGER;
ALTER TABLE universe_versions ADD COLUMN added INTEGER NOT NULL DEFAULT 0;
ALTER TABLE universe_versions ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE universe_versions ADD COLUMN unchanged INTEGER NOT NULL DEFAULT 0;

-- Every tier change (an import's re-rank or `mds universe retier`), newest last.
CREATE TABLE tier_changes (
    id         INTEGER PRIMARY KEY,
    symbol     TEXT    NOT NULL,
    old_tier   TEXT    CHECK (old_tier IN ('T0', 'T1', 'T2')),
    new_tier   TEXT    NOT NULL CHECK (new_tier IN ('T0', 'T1', 'T2')),
    measure    REAL,
    reason     TEXT    NOT NULL,
    changed_at INTEGER NOT NULL
);
CREATE INDEX ix_tier_changes_symbol ON tier_changes (symbol, changed_at);

-- Index membership. A leaver keeps its row (is_active = 0, became_inactive_at set); a
-- rejoiner is reactivated (became_inactive_at cleared, first_seen_at kept).
CREATE TABLE index_constituents (
    index_name         TEXT    NOT NULL CHECK (index_name IN ('SP500', 'NASDAQ100', 'DOW30')),
    symbol             TEXT    NOT NULL,
    name               TEXT    NOT NULL DEFAULT '',
    sector             TEXT    NOT NULL DEFAULT '',
    sub_industry       TEXT    NOT NULL DEFAULT '',
    is_active          INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    first_seen_at      INTEGER NOT NULL,
    became_inactive_at INTEGER,
    source             TEXT    NOT NULL,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (index_name, symbol)
) WITHOUT ROWID;

-- Each refresh of one index and its counters; applied = 0 when it was refused.
CREATE TABLE index_refreshes (
    id            INTEGER PRIMARY KEY,
    index_name    TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    fetched       INTEGER NOT NULL,
    inserted      INTEGER NOT NULL,
    reactivated   INTEGER NOT NULL,
    inactivated   INTEGER NOT NULL,
    provider_used TEXT    NOT NULL,
    fallback_used INTEGER NOT NULL CHECK (fallback_used IN (0, 1)),
    applied       INTEGER NOT NULL CHECK (applied IN (0, 1)),
    reason        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX ix_index_refreshes_index ON index_refreshes (index_name, started_at);

-- Symbols a user holds: tracked whatever the indexes say.
CREATE TABLE holdings (
    symbol   TEXT    PRIMARY KEY,
    added_at INTEGER NOT NULL,
    note     TEXT    NOT NULL DEFAULT ''
) WITHOUT ROWID;
