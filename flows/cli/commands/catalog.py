"""`eia catalog discover|validate|plan`: catalog entries from EIA's own metadata, checked and priced.

Every request these commands send is an EIA request like a run's: through the shared breaker, the
slot pool and rate limits, reserved against the quotas and counted in the usage ledger (the same
client stack as `eia run series`). Expected faults are one line and exit 2; so is a catalog with
problems (`validate` prints one line per problem first).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from tasks.catalog import CatalogPlan, MetadataReader, SessionSettings
    from tasks.core.catalog import Catalog

NAME = "catalog"
app = typer.Typer(help="Discover, validate and price catalog entries from EIA's route metadata.", no_args_is_help=True)
T = TypeVar("T")


async def _with_reader(work: Callable[[MetadataReader, SessionSettings], Any]) -> Any:
    """Runs `work(reader)` on the run's client stack, from the same settings as a series run."""
    from blocks import API_KEY_BLOCK, DATABASE_BLOCK, ENDPOINTS_BLOCK, KAFKA_BLOCK
    from flows.settings import load_run_settings
    from tasks.catalog import SessionSettings, eia_session

    settings = await load_run_settings(
        api_key_block=API_KEY_BLOCK,
        endpoints_block=ENDPOINTS_BLOCK,
        database_block=DATABASE_BLOCK,
        kafka_block=KAFKA_BLOCK,
    )
    session = SessionSettings(
        dsn=settings.dsn,
        tenant_id=settings.tenant_id,
        client=settings.client,
        cost=settings.cost,
        breaker_fail_max=settings.breaker.fail_max,
        breaker_reset_timeout_s=settings.breaker.reset_timeout_s,
    )
    async with eia_session(session) as reader:
        return await work(reader, session)


def _on_reader(work: Callable[[MetadataReader, SessionSettings], Any]) -> Any:
    from flows.cli.app import _run, preflight_run

    preflight_run(need_api_key=True)
    return _run(lambda: _with_reader(work))


def _facet_options(raw: list[str] | None) -> dict[str, tuple[str, ...]]:
    facets: dict[str, list[str]] = {}
    for item in raw or ():
        facet, sep, value = item.partition("=")
        if not sep or not facet or not value:
            raise typer.BadParameter(f"{item!r}: write --facet ID=VALUE, e.g. --facet stateid=CA")
        facets.setdefault(facet.strip(), []).append(value.strip())
    return {k: tuple(v) for k, v in facets.items()}


def _load(file: str | None) -> Catalog:
    from flows.cli.app import _guard
    from tasks.core.catalog import load_catalog

    def read() -> Catalog:
        try:
            return load_catalog(file)
        except OSError as exc:
            from tasks.core.catalog import CatalogError

            raise CatalogError(f"cannot read the catalog {file}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            from tasks.core.catalog import CatalogError

            raise CatalogError(f"the catalog {file} is not JSON: {exc}") from None

    return _guard(read)


@app.command("discover")
def discover_cmd(
    route: Annotated[list[str] | None, typer.Argument(help="EIA route(s), e.g. electricity/retail-sales.")] = None,
    frequency: Annotated[str | None, typer.Option(help="Frequency (default: the route's default).")] = None,
    facet: Annotated[list[str] | None, typer.Option("--facet", help="Facet filter ID=VALUE (repeatable).")] = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="Data column (repeatable; default: all).")] = None,
    out_file: Annotated[str | None, typer.Option("--out", help="Write the catalog here (default: stdout).")] = None,
    walk_all: Annotated[bool, typer.Option("--all", help="Walk EIA's whole route tree from /v2.")] = False,
    max_pages: Annotated[int, typer.Option(help="Pages a discovered entry's full history may take.")] = 10,
) -> None:
    """Write catalog entries for routes, read from EIA's metadata and facet values."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.cli.app import console, fail, out
    from tasks.catalog import DiscoverOptions, WalkResult, discover_route, discover_tree
    from tasks.core.catalog import Catalog, catalog_json

    if not route and not walk_all:
        fail("name at least one ROUTE, or --all for EIA's whole route tree")
    if route and walk_all:
        fail("--all walks every route: name no ROUTE with it")
    options = DiscoverOptions(
        frequency=frequency, facets=_facet_options(facet), data=tuple(data or ()), max_pages=max_pages
    )

    async def work(reader: MetadataReader, _: SessionSettings) -> tuple[WalkResult, int]:
        if walk_all:
            with Progress(
                TextColumn("discover"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar:
                job = bar.add_task("/v2", total=1)

                def step(done: int, known: int, path: str) -> None:
                    bar.update(job, completed=done, total=known, description=path or "/v2")

                walked = await discover_tree(reader, progress=step, max_pages=max_pages)
        else:
            walked = WalkResult()
            for name in route or ():
                walked.entries += await discover_route(reader, name, options)
                walked.routes.append(name.strip("/"))
        return walked, reader.client.requests_sent

    walked, requests = _on_reader(work)
    stamp = datetime.now(UTC).strftime("%Y.%m.%d")
    body = catalog_json(
        Catalog(f"discovered-{stamp}", tuple(walked.entries), ()),
        description=f"Discovered from EIA's metadata by `eia catalog discover` on {stamp}",
    )
    text = json.dumps(body, indent=2) + "\n"
    if out_file:
        Path(out_file).write_text(text, encoding="utf-8")
    else:
        out.print(text, end="", soft_wrap=True)
    for skipped in walked.skipped:
        console.print(f"skipped {skipped}", soft_wrap=True)
    where = out_file or "stdout"
    console.print(
        f"{len(walked.entries)} entries for {len(walked.routes)} routes written to {where}; "
        f"{requests} EIA requests (counted in the usage ledger)",
        soft_wrap=True,
    )


@app.command("validate")
def validate_cmd(
    file: Annotated[str | None, typer.Argument(help="Catalog JSON file (default: the packaged catalog).")] = None,
) -> None:
    """Check every entry against EIA's metadata; one line per problem, exit 2 when there is one."""
    from flows.cli.app import fail, out
    from tasks.catalog import Problem, validate_entries

    catalog = _load(file)

    async def work(reader: MetadataReader, _: SessionSettings) -> tuple[list[Problem], int]:
        return await validate_entries(reader, catalog.entries), reader.client.requests_sent

    problems, requests = _on_reader(work)
    for problem in problems:
        out.print(str(problem), soft_wrap=True)
    name = file or "the packaged catalog"
    if problems:
        fail(f"{len(problems)} problem(s) in {name} ({requests} EIA requests)")
    out.print(f"{name}: {len(catalog.entries)} entries valid ({requests} EIA requests)", soft_wrap=True)


