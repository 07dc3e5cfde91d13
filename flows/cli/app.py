"""The `eia` command line: set-up, local runs and the runbook's operations.

Expected faults print one scrubbed line naming what to fix and exit 2, never a stack trace: bad
settings, EIA refusing the key, an open breaker, and the Prefect API or the database not answering.
Ids, values and messages are printed verbatim: the consoles below never read rich markup or emoji
codes in them (a series id `…:price:A:…` is not an emoji), and deliberate styling goes through `Text`.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from tasks.quota.breaker import BreakerStatus

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

# Data and messages are printed as they are: no markup, no emoji codes, no highlighting. Errors are one
# line whatever the terminal's width (soft_wrap), so scripts and log collectors see them whole.
console = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)
out = Console(markup=False, emoji=False, highlight=False)
T = TypeVar("T")

EXIT_EXPECTED = 2  # an expected fault: the line says what to fix
PREFECT_API_SETTING = "PREFECT_API_URL"
# Prefect's background workers announce at exit what they still send; after a fault that is noise.
_PREFECT_EXIT_LOGGERS = ("EventsWorker", "APILogWorker")


def styled(label: str, message: str, style: str = "bold red") -> Text:
    """`label` in `style`, then `message` verbatim (never read as markup)."""
    return Text.assemble((label, style), " ", message)


def error(message: str, *, label: str = "error:") -> None:
    """One scrubbed line on stderr: `error: <message>`."""
    from tasks.core.redact import scrub_text

    console.print(styled(label, scrub_text(message)))


def fail(message: str, *, code: int = EXIT_EXPECTED) -> NoReturn:
    """Prints the fault's one line and exits with `code` (2: an expected fault)."""
    for name in _PREFECT_EXIT_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    error(message)
    raise typer.Exit(code)


