-- 0001 core: every table except the time-series table itself (see 0002 per flavour).
-- Column names of the staging table follow tasks/normalize/observation.py (STAGED_COLUMNS);
-- tests/store/test_schema.py checks them against the live database.

-- The staging area for one batch at a time (COPY target). UNLOGGED: a crash loses only
-- un-merged staging rows, and every batch is re-derivable from its source.
CREATE UNLOGGED TABLE IF NOT EXISTS eia_series_staging (
    tenant_id           TEXT NOT NULL,
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
    ingest_batch_id     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS eia_series_staging_batch_idx ON eia_series_staging (ingest_batch_id);

-- Rows that did not make it into the table, with the reason. Nothing received is dropped silently.
CREATE TABLE IF NOT EXISTS eia_series_quarantine (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    series_id       TEXT,
    raw_period      TEXT,
    raw_value       TEXT,
    reason          TEXT NOT NULL,
    detail          TEXT,
    source          TEXT NOT NULL,
    dataset         TEXT,
    payload         JSONB,
    ingest_run_id   TEXT,
    ingest_batch_id TEXT NOT NULL,
    quarantined_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS eia_series_quarantine_reason_idx ON eia_series_quarantine (reason, quarantined_at DESC);
CREATE INDEX IF NOT EXISTS eia_series_quarantine_series_idx ON eia_series_quarantine (series_id);
CREATE INDEX IF NOT EXISTS eia_series_quarantine_batch_idx ON eia_series_quarantine (ingest_batch_id);

-- EIA revises history: the value a row had before each change.
CREATE TABLE IF NOT EXISTS eia_series_revisions (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    series_id       TEXT NOT NULL,
    period          TIMESTAMPTZ NOT NULL,
    raw_period      TEXT NOT NULL,
    old_revision    INTEGER NOT NULL,
    old_value       DOUBLE PRECISION,
    old_raw_value   TEXT,
    old_value_flag  TEXT,
    new_value       DOUBLE PRECISION,
    new_raw_value   TEXT,
    new_value_flag  TEXT,
    ingest_run_id   TEXT,
    ingest_batch_id TEXT NOT NULL,
    revised_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS eia_series_revisions_series_idx ON eia_series_revisions (tenant_id, series_id, period);

-- Series metadata, shared by the API and bulk paths.
CREATE TABLE IF NOT EXISTS eia_series_metadata (
    tenant_id     TEXT NOT NULL,
    series_id     TEXT NOT NULL,
    name          TEXT,
    units         TEXT,
    frequency     TEXT,
    description   TEXT,
    source        TEXT,
    copyright     TEXT,
    geography     TEXT,
    iso3166       TEXT,
    latitude      DOUBLE PRECISION,
    longitude     DOUBLE PRECISION,
    last_updated  TEXT,
    dataset       TEXT,
    route         TEXT,
    facets        JSONB,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, series_id)
);

-- The bulk files' category tree.
CREATE TABLE IF NOT EXISTS eia_categories (
    tenant_id          TEXT NOT NULL,
    dataset            TEXT NOT NULL,
    category_id        BIGINT NOT NULL,
    parent_category_id BIGINT,
    name               TEXT NOT NULL,
    notes              TEXT,
    childseries        TEXT[] NOT NULL DEFAULT '{}',
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, dataset, category_id)
);

-- One row per flow run; counts reconcile: received = inserted + updated + unchanged + quarantined + skipped.
CREATE TABLE IF NOT EXISTS eia_run_log (
    run_id       TEXT PRIMARY KEY,
    flow_name    TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at     TIMESTAMPTZ,
    series       INTEGER NOT NULL DEFAULT 0,
    received     BIGINT NOT NULL DEFAULT 0,
    inserted     BIGINT NOT NULL DEFAULT 0,
    updated      BIGINT NOT NULL DEFAULT 0,
    unchanged    BIGINT NOT NULL DEFAULT 0,
    quarantined  BIGINT NOT NULL DEFAULT 0,
    skipped      BIGINT NOT NULL DEFAULT 0,
    requests     BIGINT NOT NULL DEFAULT 0,
    message      TEXT,
    details      JSONB
);
CREATE INDEX IF NOT EXISTS eia_run_log_flow_idx ON eia_run_log (flow_name, started_at DESC);

-- One row per gated batch, written in the merge transaction (or with the quarantine on a failed gate).
CREATE TABLE IF NOT EXISTS eia_batch_log (
    batch_id      TEXT PRIMARY KEY,
    run_id        TEXT,
    tenant_id     TEXT NOT NULL,
    source        TEXT NOT NULL,
    dataset       TEXT,
    received      BIGINT NOT NULL,
    inserted      BIGINT NOT NULL DEFAULT 0,
    updated       BIGINT NOT NULL DEFAULT 0,
    unchanged     BIGINT NOT NULL DEFAULT 0,
    quarantined   BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0,
    gate_passed   BOOLEAN NOT NULL,
    failed_checks TEXT[] NOT NULL DEFAULT '{}',
    quality_score DOUBLE PRECISION,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS eia_batch_log_run_idx ON eia_batch_log (run_id);

-- Every check's outcome per gated batch.
CREATE TABLE IF NOT EXISTS eia_quality_results (
    id             BIGSERIAL PRIMARY KEY,
    batch_id       TEXT NOT NULL,
    run_id         TEXT,
    tenant_id      TEXT NOT NULL,
    check_name     TEXT NOT NULL,
    severity       TEXT NOT NULL CHECK (severity IN ('fail', 'warn')),
    outcome        TEXT NOT NULL CHECK (outcome IN ('pass', 'fail', 'warn', 'error')),
    measured_value DOUBLE PRECISION,
    threshold      DOUBLE PRECISION,
    checked_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS eia_quality_results_batch_idx ON eia_quality_results (batch_id);
CREATE INDEX IF NOT EXISTS eia_quality_results_time_idx ON eia_quality_results (checked_at DESC);

-- Circuit-breaker state shared by every process (pybreaker storage).
CREATE TABLE IF NOT EXISTS eia_breaker_state (
    name            TEXT PRIMARY KEY,
    state           TEXT NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half-open')),
    fail_counter    INTEGER NOT NULL DEFAULT 0,
    success_counter INTEGER NOT NULL DEFAULT 0,
    opened_at       TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Who did what operational change, and when (breaker resets, quota resets, budget changes).
CREATE TABLE IF NOT EXISTS eia_audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    details JSONB
);

-- Transactional outbox: Kafka messages written in the same transaction as the rows they describe.
CREATE TABLE IF NOT EXISTS eia_outbox (
    id          BIGSERIAL PRIMARY KEY,
    topic       TEXT NOT NULL,
    message_key TEXT NOT NULL,
    payload     JSONB NOT NULL,
    version     INTEGER NOT NULL DEFAULT 0,
    kind        TEXT NOT NULL CHECK (kind IN ('observation', 'quarantine')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at     TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS eia_outbox_pending_idx ON eia_outbox (id) WHERE sent_at IS NULL;
