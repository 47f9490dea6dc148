-- Corporate actions (issue 17), PostgreSQL: the same tables as
-- migrations/sqlite/0008_corporate_actions.sql.

-- Every version of every split and cash dividend, point in time: a row is what MDS learned
-- about one (symbol, type, ex_date) at as_of. A vendor that restates an action (a new
-- amount) adds a row; a read "as of T" takes, per action, the newest row learned by T.
CREATE TABLE corporate_actions (
    symbol        text             NOT NULL,
    type          text             NOT NULL CHECK (type IN ('split', 'dividend')),
    ex_date       date             NOT NULL,
    as_of         timestamptz      NOT NULL,
    ratio         double precision CHECK (ratio IS NULL OR ratio > 0),
    amount        double precision CHECK (amount IS NULL OR amount > 0),
    currency      text,
    declared_date date,
    record_date   date,
    pay_date      date,
    source        text             NOT NULL,
    PRIMARY KEY (symbol, type, ex_date, as_of)
);
-- "Which symbols learned an action since T" (cache invalidation across processes).
CREATE INDEX ix_corporate_actions_as_of ON corporate_actions (as_of);

-- Daily jumps no known action explains (suspected unannounced splits), for an operator.
CREATE TABLE suspected_actions (
    symbol         text             NOT NULL,
    session        date             NOT NULL,
    previous_close double precision NOT NULL,
    open           double precision NOT NULL,
    ratio          double precision NOT NULL,
    detected_at    timestamptz      NOT NULL,
    PRIMARY KEY (symbol, session)
);
