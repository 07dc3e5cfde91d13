"""`eia quality report`: every check's latest result and pass rate, from `eia_quality_results`.

Each gated batch records one result per rule of the registry (outcome and measured value). The
report shows, per rule, the newest result and how often the rule passed over the most recent
batches, so an operator sees at a glance which checks are failing now and which ones fail often.
It reads the database from EIA_DATABASE_URL or the `eia-database` block.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

import typer

NAME = "quality"
# The registry's words are short for the gate; the report spells them out, so a rule's severity
# ("fail": a violation holds rows back) is never read as the outcome of a check that passed.
SEVERITY_WORDS: Final = {"fail": "blocking", "warn": "warning"}
OUTCOME_WORDS: Final = {"pass": "passed", "fail": "failed", "warn": "warned", "error": "error"}
app = typer.Typer(
    help="Data-quality results of the gate (Soda contract generated from the rule registry).", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Data-quality results of the gate."""


@app.command("report")
def report_cmd(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only batches of this tenant.")] = None,
    batches: Annotated[
        int, typer.Option("--batches", min=1, help="Pass rates cover this many most recent gated batches.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The latest result per check (outcome, measured value, when) and its recent pass rate."""
    from flows.cli.app import _dsn, _guard
    from tasks.quality.inspect import quality_report
    from tasks.store.database import connect

    def read() -> list[dict[str, Any]]:
        with connect(_dsn()) as conn:
            return [c.as_dict() for c in quality_report(conn, tenant_id=tenant, batches=batches)]

    checks = _guard(read)
    if as_json:
        typer.echo(json.dumps({"batches": batches, "checks": checks}, indent=2))
        return
    _print_report(checks, batches)


def _print_report(checks: list[dict[str, Any]], batches: int) -> None:
    from rich import box
    from rich.table import Table

    from flows.cli.app import out

    if not any(c["outcome"] for c in checks):
        out.print("quality: no gated batch yet", highlight=False)
        return
    # No vertical rules: the check names stay whole and the rest fits an 80-column terminal.
    table = Table(
        title=f"quality checks: latest outcome; pass rate over the last {batches} batch(es)",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("check", no_wrap=True)
    for column in ("severity", "outcome", "value", "pass rate", "at (UTC)"):  # value: what the check measured
        table.add_column(column)
    for c in checks:
        rate = "-" if c["pass_rate"] is None else f"{c['pass_rate']:.0%} {c['passed']}/{c['evaluated']}"
        measured = "-" if c["measured"] is None else f"{c['measured']:g}"
        when = "-" if c["checked_at"] is None else _utc_minute(c["checked_at"])
        outcome = OUTCOME_WORDS.get(c["outcome"], c["outcome"]) if c["outcome"] else "-"
        table.add_row(c["name"], SEVERITY_WORDS.get(c["severity"], c["severity"]), outcome, measured, rate, when)
    out.print(table)


def _utc_minute(iso: str) -> str:
    from datetime import UTC, datetime

    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%m-%d %H:%M")
