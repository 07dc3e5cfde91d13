"""`eia quota status|reset`: the runbook's "check quota usage" and "reset quota tracking".

Usage comes from the durable ledger shared by every worker, so the numbers are the same whichever
machine asks. A reset never deletes counts (spend and history stay intact): it restarts the hour's
or the day's quota from now, and the audit log records who did it and when. The JSON keys of
`status --json` are documented in the README (Cost controls) and checked against docs/quota-status.schema.json.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from tasks.quota.budget import CostPolicy
    from tasks.quota.status import QuotaStatus

NAME = "quota"
app = typer.Typer(help="Show or reset the EIA request quotas (usage ledger).", no_args_is_help=True)


def cost_context() -> tuple[str, str, CostPolicy]:
    """DSN (EIA_DATABASE_URL or the database block), tenant and cost policy, for the cost commands.

    Fails with one clear line (`eia init` pending) when the ledger's migration is not applied.
    """
    from blocks import DATABASE_BLOCK, EiaDatabase
    from flows._run import ensure_schema_current
    from flows.cli.app import _dsn
    from flows.settings import load_block, load_cost_policy

    async def blocks() -> tuple[EiaDatabase | None, CostPolicy]:
        return await load_block(EiaDatabase, DATABASE_BLOCK), await load_cost_policy()

    database, policy = asyncio.run(blocks())
    dsn = _dsn()
    ensure_schema_current(dsn)
    return dsn, (database or EiaDatabase()).tenant_id, policy


def read_status(now: datetime | None = None) -> QuotaStatus:
    from tasks.quota.status import quota_status
    from tasks.store.database import connect

    dsn, tenant, policy = cost_context()
    with connect(dsn) as conn:
        return quota_status(conn, tenant, policy, now or datetime.now(UTC))


def _render(data: dict[str, Any]) -> None:
    from rich.table import Table

    from flows.cli.app import out

    h, d, m, b, r, s = data["hour"], data["day"], data["month"], data["budget"], data["rate"], data["spike"]
    table = Table(title=f"EIA quota ({data['tenant_id']}, {data['as_of']}): {data['state']}", show_header=True)
    for column in ("", "used", "limit (configured)", "remaining", "state", "resets at"):
        table.add_column(column)
    for label, w in (("hour", h), ("day", d)):
        table.add_row(
            label,
            f"{w['used']:,} ({w['percent']}%)",
            f"{w['limit']:,} ({w['configured_limit']:,})",
            f"{w['remaining']:,}",
            w["state"],
            w["resets_at"],
        )
    table.add_row("month", f"{m['requests']:,} requests", "", "", "", m["ends_at"])
    out.print(table)
    rate = "idle" if r["current_per_s"] is None else f"{r['current_per_s']:.3g}/s over {r['workers']} worker(s)"
    if r["throttling_active"]:
        rate += f"; quota spread {r['quota_spread_per_s']:.3g}/s"
    # The shared budget: what all workers together may send, the back-off behind it, each one's share.
    rate += f"; global {r['global_per_s']:.3g}/s (back-off factor {r['global_factor']:.3g}"
    rate += f", last 429 at {r['throttled_at']})" if r["throttled_at"] else ")"
    for share in r["worker_shares"]:
        rate += f"\n  worker {share['worker']}: {share['rate_per_s']:.3g}/s ({share['reason']})"
    out.print(
        f"spend ${b['spend_usd']} of ${b['monthly_budget_usd']} ({b['percent_of_budget']}%, {b['state']}); "
        f"projected month end ${b['projected_usd']} ({b['projected_percent_of_budget']}%)\n"
        f"rate: {rate}\n"
        f"this hour vs trailing 24 h average: {s['ratio_percent'] or '-'}% "
        f"(spike above {s['threshold_percent']}%{': FIRING' if s['firing'] else ''})",
        highlight=False,
    )


@app.command("status")
def status_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print the documented JSON.")] = False) -> None:
    """Hour, day and month usage, limits, remaining, current rate, spend, projection and state."""
    from flows.cli.app import _guard

    data = _guard(read_status).as_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _render(data)


@app.command("reset")
def reset_cmd(
    hour: Annotated[bool, typer.Option("--hour", help="Restart this UTC hour's quota.")] = False,
    day: Annotated[bool, typer.Option("--day", help="Restart this UTC day's quota.")] = False,
) -> None:
    """Reset quota tracking (audited); counts, spend and history are kept."""
    from flows.cli.app import _actor, _guard, fail, out
    from tasks.quota.reset import reset_quota
    from tasks.store.database import connect

    if not (hour or day):
        fail("say what to reset: --hour, --day or both")

    def reset() -> str:
        dsn, tenant, _ = cost_context()
        with connect(dsn) as conn:
            done = reset_quota(conn, tenant, hour=hour, day=day, actor=_actor())
        parts = []
        if hour:
            parts.append(f"hour: {done.hour_used_before} → {done.hour_used_after} used")
        if day:
            parts.append(f"day: {done.day_used_before} → {done.day_used_after} used")
        return f"quota reset for {tenant} by {_actor()} at {done.at.astimezone(UTC).isoformat()}: " + "; ".join(parts)

    out.print(_guard(reset), highlight=False)
