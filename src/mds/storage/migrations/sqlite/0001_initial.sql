-- MDS initial schema (SQLite).
-- Time columns: bar/job ranges are epoch SECONDS UTC (a bar's ts is its interval's open);
-- as_of, superseded_at, created_at, updated_at and quote ts are epoch MICROseconds UTC.

-- The current revision of every bar. WITHOUT ROWID clusters rows by the primary key, so
-- a range read of one series is one contiguous scan and "latest" reads never touch history.
CREATE TABLE candles (
    symbol   TEXT    NOT NULL,
    interval TEXT    NOT NULL,
    ts       INTEGER NOT NULL,
    open     REAL    NOT NULL,
    high     REAL    NOT NULL,
    low      REAL    NOT NULL,
    close    REAL    NOT NULL,
    volume   REAL    NOT NULL,
    provider TEXT    NOT NULL,
    as_of    INTEGER NOT NULL,
    status   TEXT    NOT NULL CHECK (status IN ('provisional', 'final')),
    adjusted INTEGER NOT NULL DEFAULT 0 CHECK (adjusted IN (0, 1)),
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (symbol, interval, ts)
) WITHOUT ROWID;

-- Superseded revisions. A row was current from its as_of until superseded_at (the as_of
-- of the revision that replaced it), which is what read_bars(as_of=T) filters on.
CREATE TABLE candle_history (
    symbol        TEXT    NOT NULL,
    interval      TEXT    NOT NULL,
    ts            INTEGER NOT NULL,
    open          REAL    NOT NULL,
    high          REAL    NOT NULL,
    low           REAL    NOT NULL,
    close         REAL    NOT NULL,
    volume        REAL    NOT NULL,
    provider      TEXT    NOT NULL,
    as_of         INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('provisional', 'final')),
    adjusted      INTEGER NOT NULL CHECK (adjusted IN (0, 1)),
    revision      INTEGER NOT NULL,
    superseded_at INTEGER NOT NULL,
    PRIMARY KEY (symbol, interval, ts, revision)
) WITHOUT ROWID;

CREATE TABLE quotes_l1 (
    symbol   TEXT    NOT NULL,
    ts       INTEGER NOT NULL,
    bid      REAL,
    ask      REAL,
    bid_size REAL,
    ask_size REAL,
    last     REAL    NOT NULL,
    provider TEXT    NOT NULL DEFAULT '',
    as_of    INTEGER,
    PRIMARY KEY (symbol, ts, provider)
) WITHOUT ROWID;

CREATE TABLE symbol_universe (
    symbol     TEXT    PRIMARY KEY,
    tier       TEXT    NOT NULL CHECK (tier IN ('T0', 'T1', 'T2')),
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    name       TEXT    NOT NULL DEFAULT '',
    exchange   TEXT    NOT NULL DEFAULT 'XNYS',
    updated_at INTEGER NOT NULL
);

CREATE INDEX ix_symbol_universe_tier ON symbol_universe (tier, symbol);

CREATE TABLE universe_versions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    version_tag TEXT    NOT NULL UNIQUE,
    source_meta TEXT    NOT NULL DEFAULT '{}',  -- JSON text
    created_at  INTEGER NOT NULL
);

CREATE INDEX ix_universe_versions_created ON universe_versions (created_at DESC);

CREATE TABLE ingestion_cursor (
    symbol     TEXT    NOT NULL,
    interval   TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    last_ts    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (symbol, interval, source)
) WITHOUT ROWID;

CREATE TABLE backfill_jobs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol     TEXT    NOT NULL,
    interval   TEXT    NOT NULL,
    start_ts   INTEGER NOT NULL,
    end_ts     INTEGER NOT NULL,
    priority   TEXT    NOT NULL CHECK (priority IN ('T0', 'T1', 'T2')),
    status     TEXT    NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX ix_backfill_jobs_status ON backfill_jobs (status, priority, updated_at DESC);
CREATE INDEX ix_backfill_jobs_updated ON backfill_jobs (updated_at DESC, id DESC);