def plan_text(plan: CatalogPlan) -> str:
    """The plan as the terminal shows it: one line per entry, then each run against the quotas."""
    data = plan.as_dict()
    lines = [f"{'entry':<48} {'rows':>10} {'first run':>10} {'daily run':>10}"]
    for e in data["entries"]:
        rows = "?" if e["first_run_rows"] is None else f"{e['first_run_rows']:,}"
        daily = f"{e['daily_run_requests']}{'~' if e['daily_run_estimated'] else ''}"
        note = f"  {e['note']}" if e["note"] else ""
        lines.append(f"{e['entry']:<48} {rows:>10} {e['first_run_requests']:>10} {daily:>10}{note}")
    checks = data["validation_requests"]
    lines.append(
        f"validation: {checks['first_run']} metadata request(s) in a first run (one per route), "
        f"{checks['daily_run']} in a daily run (routes of entries that loaded nothing yet)"
    )
    for label in ("first_run", "daily_run"):
        run = data[label]
        lines.append(
            f"{label.replace('_', ' ')}: {run['requests']:,} requests = {run['percent_of_hourly_quota']}% of the "
            f"hourly quota ({data['hourly_quota']:,}), {run['percent_of_daily_quota']}% of the daily quota "
            f"({data['daily_quota']:,}); charge-back ${run['cost_usd']}"
            + ("" if run["fits_daily_quota"] else "; OVER THE DAILY QUOTA")
        )
    lines.append("~ estimated from the route's span and the trailing window; others probed with length=0")
    return "\n".join(lines)


@app.command("plan")
def plan_cmd(
    file: Annotated[str | None, typer.Argument(help="Catalog JSON file (default: the packaged catalog).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Requests per entry for a first run and a daily run, against the quotas, with the charge-back."""
    from flows.cli.app import out
    from tasks.catalog import plan_catalog
    from tasks.store.database import connect
    from tasks.store.watermarks import read_watermarks

    catalog = _load(file)

    async def work(reader: MetadataReader, session: SessionSettings) -> CatalogPlan:
        def marks() -> dict[str, datetime]:
            with connect(session.dsn) as conn:
                return read_watermarks(conn, session.tenant_id, catalog.entries, catalog.series_ids)

        watermarks = await asyncio.to_thread(marks)
        return await plan_catalog(
            reader,
            reader.client,
            catalog,
            watermarks=watermarks,
            policy=session.cost,
            page_size=reader.client.settings.page_size,
        )

    plan: CatalogPlan = _on_reader(work)
    if as_json:
        typer.echo(json.dumps(plan.as_dict(), indent=2))
    else:
        out.print(plan_text(plan), soft_wrap=True)
        out.print(f"(this plan cost {plan.planning_requests} EIA requests, counted in the usage ledger)")


def refuse_costly_catalog(catalog_path: str | None, entry_ids: list[str] | None, series_ids: list[str] | None) -> None:
    """`eia run series`' guard: a catalog whose daily run cannot fit the daily quota is refused with
    the plan's report (the least such a run costs, worked out without a request)."""
    from dataclasses import replace

    from flows.cli.app import _guard, fail, out
    from flows.settings import load_cost_policy
    from tasks.catalog import CatalogTooCostly, check_daily_quota, offline_plan

    catalog = _load(catalog_path)
    if entry_ids or series_ids:
        chosen = set(entry_ids or ())
        catalog = replace(
            catalog,
            entries=tuple(e for e in catalog.entries if e.id in chosen),
            series_ids=tuple(series_ids or ()),
        )
    policy = _guard(lambda: asyncio.run(load_cost_policy()))
    plan = offline_plan(catalog, policy)
    try:
        check_daily_quota(plan)
    except CatalogTooCostly as exc:
        out.print(plan_text(plan), soft_wrap=True)
        fail(str(exc))
