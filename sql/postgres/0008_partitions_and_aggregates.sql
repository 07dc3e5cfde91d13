-- 0008 (plain PostgreSQL): partitions only for the periods a batch holds, yearly where a year has no
-- monthly partition yet; and a monthly aggregate that can always be queried.
--
-- Why: eia_ensure_partitions(from, to) created every month between a batch's first and last period,
-- so one annual series from 1920 next to this month's hourly data created 1,300 partitions in one
-- transaction (PostgreSQL ran out of lock memory at about 1,350) and every lookup of a series' newest
-- row probed all of them. EIA's history is long and mostly annual or monthly: a year per partition
-- keeps the count near the number of years with data. Years that already have monthly partitions
-- (databases loaded before this migration) keep getting monthly ones, so no range ever overlaps.
CREATE OR REPLACE FUNCTION eia_ensure_partitions(p_months TIMESTAMPTZ[])
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    m        TIMESTAMPTZ;
    y        TIMESTAMPTZ;
    monthly  TEXT;
    yearly   TEXT;
    created  INTEGER := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('eia_series_timeseries_partitions'));
    FOR m IN SELECT DISTINCT date_trunc('month', p AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
             FROM unnest(p_months) AS p WHERE p IS NOT NULL ORDER BY 1 LOOP
        y := date_trunc('year', m AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
        monthly := format('eia_series_timeseries_p%s', to_char(m AT TIME ZONE 'UTC', 'YYYYMM'));
        yearly := format('eia_series_timeseries_y%s', to_char(y AT TIME ZONE 'UTC', 'YYYY'));
        CONTINUE WHEN to_regclass(monthly) IS NOT NULL OR to_regclass(yearly) IS NOT NULL;
        IF EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid
                   WHERE i.inhparent = 'eia_series_timeseries'::regclass
                     AND c.relname LIKE format('eia\_series\_timeseries\_p%s__', to_char(y AT TIME ZONE 'UTC', 'YYYY')))
        THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF eia_series_timeseries FOR VALUES FROM (%L) TO (%L)',
                monthly, m, m + INTERVAL '1 month');
        ELSE
            EXECUTE format('CREATE TABLE %I PARTITION OF eia_series_timeseries FOR VALUES FROM (%L) TO (%L)',
                yearly, y, y + INTERVAL '1 year');
        END IF;
        created := created + 1;
    END LOOP;
    RETURN created;
END $$;

-- The range form (kept for callers that pass a window) covers the window's months the same way.
CREATE OR REPLACE FUNCTION eia_ensure_partitions(p_from TIMESTAMPTZ, p_to TIMESTAMPTZ)
RETURNS INTEGER LANGUAGE sql AS $$
    SELECT eia_ensure_partitions(array_agg(g AT TIME ZONE 'UTC'))
    FROM generate_series(date_trunc('month', p_from AT TIME ZONE 'UTC'),
                         date_trunc('month', p_to AT TIME ZONE 'UTC'), INTERVAL '1 month') AS g
$$;

-- Both run with the owner's rights, as 0006 set up for the original (see 0006's header).
DO $$
DECLARE
    s TEXT := current_schema();
    sig TEXT;
BEGIN
    FOREACH sig IN ARRAY ARRAY['eia_ensure_partitions(timestamptz[])', 'eia_ensure_partitions(timestamptz, timestamptz)'] LOOP
        EXECUTE format('ALTER FUNCTION %I.%s SECURITY DEFINER SET search_path = %I, pg_temp', s, sig, s);
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %I.%s FROM PUBLIC', s, sig);
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eia_writer') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %I.%s TO eia_writer', s, sig);
        END IF;
    END LOOP;
END $$;

-- 0002 created the aggregate WITH NO DATA, and a never-refreshed materialized view cannot be read
-- ("has not been populated"). Populate it now; the loaders refresh it (CONCURRENTLY) after each run
-- that changed rows.
CALL eia_refresh_aggregates();
