-- 0002 (plain PostgreSQL fallback, chosen when the timescaledb extension is not available):
-- the same table with native monthly range partitions created on demand by eia_ensure_partitions(),
-- and a plain materialized view in place of the continuous aggregate.
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
) PARTITION BY RANGE (period);

CREATE INDEX IF NOT EXISTS idx_eia_series_period ON eia_series_timeseries (series_id, period DESC);
CREATE INDEX IF NOT EXISTS idx_eia_frequency ON eia_series_timeseries (frequency, period DESC);
CREATE INDEX IF NOT EXISTS idx_eia_sector ON eia_series_timeseries (sector, period DESC);
CREATE INDEX IF NOT EXISTS idx_eia_area ON eia_series_timeseries (area, period DESC);
CREATE INDEX IF NOT EXISTS idx_eia_ingest_ts ON eia_series_timeseries (ingest_ts DESC);

-- Creates the missing monthly partitions covering [p_from, p_to]; returns how many it created.
-- Serialised by an advisory lock so concurrent loaders never race on the same partition.
CREATE OR REPLACE FUNCTION eia_ensure_partitions(p_from TIMESTAMPTZ, p_to TIMESTAMPTZ)
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    m       TIMESTAMPTZ := date_trunc('month', p_from AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    last_m  TIMESTAMPTZ := date_trunc('month', p_to AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    part    TEXT;
    created INTEGER := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('eia_series_timeseries_partitions'));
    WHILE m <= last_m LOOP
        part := format('eia_series_timeseries_p%s', to_char(m AT TIME ZONE 'UTC', 'YYYYMM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF eia_series_timeseries FOR VALUES FROM (%L) TO (%L)',
                part, m, m + INTERVAL '1 month');
            created := created + 1;
        END IF;
        m := m + INTERVAL '1 month';
    END LOOP;
    RETURN created;
END $$;

-- Retention on data time (errata §3) is enforced by the loader, which skips rows past the horizon;
-- plain PostgreSQL has no policy scheduler, so this only reports the setting.
CREATE OR REPLACE FUNCTION eia_apply_retention(p_years INTEGER)
RETURNS TEXT LANGUAGE sql AS $$
    SELECT CASE WHEN p_years > 0
        THEN format('retention: rows older than %s years are skipped at load (no policy on plain PostgreSQL)', p_years)
        ELSE 'retention policy: keep all' END
$$;

CREATE MATERIALIZED VIEW IF NOT EXISTS eia_monthly_aggregates AS
SELECT
    tenant_id,
    series_id,
    frequency,
    sector,
    area,
    date_trunc('month', period AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
    count(*) AS observation_count,
    avg(value) AS avg_value,
    min(value) AS min_value,
    max(value) AS max_value,
    stddev(value) AS stddev_value,
    sum(value) AS total_value
FROM eia_series_timeseries
GROUP BY 1, 2, 3, 4, 5, 6
WITH NO DATA;

-- Allows REFRESH ... CONCURRENTLY (readers are never blocked by a refresh).
CREATE UNIQUE INDEX IF NOT EXISTS eia_monthly_aggregates_key
    ON eia_monthly_aggregates (tenant_id, series_id, frequency, sector, area, bucket) NULLS NOT DISTINCT;

CREATE OR REPLACE PROCEDURE eia_refresh_aggregates()
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_matviews WHERE matviewname = 'eia_monthly_aggregates' AND ispopulated) THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY eia_monthly_aggregates;
    ELSE
        REFRESH MATERIALIZED VIEW eia_monthly_aggregates;
    END IF;
END $$;
