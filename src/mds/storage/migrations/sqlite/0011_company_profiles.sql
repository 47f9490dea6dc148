-- Company profiles (market capitalisation, shares outstanding), SQLite. as_of is epoch
-- MICROseconds UTC: when MDS learned the profile.

-- Every profile MDS learned, point in time: a row is what one provider said about one
-- symbol at as_of; a refresh adds a row, a second write at the same (symbol, as_of)
-- replaces it. The primary key serves both reads: "the newest row at or before T per
-- symbol" (one seek per symbol) and a symbol's history, newest first. Strings the vendor
-- did not give are '' (as on CompanyProfile), numbers it did not give NULL.
CREATE TABLE company_profiles (
    symbol             TEXT    NOT NULL,
    as_of              INTEGER NOT NULL,
    provider           TEXT    NOT NULL,
    market_cap         REAL    CHECK (market_cap IS NULL OR market_cap >= 0),
    shares_outstanding REAL    CHECK (shares_outstanding IS NULL OR shares_outstanding >= 0),
    currency           TEXT    NOT NULL DEFAULT '',
    name               TEXT    NOT NULL DEFAULT '',
    sector             TEXT    NOT NULL DEFAULT '',
    industry           TEXT    NOT NULL DEFAULT '',
    exchange           TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (symbol, as_of)
) WITHOUT ROWID;
