"""The read side of the usage ledger: quota status and all-time totals.

Why it exists: `eia quota status`, the cost-monitoring flow and the metrics collector must show the
same figures: hour, day and month usage against the effective limits, the rate workers run at, the
spend, its projection and the spike, all computed here from the ledger rows at a given `now`. The
JSON shape of `QuotaStatus.as_dict` is documented (README, Cost controls; docs/quota-status.schema.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from tasks.eia.limits import RATE_PER_SECOND
from tasks.quota.budget import (
    GUIDANCE_BURST_PER_S,
    GUIDANCE_DAILY_REQUESTS,
    GUIDANCE_HOURLY_REQUESTS,
    BudgetSnapshot,
    CostPolicy,
    EffectiveLimits,
    Spike,
    State,
    budget_snapshot,
    day_bounds,
    effective_limits,
    hour_bounds,
    hourly_spike,
    iso_utc,
    month_bounds,
    percent,
    state_of,
    to_cents,
    worst,
)
from tasks.quota.throttle import FACTOR_SQL, RATE_LIVE_S, RECOVERY_STEP_S, global_rate, quota_spread
from tasks.store.tables import RATE_STATE, USAGE_LEDGER
from tasks.store.usage import COUNTER_COLUMNS, ERROR_KINDS, HISTOGRAM_BOUNDS, LE_COLUMNS, STATUS_CLASSES

# -- quota status ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """One quota window (the UTC hour or day): usage after resets against the effective limit."""

    start: datetime
    resets_at: datetime
    used: int  # counted against the quota (after `eia quota reset`)
    requests: int  # actually sent in the window (resets do not change it)
    limit: int  # effective
    configured_limit: int
    percent: Decimal  # used / limit, to 0.01
    state: State

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class WorkerShare:
    worker: str  # host:pid:ledger
    rate_per_s: float  # what its limiter allows it now
    reason: str  # base | quota_spread | throttled


@dataclass(frozen=True, slots=True)
class RateStatus:
    current_per_s: float | None  # sum over workers sending now; None when none is
    workers: int
    quota_spread_per_s: float | None  # the dynamic-throttling cap when past the warning threshold
    throttling_active: bool
    # The shared budget (tasks/quota/throttle.py): the rate all workers together may send at, the
    # global back-off factor behind it, its last halving, and each live worker's share.
    global_per_s: float = RATE_PER_SECOND
    global_factor: float = 1.0
    throttled_at: datetime | None = None
    shares: tuple[WorkerShare, ...] = ()


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    tenant_id: str
    as_of: datetime
    policy: CostPolicy
    limits: EffectiveLimits
    hour: WindowUsage
    day: WindowUsage
    budget: BudgetSnapshot
    spike: Spike
    rate: RateStatus

    @property
    def state(self) -> State:
        """The worst of the budget state and the daily-quota state."""
        return worst(self.budget.state, self.day.state)

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON shape of `eia quota status --json` (README, Cost controls)."""

        def window(w: WindowUsage) -> dict[str, Any]:
            return {
                "start": iso_utc(w.start),
                "resets_at": iso_utc(w.resets_at),
                "used": w.used,
                "requests": w.requests,
                "limit": w.limit,
                "configured_limit": w.configured_limit,
                "remaining": w.remaining,
                "percent": str(w.percent),
                "state": w.state,
            }

        b, s, p = self.budget, self.spike, self.policy
        return {
            "tenant_id": self.tenant_id,
            "as_of": iso_utc(self.as_of),
            "state": self.state,
            "hour": window(self.hour),
            "day": window(self.day),
            "month": {
                "start": iso_utc(b.month_start),
                "ends_at": iso_utc(b.month_end),
                "requests": b.requests,
                "elapsed_percent": str(to_cents(b.elapsed_fraction * 100)),
            },
            "budget": {
                "monthly_budget_usd": str(b.budget_usd),
                "cost_per_1000_requests_usd": str(p.cost_per_1000_requests),
                "spend_usd": str(b.spend_usd),
                "projected_usd": str(b.projected_usd),
                "percent_of_budget": str(b.percent_of_budget),
                "projected_percent_of_budget": str(b.projected_percent_of_budget),
                "state": b.state,
            },
            "spike": {
                "this_hour": s.this_hour,
                "trailing_24h_average": str(to_cents(s.trailing_average)),
                "ratio_percent": None if s.ratio_percent is None else str(s.ratio_percent),
                "threshold_percent": str(s.threshold_percent),
                "firing": s.firing,
            },
            "rate": {
                "current_per_s": self.rate.current_per_s,
                "workers": self.rate.workers,
                "quota_spread_per_s": self.rate.quota_spread_per_s,
                "throttling_active": self.rate.throttling_active,
                "dynamic_throttling": p.enable_dynamic_throttling,
                "global_per_s": self.rate.global_per_s,
                "global_factor": self.rate.global_factor,
                "throttled_at": None if self.rate.throttled_at is None else iso_utc(self.rate.throttled_at),
                "worker_shares": [
                    {"worker": w.worker, "rate_per_s": w.rate_per_s, "reason": w.reason} for w in self.rate.shares
                ],
            },
            "policy": {
                "warning_percent": str(p.warning_percent),
                "critical_percent": str(p.critical_percent),
                "hourly_spike_percent": str(p.hourly_spike_percent),
                "eia_guidance_override": p.eia_guidance_override,
                "guidance_hourly_requests": GUIDANCE_HOURLY_REQUESTS,
                "guidance_daily_requests": GUIDANCE_DAILY_REQUESTS,
                "guidance_burst_per_s": GUIDANCE_BURST_PER_S,
            },
        }


