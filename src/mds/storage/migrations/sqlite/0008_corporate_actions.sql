-- Corporate actions (issue 17), SQLite. as_of/detected_at are epoch MICROseconds UTC; dates
-- are ISO text ('2025-06-09'), which order correctly as text.

-- Every version of every split and cash dividend, point in time: a row is what MDS learned
-- about one (symbol, type, ex_date) at as_of. A vendor that restates an action (a new
-- amount) adds a row; a read "as of T" takes, per action, the newest row learned by T.
CREATE TABLE corporate_actions (
    symbol        TEXT    NOT NULL,
    type          TEXT    NOT NULL CHECK (type IN ('split', 'dividend')),
    ex_date       TEXT    NOT NULL CHECK (ex_date = date(ex_date)),
    as_of         INTEGER NOT NULL,
    ratio         REAL    CHECK (ratio IS NULL OR ratio > 0),
    amount        REAL    CHECK (amount IS NULL OR amount > 0),
    currency      TEXT,
    declared_date TEXT,
    record_date   TEXT,
    pay_date      TEXT,
    source        TEXT    NOT NULL,
    PRIMARY KEY (symbol, type, ex_date, as_of)
) WITHOUT ROWID;
-- "Which symbols learned an action since T" (cache invalidation across processes).
CREATE INDEX ix_corporate_actions_as_of ON corporate_actions (as_of);

-- Daily jumps no known action explains (suspected unannounced splits), for an operator.
CREATE TABLE suspected_actions (
    symbol         TEXT    NOT NULL,
    session        TEXT    NOT NULL CHECK (session = date(session)),
    previous_close REAL    NOT NULL,
    open           REAL    NOT NULL,
    ratio          REAL    NOT NULL,
    detected_at    INTEGER NOT NULL,
    PRIMARY KEY (symbol, session)
) WITHOUT ROWID;
