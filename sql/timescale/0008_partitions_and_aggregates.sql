-- 0008 (TimescaleDB): the loader's per-batch partition call. Hypertables create their chunks
-- themselves, so this is a no-op kept for the same call on both flavours; the continuous aggregate is
-- kept current by its refresh policy (0002), so nothing else is needed here.
CREATE OR REPLACE FUNCTION eia_ensure_partitions(p_months TIMESTAMPTZ[])
RETURNS INTEGER LANGUAGE sql AS $$ SELECT 0 $$;

DO $$
BEGIN
    EXECUTE 'REVOKE EXECUTE ON FUNCTION eia_ensure_partitions(timestamptz[]) FROM PUBLIC';
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eia_writer') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION eia_ensure_partitions(timestamptz[]) TO eia_writer';
    END IF;
END $$;
