-- Analysis snapshots (seed names MarketAnalysisCache / MarketAnalysisHistory), PostgreSQL.
-- The same tables as migrations/sqlite/0003_analysis.sql, so both backends share version
-- numbers; as_of_date stays the ISO session date as text, times are timestamptz and
-- raw_analysis is jsonb.

CREATE TABLE market_analysis_cache (
    symbol           text             NOT NULL,
    analysis_type    text             NOT NULL,
    as_of_date       text,
    computed_at      timestamptz      NOT NULL,
    expiry_timestamp timestamptz      NOT NULL,
    bars_used        integer          NOT NULL,
    ma_bucket        text,
    stage_label      text,
    stage_slope_pct  double precision,
    stage_dist_pct   double precision,
    raw_analysis     jsonb            NOT NULL,
    PRIMARY KEY (symbol, analysis_type)
);

-- One immutable row per (symbol, analysis_type, as_of_date); the trigger refuses any
-- rewrite at the database.
CREATE TABLE market_analysis_history (
    symbol        text             NOT NULL,
    analysis_type text             NOT NULL,
    as_of_date    text             NOT NULL,
    recorded_at   timestamptz      NOT NULL,
    bars_used     integer          NOT NULL,
    close         double precision,
    rsi_14        double precision,
    ma_bucket     text,
    stage_label   text,
    raw_analysis  jsonb            NOT NULL,
    PRIMARY KEY (symbol, analysis_type, as_of_date)
);

CREATE INDEX ix_market_analysis_history_date ON market_analysis_history (analysis_type, as_of_date);

CREATE FUNCTION mds_market_analysis_history_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'market_analysis_history is immutable';
END
$$;

CREATE TRIGGER market_analysis_history_immutable BEFORE UPDATE OR DELETE ON market_analysis_history
    FOR EACH ROW EXECUTE FUNCTION mds_market_analysis_history_immutable();
