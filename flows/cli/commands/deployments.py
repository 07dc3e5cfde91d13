"""`eia deployments pause|resume|list`: the runbook's "Stop all EIA DAGs" as one command.

Prefect 3.9 has no `prefect deployment pause`; pausing one deployment at a time by name is slow and
easy to get wrong during an incident. These commands act on every deployment of the seven EIA
flows on the configured Prefect API, whatever the deployments are named, and exit non-zero when
there is nothing to act on or a deployment could not be changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

import typer
from rich.table import Table
from rich.text import Text

NAME = "deployments"
app = typer.Typer(help="Pause, resume or list every EIA deployment (all seven flows).", no_args_is_help=True)

# The runbook's seven DAGs, as flow names (prefect.yaml deploys one deployment of each).
EIA_FLOWS: Final = (
    "ingest_eia_series_timescale",
    "ingest_eia_bulk",
    "eia_data_monitoring",
    "eia_cost_monitoring",
    "eia_data_monitoring_daily",
    "eia_staleness_monitor",
    "eia_quality_monitor",
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    id: str
    full_name: str  # flow/deployment, as `prefect deployment run` takes it
    paused: bool
    schedules: tuple[str, ...]
    work_pool: str | None


def _describe(schedule: object, active: bool) -> str:
    cron = getattr(schedule, "cron", None)
    text = f"{cron} {getattr(schedule, 'timezone', None) or 'UTC'}" if cron else str(schedule)
    return text if active else f"{text} (inactive)"


async def list_eia_deployments() -> list[DeploymentInfo]:
    """Every deployment of an EIA flow on the configured Prefect API, sorted by name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async with get_client() as client:
        flows = await client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=list(EIA_FLOWS))))
        names = {f.id: f.name for f in flows}
        found: list[DeploymentInfo] = []
        offset = 0
        while names:
            page = await client.read_deployments(
                flow_filter=FlowFilter(name=FlowFilterName(any_=list(EIA_FLOWS))), limit=200, offset=offset
            )
            for d in page:
                schedules = tuple(_describe(s.schedule, s.active) for s in d.schedules)
                found.append(
                    DeploymentInfo(
                        id=str(d.id),
                        full_name=f"{names.get(d.flow_id, '?')}/{d.name}",
                        paused=bool(d.paused),
                        schedules=schedules,
                        work_pool=d.work_pool_name,
                    )
                )
            if len(page) < 200:
                break
            offset += 200
    return sorted(found, key=lambda d: d.full_name)


async def set_paused(paused: bool) -> tuple[list[DeploymentInfo], list[tuple[DeploymentInfo, str]]]:
    """Pauses or resumes every EIA deployment; returns (changed or already so, failures)."""
    from prefect.client.orchestration import get_client

    deployments = await list_eia_deployments()
    done: list[DeploymentInfo] = []
    failed: list[tuple[DeploymentInfo, str]] = []
    async with get_client() as client:
        for d in deployments:
            try:
                if paused:
                    await client.pause_deployment(d.id)
                else:
                    await client.resume_deployment(d.id)
            except Exception as exc:  # report every failure, then exit non-zero
                failed.append((d, f"{type(exc).__name__}: {exc}"))
            else:
                done.append(d)
    return done, failed


def _none_found() -> typer.Exit:
    from flows.cli.app import error, prefect_api_url

    error(
        f"no deployments of the EIA flows on {prefect_api_url()}; "
        "deploy them with `prefect deploy --all` from the repository root"
    )
    return typer.Exit(1)


def _call(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a Prefect client call; an unreachable or failing API is one line on stderr and exit 2."""
    from flows.cli.app import _guard, fail, prefect_api_url

    try:
        return _guard(lambda: asyncio.run(coro))
    except OSError as exc:  # below HTTP: TLS files, sockets
        fail(f"cannot reach the Prefect API at {prefect_api_url()} (PREFECT_API_URL): {exc}")


def _change(paused: bool) -> None:
    from flows.cli.app import error, out

    verb = "paused" if paused else "resumed"
    done, failed = _call(set_paused(paused))
    if not done and not failed:
        raise _none_found()
    for d in done:
        out.print(f"{verb}: {d.full_name}")
    for d, reason in failed:
        error(f"{d.full_name}: {reason}", label="failed:")
    out.print(f"{len(done)} of {len(done) + len(failed)} EIA deployments {verb}")
    if failed:
        raise typer.Exit(1)


@app.command("pause")
def pause() -> None:
    """Pause every EIA deployment: no new scheduled runs (the runbook's emergency stop)."""
    _change(True)


@app.command("resume")
def resume() -> None:
    """Resume every EIA deployment: schedules run again."""
    _change(False)


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every EIA deployment with its state, schedules and work pool."""
    import json

    from flows.cli.app import out, prefect_api_url

    deployments = _call(list_eia_deployments())
    if not deployments:
        raise _none_found()
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        "name": d.full_name,
                        "id": d.id,
                        "paused": d.paused,
                        "schedules": list(d.schedules),
                        "work_pool": d.work_pool,
                    }
                    for d in deployments
                ]
            )
        )
        return
    table = Table(title=f"EIA deployments on {prefect_api_url()}")
    for column in ("deployment", "state", "schedules", "work pool"):
        table.add_column(column)
    for d in deployments:
        table.add_row(
            d.full_name,
            Text("paused", style="yellow") if d.paused else Text("active", style="green"),
            ", ".join(d.schedules) or "-",
            d.work_pool or "-",
        )
    out.print(table)
