-- Options metrics and macro factors (issue 16), SQLite. as_of is epoch MICROseconds UTC;
-- date and realtime_start are ISO dates ('2026-01-05'), which order correctly as text.

-- One row per computed value: a metric (atm_iv, iv30, rr25 ...) for a tenor ('30d', an
-- expiration 'YYYY-MM-DD', or '' when none applies) of a symbol at the moment it was
-- computed. Rows are only ever added; value NULL is a metric that could not be computed.
CREATE TABLE options_metrics (
    symbol TEXT    NOT NULL,
    as_of  INTEGER NOT NULL,
    metric TEXT    NOT NULL,
    tenor  TEXT    NOT NULL DEFAULT '',
    value  REAL,
    source TEXT    NOT NULL,
    PRIMARY KEY (symbol, metric, tenor, as_of)
) WITHOUT ROWID;
-- "The newest computation of a symbol" and history windows by time.
CREATE INDEX ix_options_metrics_symbol_as_of ON options_metrics (symbol, as_of);

-- Every vintage of every macro value (FRED/ALFRED): the value of factor_key for date as
-- known from realtime_start (the vendor's knowledge time), learned by MDS at as_of. A
-- vintage never changes; value NULL is a value the vendor says is missing ('.').
CREATE TABLE macro_factors (
    factor_key     TEXT    NOT NULL,
    date           TEXT    NOT NULL CHECK (date = date(date)),
    value          REAL,
    realtime_start TEXT    NOT NULL CHECK (realtime_start = date(realtime_start)),
    as_of          INTEGER NOT NULL,
    source         TEXT    NOT NULL,
    PRIMARY KEY (factor_key, date, realtime_start)
) WITHOUT ROWID;
