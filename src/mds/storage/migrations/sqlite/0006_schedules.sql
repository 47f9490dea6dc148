-- Schedules and job runs (seed 004), SQLite. Times are epoch MICROseconds UTC; JSON
-- columns hold JSON text; logical_date is an ISO date ('2026-01-05').

-- One row per schedule: the spec (WHEN is an SQL keyword, hence when_expr), its pause
-- state and the scheduler's fire mark (last_due_at). since is when the caller wrote this
-- version (fires are planned from it); revision grows with every write (not with fires),
-- and count(*) with max(revision) is what tells a scheduler to reload.
CREATE TABLE schedules (
    name            TEXT    PRIMARY KEY,
    task            TEXT    NOT NULL,
    cron            TEXT,
    timezone        TEXT    NOT NULL DEFAULT 'UTC',
    calendar        TEXT,
    when_expr       TEXT,
    args            TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(args)),
    kwargs          TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(kwargs)),
    metadata        TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    paused_snapshot TEXT    CHECK (paused_snapshot IS NULL OR json_valid(paused_snapshot)),
    last_due_at     INTEGER,
    since           INTEGER,
    revision        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Every task execution. AUTOINCREMENT: an id is never handed out twice, even after the
-- newest rows are purged, so a stale queue message cannot claim somebody else's run.
-- No foreign key to schedules: runs outlive a deleted schedule. trigger has no CHECK
-- (a label; a new trigger should not need a table rebuild); status has one because the
-- claim and expiry statements read it.
CREATE TABLE job_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task         TEXT    NOT NULL,
    schedule     TEXT,
    trigger      TEXT    NOT NULL,
    logical_date TEXT    NOT NULL CHECK (logical_date = date(logical_date)),
    status       TEXT    NOT NULL
                         CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timed_out', 'skipped')),
    queue        TEXT    NOT NULL DEFAULT 'default',
    priority     INTEGER NOT NULL DEFAULT 5,
    due_at       INTEGER,
    params       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
    metadata     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    counters     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(counters)),
    error        TEXT,
    note         TEXT,
    attempt      INTEGER NOT NULL DEFAULT 0,
    queued_at    INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    duration_s   REAL,
    lease_until  INTEGER,
    created_by   TEXT
);
CREATE INDEX ix_job_runs_queued ON job_runs (queued_at DESC, id DESC);
CREATE INDEX ix_job_runs_task ON job_runs (task, queued_at);
CREATE INDEX ix_job_runs_status ON job_runs (status);
CREATE INDEX ix_job_runs_schedule ON job_runs (schedule, logical_date);
-- Claims count the running runs of one schedule or task; only a handful run at a time.
CREATE INDEX ix_job_runs_running ON job_runs (task, schedule) WHERE status = 'running';
