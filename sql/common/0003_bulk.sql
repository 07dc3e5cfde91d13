-- 0003 bulk: which EIA bulk archive versions are loaded, and where an unfinished load stands.
-- Both are durable operational state (architecture.md): a pod that dies mid-archive is replaced
-- by one that resumes from the last committed batch, and a monthly run skips unchanged datasets.

-- One row per dataset version fully loaded. `last_updated` is the manifest's own stamp, kept
-- verbatim: it is what EIA announces and what the next run compares. Counts cover the whole
-- archive, including batches committed by earlier (interrupted) runs.
CREATE TABLE IF NOT EXISTS eia_bulk_versions (
    tenant_id      TEXT NOT NULL,
    dataset        TEXT NOT NULL,
    last_updated   TEXT NOT NULL,
    etag           TEXT,
    last_modified  TEXT,
    archive_sha256 TEXT,
    archive_bytes  BIGINT,
    member_bytes   BIGINT,
    lines          BIGINT NOT NULL DEFAULT 0,
    batches        INTEGER NOT NULL DEFAULT 0,
    received       BIGINT NOT NULL DEFAULT 0,
    inserted       BIGINT NOT NULL DEFAULT 0,
    updated        BIGINT NOT NULL DEFAULT 0,
    unchanged      BIGINT NOT NULL DEFAULT 0,
    quarantined    BIGINT NOT NULL DEFAULT 0,
    skipped        BIGINT NOT NULL DEFAULT 0,
    run_id         TEXT,
    started_at     TIMESTAMPTZ,
    loaded_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, dataset, last_updated)
);
CREATE INDEX IF NOT EXISTS eia_bulk_versions_latest_idx ON eia_bulk_versions (tenant_id, dataset, loaded_at DESC);

-- At most one unfinished load per dataset. Written in the same transaction as each merged batch,
-- so it never claims a batch that did not commit. The position is the member line in progress
-- (its number and byte offset in the decompressed `.txt`) plus how many of that line's items
-- (observations, then rejections) are already committed: one series line can hold more
-- observations than a batch. Removed when the version is recorded in eia_bulk_versions.
CREATE TABLE IF NOT EXISTS eia_bulk_checkpoints (
    tenant_id      TEXT NOT NULL,
    dataset        TEXT NOT NULL,
    last_updated   TEXT NOT NULL,
    archive_sha256 TEXT NOT NULL,
    etag           TEXT,
    last_modified  TEXT,
    line_number    BIGINT NOT NULL DEFAULT 0 CHECK (line_number >= 0),
    byte_offset    BIGINT NOT NULL DEFAULT 0 CHECK (byte_offset >= 0),
    items_done     BIGINT NOT NULL DEFAULT 0 CHECK (items_done >= 0),
    batches        INTEGER NOT NULL DEFAULT 0,
    received       BIGINT NOT NULL DEFAULT 0,
    inserted       BIGINT NOT NULL DEFAULT 0,
    updated        BIGINT NOT NULL DEFAULT 0,
    unchanged      BIGINT NOT NULL DEFAULT 0,
    quarantined    BIGINT NOT NULL DEFAULT 0,
    skipped        BIGINT NOT NULL DEFAULT 0,
    run_id         TEXT,
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, dataset)
);

-- Bulk series lines carry keys the shared metadata columns do not name (geoset_id, unitsshort,
-- start, end, geography2, latlon, ...); keep them rather than drop them.
ALTER TABLE eia_series_metadata ADD COLUMN IF NOT EXISTS extra JSONB;
