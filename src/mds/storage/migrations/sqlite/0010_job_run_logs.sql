-- Per-run log lines (issue 18): the newest lines a run's executions logged, as a JSON
-- list of strings, oldest first, for the admin console's job drill-in.
ALTER TABLE job_runs ADD COLUMN logs TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(logs));
