"""`eia budget set AMOUNT` and `eia run cost`: the runbook's "adjust budget" and its cost check.

The budget lives in the cost-policy block (`eia-cost-policy`), so the flows, `eia quota status`
and the collector all read the new value at once; every change is written to the audit log with
who made it and when.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

NAME = "budget"
app = typer.Typer(help="Adjust the monthly EIA budget (cost-policy block, audited).", no_args_is_help=True)


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "").removeprefix("$"))
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not an amount in USD, e.g. 8000 or 8000.00") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise typer.BadParameter(f"{text!r}: the budget must be a positive amount in whole cents")
    return value


@app.command("set")
def set_cmd(amount: Annotated[str, typer.Argument(help="Monthly budget in USD, e.g. 8000.")]) -> None:
    """Set the monthly budget in the cost-policy block (audited)."""
    from blocks import COST_POLICY_BLOCK, EiaCostPolicy
    from flows.cli.app import _actor, _dsn, _guard, out
    from flows.settings import load_block
    from tasks.store.audit import write_audit
    from tasks.store.database import connect

    value = _amount(amount)

    async def save() -> tuple[Decimal, bool]:
        block = await load_block(EiaCostPolicy, COST_POLICY_BLOCK, missing_ok=True)  # created below if missing
        created = block is None
        if block is None:
            await EiaCostPolicy.aregister_type_and_schema()  # type: ignore[misc]
            block = EiaCostPolicy()
        old = block.monthly_budget_usd
        block.monthly_budget_usd = value
        await block.asave(COST_POLICY_BLOCK, overwrite=True)
        return old, created

    def run() -> str:
        # A bad or unreachable database fails before the block changes: no change goes unaudited.
        with connect(_dsn(), autocommit=True) as conn:
            old, created = asyncio.run(save())
            write_audit(
                conn,
                _actor(),
                "budget.set",
                {"block": COST_POLICY_BLOCK, "old_usd": str(old), "new_usd": str(value), "created": created},
            )
        return f"monthly budget: ${old} → ${value} (block {COST_POLICY_BLOCK!r}, by {_actor()})"

    out.print(_guard(run), highlight=False)


def register_run(run_app: typer.Typer) -> None:
    """Adds `cost` to `eia run` (called by flows/cli/app.py when it mounts the command modules)."""

    @run_app.command("cost")
    def run_cost() -> None:
        """Run eia_cost_monitoring locally: quota, spend, projection, spike; events on thresholds."""
        from flows.cli.app import _run, error, out, preflight_cost
        from flows.cost import cost_run_result, eia_cost_monitoring

        async def run() -> Any:
            return await eia_cost_monitoring(return_state=True)

        preflight_cost()
        state = _run(run)
        result = cost_run_result(state)
        if result is not None:
            out.print(f"cost check: {state.message}; snapshot {result.snapshot_id}", soft_wrap=True)
        if not state.is_completed():
            error(state.message or "the cost check did not complete", label="run failed:")
            raise typer.Exit(1)
