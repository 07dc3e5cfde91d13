-- 0004 usage ledger: every EIA request, per tenant and UTC hour, shared by every worker and pod.
-- Quotas are enforced here (a request is reserved before it is sent), costs and metrics are read
-- from here, and nothing about usage lives in process memory (architecture.md).

-- One row per (tenant, UTC hour). `requests` is incremented by the reservation, before the request
-- is sent, so it is exactly the number of requests sent; the other counters are added after each
-- answer (`requests` minus the status classes is what is in flight, or was cut off by a crash).
-- Latency is a Prometheus histogram: the `latency_le_*` columns are cumulative (a 0.3 s request
-- counts in le 0.5, 1, 2.5, ...), `latency_count` is the +Inf bucket, so sums over hours stay a
-- valid histogram for `eia_request_duration_seconds`.
-- `eia quota reset` never deletes or lowers counts (history and cost stay intact): it moves an
-- offset. Hourly usage = requests - hour_quota_offset of the hour's row; daily usage = the sum of
-- (requests - day_quota_offset) over the UTC day's rows. Two offsets, because resetting the hour
-- must not hand back the day's quota.
CREATE TABLE IF NOT EXISTS eia_usage_ledger (
    tenant_id            TEXT NOT NULL,
    hour_bucket          TIMESTAMPTZ NOT NULL CHECK (extract(epoch FROM hour_bucket) % 3600 = 0),
    requests             BIGINT NOT NULL DEFAULT 0 CHECK (requests >= 0),
    hour_quota_offset    BIGINT NOT NULL DEFAULT 0 CHECK (hour_quota_offset >= 0),
    day_quota_offset     BIGINT NOT NULL DEFAULT 0 CHECK (day_quota_offset >= 0),
    requests_2xx         BIGINT NOT NULL DEFAULT 0,
    requests_3xx         BIGINT NOT NULL DEFAULT 0,
    requests_4xx         BIGINT NOT NULL DEFAULT 0,
    requests_5xx         BIGINT NOT NULL DEFAULT 0,
    requests_no_status   BIGINT NOT NULL DEFAULT 0,  -- no HTTP answer (timeout, connection error): an error
    errors_server_error  BIGINT NOT NULL DEFAULT 0,
    errors_timeout       BIGINT NOT NULL DEFAULT 0,
    errors_malformed     BIGINT NOT NULL DEFAULT 0,
    errors_rate_limited  BIGINT NOT NULL DEFAULT 0,
    errors_auth          BIGINT NOT NULL DEFAULT 0,
    errors_not_found     BIGINT NOT NULL DEFAULT 0,
    errors_client_error  BIGINT NOT NULL DEFAULT 0,
    errors_other         BIGINT NOT NULL DEFAULT 0,
    retries              BIGINT NOT NULL DEFAULT 0,  -- re-sends of a request already sent in the run
    bytes                BIGINT NOT NULL DEFAULT 0,
    latency_sum_s        DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_count        BIGINT NOT NULL DEFAULT 0,
    latency_le_0_1       BIGINT NOT NULL DEFAULT 0,
    latency_le_0_25      BIGINT NOT NULL DEFAULT 0,
    latency_le_0_5       BIGINT NOT NULL DEFAULT 0,
    latency_le_1         BIGINT NOT NULL DEFAULT 0,
    latency_le_2_5       BIGINT NOT NULL DEFAULT 0,
    latency_le_5         BIGINT NOT NULL DEFAULT 0,
    latency_le_10        BIGINT NOT NULL DEFAULT 0,
    latency_le_20        BIGINT NOT NULL DEFAULT 0,
    latency_le_30        BIGINT NOT NULL DEFAULT 0,
    latency_le_60        BIGINT NOT NULL DEFAULT 0,
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, hour_bucket)
);