def _expected_errors() -> tuple[type[BaseException], ...]:
    from flows._run import SchemaNotCurrent
    from flows.settings import SettingsError
    from tasks.core.catalog import CatalogError
    from tasks.core.errors import EiaError
    from tasks.store.database import DatabaseConfigError
    from tasks.store.migrations import MigrationError

    return (EiaError, SettingsError, DatabaseConfigError, SchemaNotCurrent, MigrationError, CatalogError)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and the ones it was raised from or during, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = (
            current.__cause__
            if current.__cause__ is not None
            else (None if current.__suppress_context__ else current.__context__)
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _without_auth(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.hostname is None or "@" not in parts.netloc:
            return url
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"


def prefect_api_url() -> str:
    """The configured Prefect API, printable (no credentials in it)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return _without_auth(url) if url else f"the ephemeral Prefect server ({PREFECT_API_SETTING} is not set)"


def _is_prefect_request(exc: BaseException) -> bool:
    """Whether an httpx error came from a request to the Prefect API (the only HTTP the commands do
    outside a flow run; EIA requests happen inside runs and end in the run's state)."""
    from prefect.settings import PREFECT_API_URL

    try:
        url = str(exc.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # no request attached
        return True
    api = PREFECT_API_URL.value()
    return not api or url.startswith(api.rstrip("/"))


def prefect_api_fault(exc: BaseException) -> str | None:
    """One line for a Prefect API that cannot be reached or refused the call; None for other errors."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    for cause in _chain(exc):
        if isinstance(cause, PrefectHTTPStatusError):
            response = cause.response
            if response.status_code in (401, 403):
                hint = "check PREFECT_API_KEY (Prefect Cloud) or PREFECT_API_AUTH_STRING (a server with basic auth)"
            else:
                hint = f"retry once the server is healthy, or check {PREFECT_API_SETTING}"
            return (
                f"the Prefect API at {prefect_api_url()} answered {response.status_code} "
                f"{response.reason_phrase} to {response.request.method} {response.request.url.path}: {hint}"
            )
        if isinstance(cause, httpx.UnsupportedProtocol) and _is_prefect_request(cause):
            return (
                f"{PREFECT_API_SETTING}={prefect_api_url()} is not the http(s) URL of a Prefect API "
                "(for example http://127.0.0.1:4200/api): fix the setting or the active Prefect profile"
            )
        if isinstance(cause, httpx.TransportError) and _is_prefect_request(cause):
            return (
                f"cannot reach the Prefect API at {prefect_api_url()} ({PREFECT_API_SETTING}): {_first_line(cause)}; "
                f"start the server (`prefect server start`) or point {PREFECT_API_SETTING} at a running one"
            )
    return None


def _database_fault(exc: BaseException) -> str | None:
    """A psycopg connection error that reached the command unconverted, as one line naming the setting."""
    import psycopg

    from tasks.store.database import DSN_SETTING

    if isinstance(exc, psycopg.OperationalError):
        return f"the database ({DSN_SETTING}) cannot be used: {_first_line(exc)}"
    return None


def fault_message(exc: BaseException) -> str | None:
    """The one line for an expected fault, or None when `exc` is a bug (which keeps its traceback)."""
    if isinstance(exc, _expected_errors()):
        return str(exc)
    return prefect_api_fault(exc) or _database_fault(exc)


def _guard(fn: Callable[[], T]) -> T:
    """Runs fn; expected faults become one scrubbed line on stderr and exit code 2."""
    try:
        return fn()
    except Exception as exc:
        message = fault_message(exc)
        if message is None:
            raise
        fail(message)


def _run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return _guard(lambda: asyncio.run(coro_fn()))


def _actor() -> str:
    try:
        return os.environ.get("EIA_ACTOR") or getpass.getuser()
    except Exception:
        return "unknown"


def preflight_run(*, need_api_key: bool) -> None:
    """Checks what an ingestion run needs before it starts: the Prefect API, every setting and the
    database (reachable, schema current). A fault is then one line and exit 2, not a failed flow run
    with Prefect's log around it; the run itself checks the same again."""
    from blocks import API_KEY_BLOCK, DATABASE_BLOCK, ENDPOINTS_BLOCK, KAFKA_BLOCK
    from flows._run import ensure_schema_current
    from flows.settings import load_api_key, load_run_settings

    async def settings_dsn() -> str:
        settings = await load_run_settings(
            api_key_block=API_KEY_BLOCK,
            endpoints_block=ENDPOINTS_BLOCK,
            database_block=DATABASE_BLOCK,
            kafka_block=KAFKA_BLOCK,
            need_api_key=False,  # checked after the database, whose faults say more
        )
        return settings.dsn

    def check() -> None:
        ensure_schema_current(asyncio.run(settings_dsn()))
        if need_api_key:
            asyncio.run(load_api_key(API_KEY_BLOCK))

    _guard(check)


def preflight_cost() -> None:
    """`preflight_run` for the cost check, which reads only the database block and the cost policy."""
    from blocks import DATABASE_BLOCK, EiaDatabase
    from flows._run import ensure_schema_current
    from flows.settings import load_block, load_cost_policy
    from tasks.store.database import resolve_dsn

    async def settings_dsn() -> str:
        database = await load_block(EiaDatabase, DATABASE_BLOCK) or EiaDatabase()
        await load_cost_policy()
        return resolve_dsn(database.dsn.get_secret_value() if database.dsn is not None else None)

    _guard(lambda: ensure_schema_current(asyncio.run(settings_dsn())))


@app.command()
def init(
    work_pool: Annotated[
        bool, typer.Option("--work-pool", help="Also create or update the work pool eia-kubernetes (infra/work-pool).")
    ] = False,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="With --work-pool: the process pool eia-local of prefect.local.yaml instead (no Kubernetes).",
        ),
    ] = False,
) -> None:
    """Set up everything, idempotently: migrations, blocks from EIA_* variables, Prefect limits."""
    from flows.cli.setup import run_init

    if local and not work_pool:
        fail("--local chooses which work pool `eia init --work-pool` creates: use `eia init --work-pool --local`")

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
    if work_pool and local:
        from flows.cli.workpool import LOCAL_POOL, ensure_local_pool

        table.add_row(f"work pool {LOCAL_POOL}", _guard(ensure_local_pool))
    elif work_pool:
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

    preflight_run(need_api_key=True)
    from flows.cli.commands.catalog import refuse_costly_catalog

    refuse_costly_catalog(catalog, entry, series)  # a daily run over the daily quota is refused, with its plan
    state = _run(go)
    result = run_result(state)
    if result is not None:
        c = result.counts
        api_rows = sum(e.fetched for e in result.entries)
        # The flow's vocabulary: observations (what the table holds) from API rows (what EIA sent).
        out.print(
            f"run {result.run_id}: {result.status}: {c.inserted} inserted, {c.updated} updated, "
            f"{c.unchanged} unchanged, {c.quarantined} quarantined, {c.skipped} skipped from {c.received} "
            f"observations ({api_rows} API rows); {result.requests} EIA requests",
            soft_wrap=True,
        )
    if not state.is_completed():
        error(state.message or "the run did not complete", label="run failed:")
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


def _age(seconds: float) -> str:
    whole = max(0, round(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reset_timeout() -> tuple[float | None, str]:
    """The breaker's open time (`breaker_reset_timeout_s` of the endpoints block) and where it came from;
    None when the block cannot be read: the status is still worth showing during an incident."""
    from blocks import ENDPOINTS_BLOCK, EiaEndpoints
    from flows.settings import load_block

    try:
        block = asyncio.run(load_block(EiaEndpoints, ENDPOINTS_BLOCK))
    except Exception as exc:
        why = fault_message(exc)
        if why is None:
            raise
        return None, why
    if block is None:
        return EiaEndpoints().breaker_reset_timeout_s, "the default; no block"
    return block.breaker_reset_timeout_s, f"block {ENDPOINTS_BLOCK!r}"


def breaker_line(status: BreakerStatus, now: datetime, reset_timeout: tuple[float | None, str]) -> str:
    """What an operator needs to know about the breaker, in one line.

    Open: since when, and when the half-open trial comes. The failure counter is not shown then: the
    breaker resets it when it opens, so it would say 0 while EIA is failing.
    """
    from tasks.quota.breaker import seconds_until_trial

    name = status.name
    if status.state == "closed":
        return f"breaker {name}: closed ({status.fail_counter} consecutive EIA failure(s) since the last success)"
    if status.state == "half-open":
        return (
            f"breaker {name}: half-open: the next EIA request is the trial "
            "(a success closes the breaker, a failure opens it again)"
        )
    if status.opened_at is None:
        return f"breaker {name}: {status.state}; close it with `eia breaker reset`"
    open_for = _age((now - status.opened_at).total_seconds())
    since = f"breaker {name}: open since {_utc(status.opened_at)} ({open_for} ago)"
    timeout, source = reset_timeout
    if timeout is None:
        trial = f"half-open trial time unknown ({source})"
    else:
        wait = seconds_until_trial(status, timeout, now)
        after = f"breaker_reset_timeout_s={timeout:g}, {source}"
        trial = (
            f"half-open trial in {_age(wait)}, at {_utc(now + timedelta(seconds=wait))} ({after})"
            if wait > 0
            else f"half-open trial due: the next EIA request is the trial ({after})"
        )
    return f"{since}; {trial}; close it now with `eia breaker reset`"


@breaker_app.command("status")
def breaker_status_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show the shared circuit breaker's state; when open, since when and when its half-open trial comes."""
    from tasks.quota.breaker import breaker_status, seconds_until_trial
    from tasks.store.database import connect

    def read() -> tuple[BreakerStatus, datetime]:
        with connect(_dsn()) as conn:
            now = conn.execute("SELECT now()").fetchone()
            assert now is not None
            return breaker_status(conn), now[0]  # the database's clock, as the flows use it

    status, now = _guard(read)
    reset_timeout = _reset_timeout() if status.state == "open" else (None, "")
    if as_json:
        timeout = reset_timeout[0]
        wait = None if timeout is None or status.state != "open" else seconds_until_trial(status, timeout, now)
        out.print_json(json.dumps({**status.as_dict(), "seconds_until_trial": wait}))
    else:
        out.print(breaker_line(status, now, reset_timeout), soft_wrap=True)


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
    """Mounts every `flows/cli/commands/<area>.py` that defines `app` (a Typer) and `NAME`."""
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


def _settings_fault(exc: BaseException) -> str | None:
    """Prefect's own settings failing validation (e.g. a malformed PREFECT_API_URL), as one line."""
    from pydantic import ValidationError

    for cause in _chain(exc):
        if isinstance(cause, ValidationError) and cause.title == "Settings":
            fields = "; ".join(
                f"{'.'.join(str(p) for p in item['loc']) or 'settings'}: {item['msg']}"
                for item in cause.errors(include_url=False, include_context=False, include_input=False)
            )
            return (
                f"the Prefect settings are invalid ({fields}): fix the PREFECT_* environment variables "
                "or the active profile (`prefect config view`)"
            )
    return None


def main() -> None:
    try:
        app(prog_name="eia")
    except Exception as exc:  # outside the commands' guards: Prefect's settings are read on first use
        message = _settings_fault(exc)
        if message is None:
            raise
        error(message)
        raise SystemExit(EXIT_EXPECTED) from None


if __name__ == "__main__":
    main()