def _window(
    start: datetime, end: datetime, used: int, requests: int, limit: int, configured: int, policy: CostPolicy
) -> WindowUsage:
    exact = percent(Decimal(used), Decimal(limit)) if limit > 0 else Decimal(100)
    return WindowUsage(
        start,
        end,
        used,
        requests,
        limit,
        configured,
        to_cents(exact),
        state_of(exact, policy.warning_percent, policy.critical_percent),
    )


def quota_status(conn: psycopg.Connection[TupleRow], tenant_id: str, policy: CostPolicy, now: datetime) -> QuotaStatus:
    """Hour, day and month usage, limits, remaining, rate, spend, projection, state and spike at `now`."""
    limits = effective_limits(policy)
    hour_start, hour_end = hour_bounds(now)
    day_start, day_end = day_bounds(now)
    month_start, month_end = month_bounds(now)
    trailing_start = hour_start - timedelta(hours=24)
    rows = conn.execute(
        f"""SELECT hour_bucket, requests, hour_quota_offset, day_quota_offset FROM {USAGE_LEDGER}
            WHERE tenant_id = %s AND hour_bucket >= %s AND hour_bucket < %s""",
        (tenant_id, min(month_start, trailing_start), max(month_end, hour_end)),
    ).fetchall()
    by_hour = {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}
    this_hour = by_hour.get(hour_start, (0, 0, 0))
    today = [v for h, v in by_hour.items() if day_start <= h < day_end]
    month_requests = sum(v[0] for h, v in by_hour.items() if month_start <= h < month_end and h < hour_end)
    trailing = [by_hour.get(trailing_start + timedelta(hours=i), (0, 0, 0))[0] for i in range(24)]

    hour = _window(
        hour_start,
        hour_end,
        this_hour[0] - this_hour[1],
        this_hour[0],
        limits.hourly,
        policy.hourly_request_limit,
        policy,
    )
    day = _window(
        day_start,
        day_end,
        sum(v[0] - v[2] for v in today),
        sum(v[0] for v in today),
        limits.daily,
        policy.daily_request_limit,
        policy,
    )

    live = conn.execute(
        f"""SELECT worker, rate_per_s, base_rate_per_s, reason FROM {RATE_STATE}
            WHERE tenant_id = %s AND updated_at > now() - make_interval(secs => %s) ORDER BY worker""",
        (tenant_id, RATE_LIVE_S),
    ).fetchall()
    shares = tuple(WorkerShare(str(w), float(r), str(why)) for w, r, _, why in live)
    factor_row = conn.execute(FACTOR_SQL, {"tenant": tenant_id, "step_s": RECOVERY_STEP_S}).fetchone()
    factor = float(factor_row[0]) if factor_row else 1.0
    spread = quota_spread(policy, limits, day.used, now)
    # The workers' configured base rate (the endpoints block); Prefect's rate limit when none is live.
    base = max((float(b) for _, _, b, _ in live), default=RATE_PER_SECOND)
    rate = RateStatus(
        sum(w.rate_per_s for w in shares) if shares else None,
        len(shares),
        None if spread is None else spread.rate_per_s,
        spread is not None,
        global_per_s=global_rate(base, spread, factor),
        global_factor=factor,
        throttled_at=factor_row[1] if factor_row else None,
        shares=shares,
    )
    return QuotaStatus(
        tenant_id=tenant_id,
        as_of=now,
        policy=policy,
        limits=limits,
        hour=hour,
        day=day,
        budget=budget_snapshot(month_requests, policy, now),
        spike=hourly_spike(this_hour[0], trailing, policy.hourly_spike_percent),
        rate=rate,
    )


# -- all-time totals, for the metrics collector -----------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """All-time counters of a tenant (Prometheus counters and the request-duration histogram)."""

    requests: int
    requests_by_status_class: dict[str, int]  # 2xx, 3xx, 4xx, 5xx, no_status
    errors_by_kind: dict[str, int]  # ERROR_KINDS
    retries: int
    bytes: int
    latency_buckets: tuple[tuple[float, int], ...]  # (le, cumulative count); +Inf is latency_count
    latency_sum_s: float
    latency_count: int


def ledger_totals(conn: psycopg.Connection[TupleRow], tenant_id: str) -> LedgerTotals:
    columns = ["requests", *COUNTER_COLUMNS, "latency_sum_s"]
    row = conn.execute(
        f"SELECT {', '.join(f'coalesce(sum({c}), 0)' for c in columns)} FROM {USAGE_LEDGER} WHERE tenant_id = %s",
        (tenant_id,),
    ).fetchone()
    values = dict(zip(columns, row or [0] * len(columns), strict=True))
    return LedgerTotals(
        requests=int(values["requests"]),
        requests_by_status_class={c: int(values[f"requests_{c}"]) for c in STATUS_CLASSES},
        errors_by_kind={k: int(values[f"errors_{k}"]) for k in ERROR_KINDS},
        retries=int(values["retries"]),
        bytes=int(values["bytes"]),
        latency_buckets=tuple(
            (bound, int(values[column])) for bound, column in zip(HISTOGRAM_BOUNDS, LE_COLUMNS, strict=True)
        ),
        latency_sum_s=float(values["latency_sum_s"]),
        latency_count=int(values["latency_count"]),
    )
