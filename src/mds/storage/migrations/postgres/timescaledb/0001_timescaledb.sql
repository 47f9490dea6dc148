-- TimescaleDB features (applied only where the extension is available; own ledger
-- schema_migrations_timescaledb). Written against TimescaleDB 2.x (2.15+ for the
-- time_bucket offset in a continuous aggregate); tests/integration/test_timescaledb.py
-- runs it on TimescaleDB 2.23 (PGlite, PostgreSQL 17 in WASM).

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Hypertables on ts. migrate_data: the extension may arrive after MDS has stored data.
SELECT create_hypertable('candles', 'ts', chunk_time_interval => INTERVAL '1 day',
                         migrate_data => true, if_not_exists => true);
SELECT create_hypertable('candle_history', 'ts', chunk_time_interval => INTERVAL '7 days',
                         migrate_data => true, if_not_exists => true);
SELECT create_hypertable('quotes_l1', 'ts', chunk_time_interval => INTERVAL '1 day',
                         migrate_data => true, if_not_exists => true);

-- The BRIN index duplicates what chunk exclusion does on a hypertable.
DROP INDEX IF EXISTS ix_candles_ts_brin;

-- Compression after 14 days; one segment per series so a series read stays one segment.
ALTER TABLE candles SET (timescaledb.compress,
                         timescaledb.compress_segmentby = 'symbol, interval',
                         timescaledb.compress_orderby = 'ts');
SELECT add_compression_policy('candles', INTERVAL '14 days', if_not_exists => true);
ALTER TABLE candle_history SET (timescaledb.compress,
                                timescaledb.compress_segmentby = 'symbol, interval',
                                timescaledb.compress_orderby = 'ts, revision');
SELECT add_compression_policy('candle_history', INTERVAL '14 days', if_not_exists => true);

-- Retention: 14 days of quotes (whole chunks). For bars only the 1m series expire after
-- 365 days; a chunk-dropping policy would take daily bars with them, so bars get a job
-- that deletes by interval instead.
SELECT add_retention_policy('quotes_l1', INTERVAL '14 days', if_not_exists => true);

CREATE PROCEDURE mds_expire_1m_bars(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    horizon timestamptz := now() - (config ->> 'keep')::interval;
BEGIN
    DELETE FROM candle_history WHERE interval = '1m' AND ts < horizon;
    DELETE FROM candles WHERE interval = '1m' AND ts < horizon;
END
$$;

SELECT add_job('mds_expire_1m_bars', INTERVAL '1 day', config => '{"keep": "365 days"}');

-- Continuous aggregates 5m and 1h from the current 1m bars (real-time: the newest,
-- not yet materialised buckets are computed on read and unioned in).
CREATE MATERIALIZED VIEW candles_5m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT symbol,
       time_bucket(INTERVAL '5 minutes', ts) AS ts,
       first(open, ts) AS open,
       max(high)       AS high,
       min(low)        AS low,
       last(close, ts) AS close,
       sum(volume)     AS volume,
       count(*)        AS bars
FROM candles
WHERE interval = '1m'
GROUP BY symbol, time_bucket(INTERVAL '5 minutes', ts)
WITH NO DATA;

SELECT add_continuous_aggregate_policy('candles_5m',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '5 minutes',
    schedule_interval => INTERVAL '5 minutes');

-- Hour buckets start at the session open, as services/rollup.py cuts them (09:30-10:30
-- ... 15:30-16:00 ET; an early close ends the last one at 13:00). time_bucket counts
-- whole hours from midnight UTC, so "offset" moves the edges to :30 (a continuous
-- aggregate takes it from TimescaleDB 2.15; on an older one this file fails as a whole
-- and MDS stays in plain mode). That assumes every session opens at :30 UTC, true for
-- XNYS/XNAS (09:30 ET is 13:30 or 14:30 UTC); an exchange opening on another minute
-- needs another offset. 5m buckets need none: 09:30 is on the 5-minute grid.
CREATE MATERIALIZED VIEW candles_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT symbol,
       time_bucket(INTERVAL '1 hour', ts, "offset" => INTERVAL '30 minutes') AS ts,
       first(open, ts) AS open,
       max(high)       AS high,
       min(low)        AS low,
       last(close, ts) AS close,
       sum(volume)     AS volume,
       count(*)        AS bars
FROM candles
WHERE interval = '1m'
GROUP BY symbol, time_bucket(INTERVAL '1 hour', ts, "offset" => INTERVAL '30 minutes')
WITH NO DATA;

SELECT add_continuous_aggregate_policy('candles_1h',
    start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');
