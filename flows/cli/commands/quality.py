"""`eia quality report`: every check's latest result and pass rate, from `eia_quality_results`;
`eia quality contract` / `eia quality datasource`: the files Soda's own CLI verifies with.

Each gated batch records one result per rule of the registry (outcome and measured value). The
report shows, per rule, the newest result and how often the rule passed over the most recent
batches, so an operator sees at a glance which checks are failing now and which ones fail often.
It reads the database from EIA_DATABASE_URL or the `eia-database` block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Final

import typer

NAME = "quality"
# The registry's words are short for the gate; the report spells them out, so a rule's severity
# ("fail": a violation holds rows back) is never read as the outcome of a check that passed.
SEVERITY_WORDS: Final = {"fail": "blocking", "warn": "warning"}
OUTCOME_WORDS: Final = {"pass": "passed", "fail": "failed", "warn": "warned", "error": "error"}
app = typer.Typer(
    help="Data-quality results of the gate, and the Soda contract (generated from the rule registry) for Soda's CLI.",
    no_args_is_help=True,
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


# The environment variables the data source reads (tasks/quality/contract.CLI_CONNECTION_ENV; a test
# keeps the two equal), named here so that --help needs no import of the quality adapter.
CONNECTION_ENV: Final = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD")
_CONTRACT_HELP: Final = (
    "Writes the Soda contract for Soda's own CLI, generated from the rule registry.\n\n"
    "Every check is self-contained (what a cross-row rule needs is computed in the check's own query), so "
    "`soda contract verify -c contract.yml -ds ds.yml --set BATCH_ID=<batch id>` runs it in a session of its own. "
    "The --stored variant (the audit of eia_series_timeseries) takes no BATCH_ID. Optional variables: "
    "MIN_ROWS and MAX_ROWS (the expected row count). Write ds.yml with `eia quality datasource`."
)
_DATASOURCE_HELP: Final = (
    "Writes the Soda data-source file for `soda contract verify`, with no connection detail in it.\n\n"
    f"Soda takes the connection from the environment when it reads the file: {', '.join(CONNECTION_ENV)} "
    "(libpq's names; set all of them; PGPASSWORD may be empty to use ~/.pgpass). "
    "The DSN and the password are never written."
)


@app.command("contract", help=_CONTRACT_HELP)
def contract_cmd(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the contract here (default: standard output).")
    ] = None,
    stored: Annotated[
        bool,
        typer.Option(
            "--stored",
            help="The audit variant: check every stored observation (eia_series_timeseries), not one staged batch.",
        ),
    ] = False,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="The database holding the tables (default: that of EIA_DATABASE_URL, else PGDATABASE).",
        ),
    ] = None,
) -> None:
    """Writes the CLI contract (help: _CONTRACT_HELP)."""
    from flows.cli.app import _guard
    from tasks.quality.contract import cli_contract_yaml

    name = database or _guard(_default_database)
    text = cli_contract_yaml(database=name, variant="stored" if stored else "staged")
    what = "audit of eia_series_timeseries" if stored else "staged batch: pass --set BATCH_ID=<batch id>"
    _write(text, out_file, f"Soda contract ({what}, database {name})")


@app.command("datasource", help=_DATASOURCE_HELP)
def datasource_cmd(
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write the data source here (default: standard output)."),
    ] = None,
) -> None:
    """Writes the CLI data source (help: _DATASOURCE_HELP)."""
    from tasks.quality.contract import cli_data_source_yaml

    _write(cli_data_source_yaml(), out_file, f"Soda data source (connection from {', '.join(CONNECTION_ENV)})")


def _default_database() -> str:
    import os

    from tasks.quality.contract import database_name
    from tasks.store.database import DATABASE_URL_ENV, DatabaseConfigError, resolve_dsn

    if os.environ.get(DATABASE_URL_ENV, "").strip():
        import psycopg

        try:
            return database_name(resolve_dsn(None))
        except psycopg.ProgrammingError:
            raise DatabaseConfigError(f"{DATABASE_URL_ENV} cannot be parsed") from None
    if os.environ.get("PGDATABASE", "").strip():
        return os.environ["PGDATABASE"].strip()
    raise DatabaseConfigError(f"which database? pass --database NAME, or set {DATABASE_URL_ENV} or PGDATABASE")


def _write(text: str, out_file: Path | None, what: str) -> None:
    from flows.cli.app import console, fail

    if out_file is None:
        typer.echo(text, nl=False)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}")
    console.print(f"wrote {what} to {out_file}")


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
