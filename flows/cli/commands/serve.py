"""`eia serve`: run the collector service (health, readiness, metrics, admin breaker reset).

The service itself lives in `tasks/monitoring/collector.py`; this command resolves its settings the way the
flows do (blocks, with `EIA_DATABASE_URL` taking precedence) and the admin token from a secret:
`EIA_ADMIN_TOKEN`, else the Prefect Secret block `eia-admin-token`. No token means the admin route
answers 401 to everyone. Ports follow the runbook: 8080 for the service, 9090 for metrics alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Annotated, Final

import typer

if TYPE_CHECKING:
    from tasks.monitoring.collector import CollectorSettings

app = typer.Typer()  # no NAME: `serve` is a top-level command

ADMIN_TOKEN_BLOCK: Final = "eia-admin-token"  # noqa: S105 (a block name, not a secret)
ADMIN_TOKEN_ENV: Final = "EIA_ADMIN_TOKEN"  # noqa: S105 (a variable name)
UVICORN_STARTUP_FAILURE: Final = 3  # uvicorn's exit code when a listener cannot start (port in use, ...)


async def admin_token(block_name: str = ADMIN_TOKEN_BLOCK) -> str | None:
    """The admin token: the environment variable, else the Secret block; None when neither is set."""
    from prefect.blocks.system import Secret

    from flows.settings import load_block
    from tasks.core.redact import register_secret

    value = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
    if not value:
        try:
            secret = await load_block(Secret, block_name, missing_ok=True)  # optional: no token, no admin route
        except Exception as exc:  # no Prefect API reachable: serve without the admin route
            logging.getLogger(__name__).warning(
                "could not read the Secret block %r (%s); the admin endpoint stays disabled",
                block_name,
                type(exc).__name__,
            )
            secret = None
        stored = secret.get() if secret is not None else None
        value = stored.strip() if isinstance(stored, str) else ""
    register_secret(value or None)
    return value or None


async def collector_settings(database_block: str, tenant: str | None, cost_policy_block: str) -> CollectorSettings:
    from blocks import API_KEY_BLOCK, DATABASE_BLOCK, ENDPOINTS_BLOCK, KAFKA_BLOCK
    from flows.settings import load_run_settings
    from tasks.monitoring.collector import CollectorSettings

    settings = await load_run_settings(
        api_key_block=API_KEY_BLOCK,
        endpoints_block=ENDPOINTS_BLOCK,
        database_block=database_block or DATABASE_BLOCK,
        kafka_block=KAFKA_BLOCK,
        need_api_key=False,
        cost_policy_block=cost_policy_block,
    )
    return CollectorSettings(
        dsn=settings.dsn,  # EIA_DATABASE_URL over the block's dsn, as in the flows
        tenant_id=tenant or settings.tenant_id,
        admin_token=await admin_token(),
        policy=settings.cost,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",  # noqa: S104 (a pod's service)
    port: Annotated[
        int, typer.Option(envvar="EIA_HTTP_PORT", help="Port for /health, /ready, /metrics, /admin.")
    ] = 8080,
    metrics_port: Annotated[
        int, typer.Option(envvar="EIA_METRICS_PORT", help="Second port serving /metrics only (0: off).")
    ] = 9090,
    tenant: Annotated[str | None, typer.Option(help="Tenant to report on (default: the database block's).")] = None,
    database_block: Annotated[str, typer.Option(help="EiaDatabase block name.")] = "eia-database",
    cost_policy_block: Annotated[str, typer.Option(help="EiaCostPolicy block name.")] = "eia-cost-policy",
) -> None:
    """Run the collector service: /health, /ready, /metrics and POST /admin/reset-circuit-breaker."""
    from flows.cli.app import _guard, fail
    from tasks.monitoring.collector import serve as run_service

    settings: CollectorSettings = _guard(
        lambda: asyncio.run(collector_settings(database_block, tenant, cost_policy_block))
    )
    # The service's log from here on (after the settings: a fault in them is the command's one line).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Prefect API calls are not the service's log
    try:
        asyncio.run(run_service(settings, host=host, port=port, metrics_port=metrics_port or None))
    except SystemExit as exc:
        if exc.code != UVICORN_STARTUP_FAILURE:
            raise
        # uvicorn has logged why (usually "address already in use"); say which settings choose the ports.
        ports = f"port {port}" + (f" or {metrics_port}" if metrics_port and metrics_port != port else "")
        fail(
            f"the collector cannot listen on {host} {ports}: choose free ports with "
            "--port / EIA_HTTP_PORT and --metrics-port / EIA_METRICS_PORT (0: no separate metrics port)"
        )
