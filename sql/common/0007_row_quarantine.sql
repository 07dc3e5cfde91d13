-- 0007 row-level quarantine: a quarantined row is filed once, however often it is fetched again.
--
-- A row's natural key is (tenant, source, dataset, series, raw period, raw value, reason); for a row
-- without a series id (a bulk line that is not JSON, an id too long to store) the raw payload stands
-- in for the series. Re-reading the same archive version or re-fetching the same API rows then adds
-- no second quarantine row and, because DLQ messages are written only for rows actually inserted, no
-- second DLQ message (INSERT ... ON CONFLICT DO NOTHING against eia_series_quarantine_natural_key).
--
-- Rows quarantined before this migration keep every copy: the first of each key gets the key, later
-- copies keep NULL (NULLs never conflict), so nothing stored is lost or rewritten.
CREATE OR REPLACE FUNCTION eia_quarantine_key(
    p_source TEXT, p_dataset TEXT, p_series_id TEXT, p_raw_period TEXT, p_raw_value TEXT, p_reason TEXT,
    p_payload JSONB)
RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- Each part is length-prefixed, so no two different tuples can spell the same text.
    SELECT md5(
        length(coalesce(p_source, '')) || ':' || coalesce(p_source, '') || '|' ||
        coalesce(length(p_dataset) || ':' || p_dataset, '-') || '|' ||
        coalesce(length(p_series_id) || ':' || p_series_id, '-') || '|' ||
        coalesce(length(p_raw_period) || ':' || p_raw_period, '-') || '|' ||
        coalesce(length(p_raw_value) || ':' || p_raw_value, '-') || '|' ||
        length(p_reason) || ':' || p_reason || '|' ||
        CASE WHEN p_series_id IS NULL THEN coalesce(p_payload::text, '-') ELSE '' END)
$$;

ALTER TABLE eia_series_quarantine ADD COLUMN IF NOT EXISTS natural_key TEXT;

UPDATE eia_series_quarantine q SET natural_key = k.natural_key
FROM (
    SELECT DISTINCT ON (tenant_id, natural_key) id, natural_key
    FROM (SELECT id, tenant_id,
                 eia_quarantine_key(source, dataset, series_id, raw_period, raw_value, reason, payload) AS natural_key
          FROM eia_series_quarantine WHERE natural_key IS NULL) c
    ORDER BY tenant_id, natural_key, id
) k
WHERE q.id = k.id;

CREATE UNIQUE INDEX IF NOT EXISTS eia_series_quarantine_natural_key
    ON eia_series_quarantine (tenant_id, natural_key);

-- What each batch quarantined, by reason (normalizer reasons and rule names), and whether the contract
-- passed again on the rows left after the offending ones were set aside (NULL: no second verification
-- was needed). gate_passed now means "the batch was merged" (not blocked).
ALTER TABLE eia_batch_log ADD COLUMN IF NOT EXISTS quarantined_by_reason JSONB NOT NULL DEFAULT '{}';
ALTER TABLE eia_batch_log ADD COLUMN IF NOT EXISTS recheck_passed BOOLEAN;
ALTER TABLE eia_batch_log ADD COLUMN IF NOT EXISTS blocked_reason TEXT;

-- The key function is called by the writer's INSERTs.
DO $$
BEGIN
    EXECUTE 'REVOKE EXECUTE ON FUNCTION eia_quarantine_key(text, text, text, text, text, text, jsonb) FROM PUBLIC';
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eia_writer') THEN
        EXECUTE 'GRANT EXECUTE ON FUNCTION eia_quarantine_key(text, text, text, text, text, text, jsonb) TO eia_writer';
    END IF;
END $$;
