"""What the cost-monitoring flow does, as plain functions (their Prefect tasks: `tasks.quota.tasks`).

The flow (`flows/cost.py`) only orchestrates: compute the quota status from the ledger, keep it
in `eia_cost_snapshots` (the metrics of the monitoring issue read the latest row), show it as
artifacts, and emit an event for each threshold crossed. Which events fire is decided here, as a
pure function of the status, so it is tested without a Prefect server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from tasks.quota.budget import CostPolicy
from tasks.quota.status import QuotaStatus, quota_status
from tasks.store.database import connect
from tasks.store.tables import COST_SNAPSHOTS

EVENT_PREFIX = "eia.cost"


def resource_id(tenant_id: str) -> str:
    return f"{EVENT_PREFIX}.{tenant_id}"


@dataclass(frozen=True, slots=True)
class CostEvent:
    name: str  # eia.cost.budget.warning | .critical, eia.cost.quota.warning | .critical, eia.cost.spike
    payload: dict[str, Any]


def cost_events(status: QuotaStatus) -> list[CostEvent]:
    """The events a status calls for: budget and daily-quota warning/critical, and an hourly spike."""
    data = status.as_dict()
    events: list[CostEvent] = []
    if status.budget.state != "ok":
        events.append(CostEvent(f"{EVENT_PREFIX}.budget.{status.budget.state}", {"budget": data["budget"]}))
    if status.day.state != "ok":
        events.append(CostEvent(f"{EVENT_PREFIX}.quota.{status.day.state}", {"day": data["day"]}))
    if status.spike.firing:
        events.append(CostEvent(f"{EVENT_PREFIX}.spike", {"spike": data["spike"], "hour": data["hour"]}))
    for event in events:
        event.payload.update(tenant_id=status.tenant_id, as_of=data["as_of"], state=status.state)
    return events


def record_cost_snapshot(conn: psycopg.Connection[TupleRow], status: QuotaStatus, run_id: str | None) -> int:
    """Keeps one computed status; returns the snapshot id."""
    b, s = status.budget, status.spike
    row = conn.execute(
        f"""INSERT INTO {COST_SNAPSHOTS} (tenant_id, taken_at, run_id, hour_used, hour_limit, day_used, day_limit,
                month_requests, spend_usd, projected_usd, budget_usd, percent_of_budget, budget_state,
                quota_state, state, spike_ratio_percent, spike, rate_per_s, details)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)
            RETURNING id""",
        (
            status.tenant_id,
            status.as_of,
            run_id,
            status.hour.used,
            status.hour.limit,
            status.day.used,
            status.day.limit,
            b.requests,
            b.spend_usd,
            b.projected_usd,
            b.budget_usd,
            b.percent_of_budget,
            b.state,
            status.day.state,
            status.state,
            s.ratio_percent,
            s.firing,
            status.rate.current_per_s,
            json.dumps(status.as_dict()),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def cost_table(status: QuotaStatus) -> list[dict[str, Any]]:
    """The table artifact: one row per figure, with its limit and state where it has one."""
    b, s, h, d = status.budget, status.spike, status.hour, status.day
    return [
        {"figure": "requests this hour", "value": h.used, "limit": h.limit, "state": h.state},
        {"figure": "requests today", "value": d.used, "limit": d.limit, "state": d.state},
        {"figure": "requests this month", "value": b.requests, "limit": "", "state": ""},
        {"figure": "spend to date (USD)", "value": str(b.spend_usd), "limit": str(b.budget_usd), "state": b.state},
        {"figure": "projected month end (USD)", "value": str(b.projected_usd), "limit": str(b.budget_usd), "state": ""},
        {"figure": "percent of budget", "value": str(b.percent_of_budget), "limit": "100", "state": b.state},
        {
            "figure": "hourly spike (% of trailing 24 h average)",
            "value": "" if s.ratio_percent is None else str(s.ratio_percent),
            "limit": str(s.threshold_percent),
            "state": "spike" if s.firing else "ok",
        },
        {
            "figure": "current request rate (/s)",
            "value": "" if status.rate.current_per_s is None else f"{status.rate.current_per_s:.3g}",
            "limit": "",
            "state": "quota spread" if status.rate.throttling_active else "",
        },
    ]


def cost_markdown(status: QuotaStatus, events: list[CostEvent]) -> str:
    b, h, d = status.budget, status.hour, status.day
    lines = [
        f"# EIA cost controls: {status.state}",
        "",
        f"**Tenant:** {status.tenant_id}  ",
        f"**As of:** {status.as_of.isoformat()}  ",
        f"**Hour:** {h.used:,} of {h.limit:,} requests ({h.percent}%), resets {h.resets_at.isoformat()}  ",
        f"**Day:** {d.used:,} of {d.limit:,} requests ({d.percent}%), resets {d.resets_at.isoformat()}  ",
        f"**Month:** {b.requests:,} requests; spend ${b.spend_usd} of ${b.budget_usd} ({b.percent_of_budget}%), "
        f"projected ${b.projected_usd} ({b.projected_percent_of_budget}%)",
        "",
        "The EIA API is free: the spend is the internal charge-back rate "
        f"(${status.policy.cost_per_1000_requests} per 1,000 requests).",
    ]
    if events:
        lines += ["", "## Events", ""] + [f"- `{e.name}`" for e in events]
    return "\n".join(lines)


def compute_quota_status(dsn: str, tenant_id: str, policy: CostPolicy, now: datetime) -> QuotaStatus:
    """The tenant's quota status at `now`, on a connection of its own."""
    with connect(dsn) as conn:
        return quota_status(conn, tenant_id, policy, now)


def save_cost_snapshot(dsn: str, status: QuotaStatus, run_id: str | None) -> int:
    """Keeps one computed status on a connection of its own; returns the snapshot id."""
    with connect(dsn, autocommit=True) as conn:
        return record_cost_snapshot(conn, status, run_id)
