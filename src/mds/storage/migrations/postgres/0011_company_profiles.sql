-- Company profiles (market capitalisation, shares outstanding), PostgreSQL: the same table
-- as migrations/sqlite/0011_company_profiles.sql.

-- Every profile MDS learned, point in time: a row is what one provider said about one
-- symbol at as_of; a refresh adds a row, a second write at the same (symbol, as_of)
-- replaces it. The primary key serves both reads: "the newest row at or before T per
-- symbol" (one backward index seek per symbol) and a symbol's history, newest first.
-- Strings the vendor did not give are '' (as on CompanyProfile), numbers it did not give NULL.
CREATE TABLE company_profiles (
    symbol             text             NOT NULL,
    as_of              timestamptz      NOT NULL,
    provider           text             NOT NULL,
    market_cap         double precision CHECK (market_cap IS NULL OR market_cap >= 0),
    shares_outstanding double precision CHECK (shares_outstanding IS NULL OR shares_outstanding >= 0),
    currency           text             NOT NULL DEFAULT '',
    name               text             NOT NULL DEFAULT '',
    sector             text             NOT NULL DEFAULT '',
    industry           text             NOT NULL DEFAULT '',
    exchange           text             NOT NULL DEFAULT '',
    PRIMARY KEY (symbol, as_of)
);