-- Reserves one request for a tenant, atomically across processes: increments the current hour's
-- `requests` only if both the hourly and the daily usage stay within the limits, and returns the
-- usage including this request. Called as ONE statement (`SELECT * FROM eia_reserve_request(...)`)
-- on an autocommit connection.
-- Why a function and not a bare INSERT ... ON CONFLICT DO UPDATE ... WHERE: that statement re-checks
-- only the conflicting row at its latest version; the daily sum over the other hours' rows comes
-- from the statement's snapshot. At an hour boundary two workers lock different rows and could
-- both pass the daily check. Here a transaction-scoped advisory lock serialises a tenant's
-- reservations, and (READ COMMITTED, VOLATILE function) the queries after it take a fresh snapshot
-- that sees every committed reservation. The lock is held for well under a millisecond.
-- p_now is for tests and back-fills; by default the database clock decides the hour and the day.
CREATE OR REPLACE FUNCTION eia_reserve_request(
    p_tenant TEXT, p_hourly_limit BIGINT, p_daily_limit BIGINT, p_now TIMESTAMPTZ DEFAULT NULL
) RETURNS TABLE (granted BOOLEAN, bucket TIMESTAMPTZ, hour_used BIGINT, day_used BIGINT, checked_at TIMESTAMPTZ)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now  TIMESTAMPTZ;
    v_hour TIMESTAMPTZ;
    v_day  TIMESTAMPTZ;
    v_hour_used BIGINT;
    v_day_used  BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(1847197700, hashtext(p_tenant));
    v_now  := coalesce(p_now, clock_timestamp());
    v_hour := date_trunc('hour', v_now, 'UTC');
    v_day  := date_trunc('day', v_now, 'UTC');
    SELECT coalesce(sum(l.requests - l.day_quota_offset), 0),
           coalesce(sum(l.requests - l.hour_quota_offset) FILTER (WHERE l.hour_bucket = v_hour), 0)
      INTO v_day_used, v_hour_used
      FROM eia_usage_ledger l
     WHERE l.tenant_id = p_tenant AND l.hour_bucket >= v_day AND l.hour_bucket < v_day + interval '1 day';
    IF v_hour_used >= p_hourly_limit OR v_day_used >= p_daily_limit THEN
        RETURN QUERY SELECT false, v_hour, v_hour_used, v_day_used, v_now;
        RETURN;
    END IF;
    INSERT INTO eia_usage_ledger AS l (tenant_id, hour_bucket, requests) VALUES (p_tenant, v_hour, 1)
    ON CONFLICT (tenant_id, hour_bucket) DO UPDATE SET requests = l.requests + 1, updated_at = clock_timestamp();
    RETURN QUERY SELECT true, v_hour, v_hour_used + 1, v_day_used + 1, v_now;
END
$$;

-- The request rate each running client currently allows itself (in-process limiter): lowered by
-- dynamic throttling past the daily warning threshold, halved after a 429. One row per worker
-- process, refreshed while it sends and deleted when it closes; `eia quota status` and the
-- collector show the sum over workers seen in the last two minutes.
CREATE TABLE IF NOT EXISTS eia_rate_state (
    tenant_id        TEXT NOT NULL,
    worker           TEXT NOT NULL,
    rate_per_s       DOUBLE PRECISION NOT NULL,
    base_rate_per_s  DOUBLE PRECISION NOT NULL,
    ceiling_per_s    DOUBLE PRECISION,
    reason           TEXT NOT NULL CHECK (reason IN ('base', 'quota_spread', 'throttled')),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, worker)
);

-- What each eia_cost_monitoring run computed (runbook: every 6 hours). Money is exact NUMERIC;
-- the full quota status is kept in `details` (the documented `eia quota status --json` shape).
CREATE TABLE IF NOT EXISTS eia_cost_snapshots (
    id                   BIGSERIAL PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    taken_at             TIMESTAMPTZ NOT NULL,
    run_id               TEXT,
    hour_used            BIGINT NOT NULL,
    hour_limit           BIGINT NOT NULL,
    day_used             BIGINT NOT NULL,
    day_limit            BIGINT NOT NULL,
    month_requests       BIGINT NOT NULL,
    spend_usd            NUMERIC(16, 2) NOT NULL,
    projected_usd        NUMERIC(16, 2) NOT NULL,
    budget_usd           NUMERIC(16, 2) NOT NULL,
    percent_of_budget    NUMERIC(12, 2) NOT NULL,
    budget_state         TEXT NOT NULL CHECK (budget_state IN ('ok', 'warning', 'critical')),
    quota_state          TEXT NOT NULL CHECK (quota_state IN ('ok', 'warning', 'critical')),
    state                TEXT NOT NULL CHECK (state IN ('ok', 'warning', 'critical')),
    spike_ratio_percent  NUMERIC(12, 2),
    spike                BOOLEAN NOT NULL,
    rate_per_s           DOUBLE PRECISION,
    details              JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS eia_cost_snapshots_tenant_idx ON eia_cost_snapshots (tenant_id, taken_at DESC);
