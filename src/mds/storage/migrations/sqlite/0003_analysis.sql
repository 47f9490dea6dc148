-- Analysis snapshots (seed names MarketAnalysisCache / MarketAnalysisHistory), SQLite.
-- Owned by mds.storage.sqlite.analysis; the bar tables are only ever read from there.
-- as_of_date is the ISO session date the snapshot describes (its last bar's session);
-- computed_at, expiry_timestamp and recorded_at are epoch MICROseconds UTC.
-- raw_analysis is the whole snapshot as JSON text; the other columns are its headline
-- fields, kept as columns so admin views can filter without parsing JSON.

-- The latest snapshot per symbol and analysis type, replaced on every refresh.
CREATE TABLE market_analysis_cache (
    symbol           TEXT    NOT NULL,
    analysis_type    TEXT    NOT NULL,
    as_of_date       TEXT,
    computed_at      INTEGER NOT NULL,
    expiry_timestamp INTEGER NOT NULL,
    bars_used        INTEGER NOT NULL,
    ma_bucket        TEXT,
    stage_label      TEXT,
    stage_slope_pct  REAL,
    stage_dist_pct   REAL,
    raw_analysis     TEXT    NOT NULL,
    PRIMARY KEY (symbol, analysis_type)
) WITHOUT ROWID;

-- One immutable row per (symbol, analysis_type, as_of_date): a backtest reading it sees
-- exactly what was recorded that day. The triggers refuse any rewrite at the database.
CREATE TABLE market_analysis_history (
    symbol          TEXT    NOT NULL,
    analysis_type   TEXT    NOT NULL,
    as_of_date      TEXT    NOT NULL,
    recorded_at     INTEGER NOT NULL,
    bars_used       INTEGER NOT NULL,
    close           REAL,
    rsi_14          REAL,
    ma_bucket       TEXT,
    stage_label     TEXT,
    raw_analysis    TEXT    NOT NULL,
    PRIMARY KEY (symbol, analysis_type, as_of_date)
) WITHOUT ROWID;

CREATE INDEX ix_market_analysis_history_date ON market_analysis_history (analysis_type, as_of_date);

CREATE TRIGGER market_analysis_history_no_update BEFORE UPDATE ON market_analysis_history
BEGIN
    SELECT RAISE(ABORT, 'market_analysis_history is immutable');
END;

CREATE TRIGGER market_analysis_history_no_delete BEFORE DELETE ON market_analysis_history
BEGIN
    SELECT RAISE(ABORT, 'market_analysis_history is immutable');
END;
