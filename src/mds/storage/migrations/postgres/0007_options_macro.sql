-- Options metrics and macro factors (issue 16), PostgreSQL: the same tables as
-- migrations/sqlite/0007_options_macro.sql.

-- One row per computed value: a metric (atm_iv, iv30, rr25 ...) for a tenor ('30d', an
-- expiration 'YYYY-MM-DD', or '' when none applies) of a symbol at the moment it was
-- computed. Rows are only ever added; value NULL is a metric that could not be computed.
CREATE TABLE options_metrics (
    symbol text             NOT NULL,
    as_of  timestamptz      NOT NULL,
    metric text             NOT NULL,
    tenor  text             NOT NULL DEFAULT '',
    value  double precision,
    source text             NOT NULL,
    PRIMARY KEY (symbol, metric, tenor, as_of)
);
-- "The newest computation of a symbol" and history windows by time.
CREATE INDEX ix_options_metrics_symbol_as_of ON options_metrics (symbol, as_of);

-- Every vintage of every macro value (FRED/ALFRED): the value of factor_key for date as
-- known from realtime_start (the vendor's knowledge time), learned by MDS at as_of. A
-- vintage never changes; value NULL is a value the vendor says is missing ('.').
CREATE TABLE macro_factors (
    factor_key     text             NOT NULL,
    date           date             NOT NULL,
    value          double precision,
    realtime_start date             NOT NULL,
    as_of          timestamptz      NOT NULL,
    source         text             NOT NULL,
    PRIMARY KEY (factor_key, date, realtime_start)
);
