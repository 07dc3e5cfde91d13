-- 0006 least privilege: two NOLOGIN group roles; people and services log in as members of one.
--   eia_writer  ingestion (flows, `eia` commands): read and write the pipeline's rows, never its DDL.
--   eia_reader  analysts and the collector: SELECT only.
-- An administrator creates the LOGIN users (docs/security.md), e.g.
--   CREATE ROLE eia_ingest LOGIN PASSWORD '...' IN ROLE eia_writer;
--   CREATE ROLE eia_collector LOGIN PASSWORD '...' IN ROLE eia_reader;
-- Migrations (DDL, `eia init`) run as the owner of the tables: the role applying this file.
--
-- Partitions and aggregates: on plain PostgreSQL, creating a partition of eia_series_timeseries needs
-- ownership of the table, and REFRESH MATERIALIZED VIEW needs ownership of the view. Instead of giving
-- the writer ownership (which would let it drop or alter the tables), eia_ensure_partitions() and
-- eia_refresh_aggregates() run as their owner (SECURITY DEFINER, with a pinned search_path; they take
-- only timestamps and no arguments, so nothing a caller passes reaches the DDL as text). On TimescaleDB
-- chunks are created by TimescaleDB itself for anyone who may INSERT, eia_ensure_partitions() is a
-- no-op, and the continuous aggregate is refreshed by its policy job (owner's rights);
-- refresh_continuous_aggregate() cannot run inside a SECURITY DEFINER procedure, so there
-- eia_refresh_aggregates() stays an owner-only maintenance call.
--
-- Idempotent: roles are created only when missing (roles are cluster-wide, so several databases of a
-- cluster share them), and GRANT/REVOKE repeat harmlessly. Future tables, partitions, sequences and
-- functions created by the owner get the same privileges through default privileges.

DO $$
DECLARE
    r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['eia_reader', 'eia_writer'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            IF NOT EXISTS (
                SELECT FROM pg_catalog.pg_roles WHERE rolname = current_user AND (rolcreaterole OR rolsuper)
            ) THEN
                RAISE EXCEPTION 'migration 0006 needs the role % and % may not create roles', r, current_user
                    USING HINT = format('an administrator runs: CREATE ROLE %I NOLOGIN; then rerun `eia init`', r);
            END IF;
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object THEN
                NULL;  -- created meanwhile by a migration of another database in the cluster
            END;
        END IF;
    END LOOP;
END $$;

DO $$
DECLARE
    s    TEXT := current_schema();
    fn   RECORD;
    ts   BOOLEAN := EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'timescaledb');
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO eia_reader, eia_writer', s);

    -- Reader: every table and view (time series, aggregates, run log, breaker, ledger, quality, ...).
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO eia_reader', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO eia_reader', s);

    -- Writer: rows only. No TRUNCATE, REFERENCES or TRIGGER; no CREATE on the schema.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO eia_writer', s);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO eia_writer', s);
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO eia_writer', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO eia_writer', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT EXECUTE ON FUNCTIONS TO eia_writer', s);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT EXECUTE ON ROUTINES TO eia_writer', s);

    -- The migration history is the owner's (the migrator creates that table itself, before 0001);
    -- the audit log is append-only for the writer.
    IF to_regclass(format('%I.eia_schema_migrations', s)) IS NOT NULL THEN
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I.eia_schema_migrations FROM eia_writer', s);
    END IF;
    EXECUTE format('REVOKE UPDATE, DELETE ON %I.eia_audit_log FROM eia_writer', s);

    -- The pipeline's routines: EXECUTE for the writer only (PostgreSQL grants it to PUBLIC by default);
    -- eia_apply_retention() changes retention policies and stays with the owner (`eia init`).
    FOR fn IN
        SELECT p.oid::regprocedure AS sig, p.proname, p.prokind
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = s::regnamespace AND p.proname LIKE 'eia\_%'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC', fn.sig);
        IF fn.proname <> 'eia_apply_retention' THEN
            EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO eia_writer', fn.sig);
        END IF;
    END LOOP;

    -- Partition creation runs with the owner's rights (see the header).
    EXECUTE format(
        'ALTER FUNCTION %I.eia_ensure_partitions(timestamptz, timestamptz) SECURITY DEFINER SET search_path = %I, pg_temp',
        s, s);
    IF NOT ts THEN
        EXECUTE format(
            'ALTER PROCEDURE %I.eia_refresh_aggregates() SECURITY DEFINER SET search_path = %I, pg_temp', s, s);
    END IF;
END $$;
