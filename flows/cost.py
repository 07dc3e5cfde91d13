"""`eia_cost_monitoring`: the runbook's cost check, every 6 hours (cron `0 */6 * * *`, UTC).

Reads like the runbook: usage from the ledger → spend, projection, quota and spike → snapshot →
artifacts → events. Events (`eia.cost.budget.warning|critical`, `eia.cost.quota.warning|critical`,
`eia.cost.spike`, resource `eia.cost.<tenant>`) are what Prefect automations and alerting hook on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prefect import State, flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.events import emit_event
from prefect.runtime import flow_run
from prefect.states import Completed

from blocks import COST_POLICY_BLOCK, DATABASE_BLOCK, EiaDatabase
from flows._run import ensure_schema_current
from flows.settings import load_block, load_cost_policy
from tasks.quota import QuotaStatus, cost_events, cost_markdown, cost_table, resource_id
from tasks.quota.tasks import compute_quota_status_task, save_cost_snapshot_task
from tasks.store import resolve_dsn

FLOW_NAME = "eia_cost_monitoring"
SCHEDULE_CRON = "0 */6 * * *"  # runbook: every 6 hours
ARTIFACT_KEY = "eia-cost-monitoring"


@dataclass(slots=True)
class CostRunResult:
    tenant_id: str
    state: str
    snapshot_id: int
    events: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)  # the documented `eia quota status --json` shape


@flow(name=FLOW_NAME, log_prints=False, validate_parameters=True, persist_result=False)
async def eia_cost_monitoring(
    now: datetime | None = None,
    database_block: str = DATABASE_BLOCK,
    cost_policy_block: str = COST_POLICY_BLOCK,
) -> State[CostRunResult]:
    """Compute spend, projection, quota usage and hourly spike; record them; alert on thresholds.

    Args:
        now: evaluate as of this instant (default: now); for back-fills and checks of past months.
    """
    log = get_run_logger()
    database = await load_block(EiaDatabase, database_block) or EiaDatabase()
    dsn = resolve_dsn(database.dsn.get_secret_value() if database.dsn is not None else None)
    ensure_schema_current(dsn)
    policy = await load_cost_policy(cost_policy_block)
    tenant = database.tenant_id
    at = (now or datetime.now(UTC)).astimezone(UTC)
    status = compute_quota_status_task(dsn, tenant, policy, at)
    run_id = flow_run.get_id()
    snapshot_id = save_cost_snapshot_task(dsn, status, str(run_id) if run_id else None)
    events = cost_events(status)
    description = f"{FLOW_NAME}: {tenant} as of {at.isoformat()}"
    await acreate_table_artifact(key=ARTIFACT_KEY, table=cost_table(status), description=description)
    await acreate_markdown_artifact(
        key=f"{ARTIFACT_KEY}-summary", markdown=cost_markdown(status, events), description=description
    )
    resource = {
        "prefect.resource.id": resource_id(tenant),
        "prefect.resource.name": f"EIA cost controls ({tenant})",
    }
    for event in events:
        emit_event(event=event.name, resource=resource, payload=event.payload)
        log.warning("%s: %s", event.name, cost_markdown(status, []).splitlines()[0].removeprefix("# "))
    names = [e.name for e in events]
    message = run_message(status, names)
    log.info("%s", message)
    # The state's message is what the Prefect UI and `eia run cost` show for the run.
    return Completed(message=message, data=CostRunResult(tenant, status.state, snapshot_id, names, status.as_dict()))


def run_message(status: QuotaStatus, events: list[str]) -> str:
    """The run's one-line message: the cost state and the numbers behind it."""
    b, day = status.budget, status.day
    return (
        f"cost state {status.state}: month spend ${b.spend_usd} of ${b.budget_usd} ({b.percent_of_budget}%), "
        f"projected ${b.projected_usd} ({b.projected_percent_of_budget}%) at month end; today {day.used:,} of "
        f"{day.limit:,} requests ({day.percent}%); events: {', '.join(events) or 'none'}"
    )


def cost_run_result(state: State[Any]) -> CostRunResult | None:
    """The run's result from its final state, without re-raising."""
    data = state.data
    data = getattr(data, "result", data)  # a ResultRecord wraps the value
    return data if isinstance(data, CostRunResult) else None
