"""Dynamic throttling: past the warning threshold of the daily quota, spread what is left of it.

Why it exists: a run that has used most of the day's quota should slow down rather than stop at the
limit hours before midnight. The rule is one pure function of the policy, the day's usage and `now`:
the usage ledger's writer applies it to the client's limiter after each reservation, and
`quota_status` reports it, so what a worker does and what `eia quota status` says cannot differ.
The rate each worker runs at is kept in `eia_rate_state` (rows refreshed while it sends).

One budget for every worker (issue 17): the allowed global rate is
`min(base rate, quota spread) * factor`, where `factor` (eia_throttle_state, one row per tenant) is
halved by a 429 seen by any worker and recovers with time, the same for all of them. Each worker
runs at its share, the global rate divided by the live workers (rate rows refreshed within
RATE_LIVE_S), so the sum over workers never exceeds the spread. Prefect's `api_eia_rate` limit stays
the burst guard across processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from tasks.eia.limits import quota_spread_rate
from tasks.quota.budget import CostPolicy, EffectiveLimits, day_bounds
from tasks.store.tables import RATE_STATE, THROTTLE_STATE

# A worker's rate row counts as live (it takes a share) this long after its last heartbeat; every
# reservation beats, so a sending worker is always live and a killed one stops counting within it.
RATE_LIVE_S: Final = 15
RATE_REFRESH_S: Final = 5.0  # a sending worker rewrites its unchanged rate row this often
# The global back-off: a 429 halves the factor, at most once per BACKOFF_WINDOW_S (the requests in
# flight when EIA throttles all see the 429: one event, not three halvings), never below the floor;
# the factor then regains RECOVERY_PER_STEP every RECOVERY_STEP_S (from 1/2 back to 1 in 25 s).
BACKOFF_WINDOW_S: Final = 2.0
RECOVERY_STEP_S: Final = 5.0
RECOVERY_PER_STEP: Final = 0.1
FACTOR_FLOOR: Final = 1 / 16


@dataclass(frozen=True, slots=True)
class QuotaSpread:
    """The cap on the request rate that spends the rest of the daily quota evenly until 00:00 UTC."""

    rate_per_s: float
    remaining: int  # requests left of the daily quota (never negative)
    seconds_left: float  # of the UTC day


def quota_spread(policy: CostPolicy, limits: EffectiveLimits, day_used: int, now: datetime) -> QuotaSpread | None:
    """The dynamic-throttling cap at `now` with `day_used` requests counted today.

    None below the warning threshold of the daily quota, or when the policy turns throttling off.
    """
    threshold = Decimal(limits.daily) * policy.warning_percent / 100
    if not policy.enable_dynamic_throttling or day_used < threshold:
        return None
    seconds_left = (day_bounds(now)[1] - now).total_seconds()
    remaining = max(0, limits.daily - day_used)
    return QuotaSpread(quota_spread_rate(remaining, seconds_left), remaining, seconds_left)


def global_rate(base_per_s: float, spread: QuotaSpread | None, factor: float) -> float:
    """The rate every worker together may send at: the base (or the spread below it), times the factor."""
    allowed = base_per_s if spread is None else min(base_per_s, spread.rate_per_s)
    return allowed * factor


def worker_share(base_per_s: float, spread: QuotaSpread | None, factor: float, workers: int) -> float:
    """One live worker's share of the global rate: the workers' shares add up to it."""
    return global_rate(base_per_s, spread, factor) / max(1, workers)


# The factor now: the stored one plus its recovery since the last halving (SQL, on the database's
# clock, so every worker computes the same value whatever its own clock says).
RECOVERED_FACTOR: Final = (
    f"least(1.0, s.factor + {RECOVERY_PER_STEP} * coalesce(extract(epoch FROM now() - s.throttled_at), 0) / %(step_s)s)"
)

# Per reservation: this worker's heartbeat (a new row carries its current rate), then the recovered
# factor and the live workers, this one included. One statement, one round trip.
SHARE_SQL: Final = f"""
WITH beat AS (
    INSERT INTO {RATE_STATE} AS r (tenant_id, worker, rate_per_s, base_rate_per_s, ceiling_per_s, reason)
    VALUES (%(tenant)s, %(worker)s, %(rate)s, %(base)s, %(ceiling)s, %(reason)s)
    ON CONFLICT (tenant_id, worker) DO UPDATE SET updated_at = now()
    RETURNING 1
)
SELECT coalesce((SELECT {RECOVERED_FACTOR} FROM {THROTTLE_STATE} s WHERE s.tenant_id = %(tenant)s), 1.0),
       1 + (SELECT count(*) FROM {RATE_STATE} r WHERE r.tenant_id = %(tenant)s AND r.worker <> %(worker)s
              AND r.updated_at > now() - make_interval(secs => %(live_s)s)),
       (SELECT count(*) FROM beat)
"""

# A 429 seen by this worker: halves the recovered factor for everyone, atomically (one UPDATE under
# the row lock), unless another 429 of the same burst already did within BACKOFF_WINDOW_S.
BACKOFF_SQL: Final = f"""
INSERT INTO {THROTTLE_STATE} AS s (tenant_id, factor, throttled_at, throttle_events)
VALUES (%(tenant)s, 0.5, now(), 1)
ON CONFLICT (tenant_id) DO UPDATE SET
    factor = CASE WHEN s.throttled_at > now() - make_interval(secs => %(window_s)s) THEN s.factor
                  ELSE greatest(%(floor)s, {RECOVERED_FACTOR} / 2) END,
    throttled_at = CASE WHEN s.throttled_at > now() - make_interval(secs => %(window_s)s) THEN s.throttled_at
                        ELSE now() END,
    throttle_events = s.throttle_events + 1,
    updated_at = now()
RETURNING factor
"""

# For `eia quota status` and the metrics: the recovered factor and when the last halving was.
FACTOR_SQL: Final = f"""SELECT {RECOVERED_FACTOR}, s.throttled_at, s.throttle_events FROM {THROTTLE_STATE} s
    WHERE s.tenant_id = %(tenant)s"""
