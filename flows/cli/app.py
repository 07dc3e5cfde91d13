"""The `eia` command line: set-up, local runs and the runbook's operations.

Expected faults (bad settings, EIA refusing the key, an open breaker) print one clear line and
exit non-zero; they never show a stack trace.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")

app = typer.Typer(
    name="eia",
    help="EIA energy-data pipeline: EIA API v2 and bulk archives → TimescaleDB/PostgreSQL and Kafka, on Prefect 3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
run_app = typer.Typer(help="Run a flow locally (the same flows the deployments run).", no_args_is_help=True)
breaker_app = typer.Typer(help="Inspect or reset the shared EIA circuit breaker.", no_args_is_help=True)
app.add_typer(run_app, name="run")
app.add_typer(breaker_app, name="breaker")

console = Console(stderr=True)
out = Console()
T = TypeVar("T")


def _expected_errors() -> tuple[type[BaseException], ...]:
    from flows._run import SchemaNotCurrent
    from flows.settings import SettingsError
    from tasks.core.catalog import CatalogError
    from tasks.core.errors import EiaError
    from tasks.store.database import DatabaseConfigError
    from tasks.store.migrations import MigrationError

    return (EiaError, SettingsError, DatabaseConfigError, SchemaNotCurrent, MigrationError, CatalogError)


def _guard(fn: Callable[[], T]) -> T:
    """Runs fn; expected faults become one scrubbed line on stderr and exit code 2."""
    from tasks.core.redact import scrub_text

    try:
        return fn()
    except _expected_errors() as exc:
        console.print(f"[bold red]error:[/] {scrub_text(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


def _run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return _guard(lambda: asyncio.run(coro_fn()))


def _actor() -> str:
    try:
        return os.environ.get("EIA_ACTOR") or getpass.getuser()
    except Exception:
        return "unknown"


@app.command()
def init(
    work_pool: Annotated[
        bool, typer.Option("--work-pool", help="Also create or update the work pool eia-kubernetes (infra/work-pool).")
    ] = False,
) -> None:
    """Set up everything, idempotently: migrations, blocks from EIA_* variables, Prefect limits."""
    from flows.cli.setup import run_init

    report = _run(run_init)
    table = Table(title="eia init", show_header=False)
    table.add_row("database", report.database)
    table.add_row("schema", f"{report.flavor}, version {report.schema_version}")
    table.add_row("migrations applied", ", ".join(report.migrations_applied) or "none (already current)")
    table.add_row("retention", report.retention)
    for name, state in report.blocks.items():
        table.add_row(f"block {name}", state)
    for name, state in report.limits.items():
        table.add_row(f"limit {name}", state)
    if work_pool:
        from flows.cli.workpool import WORK_POOL, default_template_path, ensure_work_pool

        table.add_row(f"work pool {WORK_POOL}", _guard(lambda: ensure_work_pool(WORK_POOL, default_template_path())))
    out.print(table)


@run_app.command("series")
def run_series(
    series: Annotated[list[str] | None, typer.Option("--series", help="v1 series id (repeatable).")] = None,
    entry: Annotated[list[str] | None, typer.Option("--entry", help="Catalog entry id (repeatable).")] = None,
    start: Annotated[str | None, typer.Option(help="First period, e.g. 2024-01 (overrides the watermark).")] = None,
    end: Annotated[str | None, typer.Option(help="Last period.")] = None,
    catalog: Annotated[str | None, typer.Option(help="Catalog JSON file (default: the packaged catalog).")] = None,
) -> None:
    """Run ingest_eia_series_timescale locally; exits non-zero when the run fails."""
    from flows.series import ingest_eia_series_timescale, run_result

    async def go() -> Any:
        return await ingest_eia_series_timescale(
            series=series, entries=entry, start=start, end=end, catalog_path=catalog, return_state=True
        )

    state = _run(go)
    result = run_result(state)
    if result is not None:
        c = result.counts
        out.print(
            f"run {result.run_id}: {result.status}: {c.received} rows received, {c.inserted} inserted, "
            f"{c.updated} updated, {c.unchanged} unchanged, {c.quarantined} quarantined, {c.skipped} skipped; "
            f"{result.requests} EIA requests",
            highlight=False,
        )
    if not state.is_completed():
        console.print(f"[bold red]run failed:[/] {state.message}", highlight=False)
        raise typer.Exit(1)


def _dsn() -> str:
    from blocks import DATABASE_BLOCK, EiaDatabase
    from flows.settings import load_block
    from tasks.store.database import resolve_dsn

    env = os.environ.get("EIA_DATABASE_URL")
    if env:
        return resolve_dsn(env)
    block = asyncio.run(load_block(EiaDatabase, DATABASE_BLOCK))
    return resolve_dsn(block.dsn.get_secret_value() if block and block.dsn else None)


@breaker_app.command("status")
def breaker_status_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show the shared circuit breaker's state."""
    from tasks.quota.breaker import breaker_status
    from tasks.store.database import connect

    def read() -> dict[str, Any]:
        with connect(_dsn()) as conn:
            return breaker_status(conn).as_dict()

    status = _guard(read)
    if as_json:
        out.print_json(json.dumps(status))
    else:
        out.print(
            f"breaker {status['name']}: {status['state']} (consecutive failures: {status['fail_counter']}, "
            f"opened at: {status['opened_at'] or '-'})",
            highlight=False,
        )


@breaker_app.command("reset")
def breaker_reset_cmd() -> None:
    """Close the circuit breaker (audited)."""
    from tasks.quota.breaker import reset_breaker
    from tasks.store.database import connect

    def reset() -> str:
        with connect(_dsn()) as conn:
            return reset_breaker(conn, actor=_actor()).state

    out.print(f"breaker is now {_guard(reset)}")


def _mount_commands() -> None:
    """Mounts every `flows/commands/<area>.py` that defines `app` (a Typer) and `NAME`."""
    import importlib
    import pkgutil

    import flows.cli.commands as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"flows.cli.commands.{info.name}")
        sub = getattr(module, "app", None)
        if isinstance(sub, typer.Typer):
            name = getattr(module, "NAME", None)
            if name:
                app.add_typer(sub, name=name)
            else:  # top-level commands (e.g. `eia serve`)
                app.registered_commands.extend(sub.registered_commands)
        register = getattr(module, "register_run", None)
        if callable(register):  # `eia run <flow>` commands
            register(run_app)


_mount_commands()


def main() -> None:
    app(prog_name="eia")


if __name__ == "__main__":
    main()
