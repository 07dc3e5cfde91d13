-- 0005 monitoring: what the monitoring flows found, kept durably so the collector can export it
-- at scrape time and so a monitor emits an event when a check crosses its threshold (not on every
-- run while it stays breached). Both tables are rewritten by the monitors; nothing else writes them.

-- The latest staleness verdict per series, replaced as a whole by each eia_staleness_monitor run
-- (one transaction), read by the collector for eia_stale_series.
CREATE TABLE IF NOT EXISTS eia_series_staleness (
    tenant_id         TEXT NOT NULL,
    series_id         TEXT NOT NULL,
    entry_id          TEXT,
    frequency         TEXT NOT NULL,
    newest_period     TIMESTAMPTZ,
    next_period       TIMESTAMPTZ,
    due_at            TIMESTAMPTZ,
    lateness_seconds  DOUBLE PRECISION NOT NULL DEFAULT 0,
    stale             BOOLEAN NOT NULL,
    checked_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, series_id)
);
CREATE INDEX IF NOT EXISTS eia_series_staleness_stale_idx ON eia_series_staleness (tenant_id) WHERE stale;

-- One row per (monitor, check): its current state and since when. A monitor compares its new
-- verdict with this row and emits `eia.monitor.breached` / `eia.monitor.recovered` on a change.
CREATE TABLE IF NOT EXISTS eia_monitor_checks (
    tenant_id   TEXT NOT NULL,
    monitor     TEXT NOT NULL,
    check_name  TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('ok', 'breached')),
    severity    TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    value       DOUBLE PRECISION,
    threshold   DOUBLE PRECISION,
    message     TEXT NOT NULL DEFAULT '',
    details     JSONB,
    changed_at  TIMESTAMPTZ NOT NULL,
    checked_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, monitor, check_name)
);
