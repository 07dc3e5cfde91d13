-- 0009 scale out: where each run ran, and one request rate shared by every worker.
--
-- eia_run_log.host / pid: the machine (pod) and process of each flow run, so runs fanned out on a
-- work pool can be told apart (and a test can prove two datasets loaded in two processes).
ALTER TABLE eia_run_log ADD COLUMN IF NOT EXISTS host TEXT;
ALTER TABLE eia_run_log ADD COLUMN IF NOT EXISTS pid INTEGER;

-- The global back-off of the request rate, one row per tenant (tasks/quota/throttle.py). A 429 seen
-- by any worker halves `factor` (one atomic UPDATE, at most once per burst); it recovers with time
-- since `throttled_at`, the same for every worker. Each worker runs at
--   min(base rate, quota spread) * recovered factor / live workers (eia_rate_state rows),
-- so all workers together never exceed the allowed global rate.
CREATE TABLE IF NOT EXISTS eia_throttle_state (
    tenant_id        TEXT PRIMARY KEY,
    factor           DOUBLE PRECISION NOT NULL DEFAULT 1 CHECK (factor > 0 AND factor <= 1),
    throttled_at     TIMESTAMPTZ,
    throttle_events  BIGINT NOT NULL DEFAULT 0,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
