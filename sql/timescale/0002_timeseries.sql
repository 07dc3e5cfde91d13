-- 0002 (TimescaleDB): the observation hypertable. Follows runbook-errata §1-3:
--   * a plain table turned into a hypertable on a TIMESTAMPTZ period (no PARTITION BY, no space partitions);
--   * plain CREATE INDEX (CONCURRENTLY is not supported on hypertables);
--   * compression settings before the compression policy;
--   * a continuous aggregate that time_buckets the hypertable's time column;
--   * retention is configurable and applied by eia_apply_retention() (0 = keep all), not hard-coded here.
CREATE TABLE IF NOT EXISTS eia_series_timeseries (
    tenant_id           TEXT NOT NULL DEFAULT 'aurum-prod',
    series_id           TEXT NOT NULL,
    period              TIMESTAMPTZ NOT NULL,
    period_end          TIMESTAMPTZ NOT NULL,
    raw_period          TEXT NOT NULL,
    frequency           TEXT NOT NULL,
    value               DOUBLE PRECISION,
    raw_value           TEXT,
    value_flag          TEXT,
    unit                TEXT,
    canonical_unit      TEXT,
    canonical_currency  TEXT,
    conversion_factor   DOUBLE PRECISION,
    canonical_value     DOUBLE PRECISION,
    area                TEXT,
    sector              TEXT,
    seasonal_adjustment TEXT,
    description         TEXT,
    source              TEXT NOT NULL,
    dataset             TEXT,
    metadata            JSONB,
    ingest_ts           BIGINT NOT NULL,
    ingest_job_id       TEXT,
    ingest_run_id       TEXT,
    ingest_batch_id     TEXT NOT NULL,
    revision            INTEGER NOT NULL DEFAULT 0,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, series_id, period)
);

SELECT create_hypertable('eia_series_timeseries', by_range('period', INTERVAL '1 month'), if_not_exists => TRUE);

CREATE INDEX IF NOT EXISTS idx_eia_series_period ON eia_series_timeseries (series_id, period DESC);
CREATE INDEX IF NOT EXISTS idx_eia_frequency ON eia_series_timeseries (frequency, period DESC);
CREATE INDEX IF NOT EXISTS idx_eia_sector ON eia_series_timeseries (sector, period DESC);
CREATE INDEX IF NOT EXISTS idx_eia_area ON eia_series_timeseries (area, period DESC);
CREATE INDEX IF NOT EXISTS idx_eia_ingest_ts ON eia_series_timeseries (ingest_ts DESC);

ALTER TABLE eia_series_timeseries SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'tenant_id, series_id',
    timescaledb.compress_orderby = 'period DESC'
);
SELECT add_compression_policy('eia_series_timeseries', compress_after => INTERVAL '2 years', if_not_exists => TRUE);

CREATE MATERIALIZED VIEW IF NOT EXISTS eia_monthly_aggregates
WITH (timescaledb.continuous) AS
SELECT
    tenant_id,
    series_id,
    frequency,
    sector,
    area,
    time_bucket(INTERVAL '1 month', period) AS bucket,
    count(*) AS observation_count,
    avg(value) AS avg_value,
    min(value) AS min_value,
    max(value) AS max_value,
    stddev(value) AS stddev_value,
    sum(value) AS total_value
FROM eia_series_timeseries
GROUP BY tenant_id, series_id, frequency, sector, area, time_bucket(INTERVAL '1 month', period)
WITH NO DATA;

SELECT add_continuous_aggregate_policy('eia_monthly_aggregates',
    start_offset => INTERVAL '3 months',
    end_offset => INTERVAL '1 month',
    schedule_interval => INTERVAL '1 day',
    if_not_exists => TRUE);

-- Hypertables create chunks themselves; the loader calls this on both flavours.
CREATE OR REPLACE FUNCTION eia_ensure_partitions(p_from TIMESTAMPTZ, p_to TIMESTAMPTZ)
RETURNS INTEGER LANGUAGE sql AS $$ SELECT 0 $$;

-- Retention on data time (errata §3): 0 keeps everything.
CREATE OR REPLACE FUNCTION eia_apply_retention(p_years INTEGER)
RETURNS TEXT LANGUAGE plpgsql AS $$
BEGIN
    PERFORM remove_retention_policy('eia_series_timeseries', if_exists => TRUE);
    IF p_years > 0 THEN
        PERFORM add_retention_policy('eia_series_timeseries', make_interval(years => p_years));
        RETURN format('retention policy: drop chunks older than %s years', p_years);
    END IF;
    RETURN 'retention policy: keep all';
END $$;

-- Refresh the monthly aggregates (a continuous aggregate refreshes itself on its policy).
CREATE OR REPLACE PROCEDURE eia_refresh_aggregates()
LANGUAGE plpgsql AS $$
BEGIN
    CALL refresh_continuous_aggregate('eia_monthly_aggregates', NULL, NULL);
END $$;
