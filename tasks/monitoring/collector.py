"""The collector service (`eia serve`): health, readiness, Prometheus metrics and the breaker reset.

Why it exists: the runbook's `eia-energy-collector` is what Kubernetes probes, Prometheus scrapes and
an operator calls to close the circuit breaker. It holds no state of its own: every answer is read
from PostgreSQL, so any number of replicas agree and a restart loses nothing.

- `GET /health`: liveness. Always 200 while the process serves; the body carries the breaker state
  (or says the database is unreachable), so `curl …/health` answers the runbook's "check status".
- `GET /ready`: 200 when the database answers and no migration is pending, else 503 with the reason.
- `GET /metrics`: the Prometheus text format, read at scrape time (`tasks.monitoring.metrics`).
- `POST /admin/reset-circuit-breaker`: needs `Authorization: Bearer <token>`; the token is compared in
  constant time and never logged. Without it, or with a wrong one: 401 and nothing changes. With it:
  the breaker is closed through `reset_breaker(actor="admin-api")`, which writes the audit log.

The metrics may also be served alone on a second port (the runbook's 9090), without the admin route.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from psycopg.rows import TupleRow
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tasks.monitoring.health import HealthThresholds
from tasks.monitoring.metrics import EiaCollector
from tasks.quota.breaker import DEFAULT_BREAKER, breaker_status, reset_breaker
from tasks.quota.budget import CostPolicy
from tasks.store.database import APPLICATION_NAME, describe_dsn
from tasks.store.migrations import pending

logger = logging.getLogger(__name__)

ADMIN_ACTOR: Final = "admin-api"
PROBE_TIMEOUT_S: Final = 3


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    dsn: str = field(repr=False)
    tenant_id: str
    admin_token: str | None = field(default=None, repr=False)  # None: the admin route always answers 401
    thresholds: HealthThresholds | None = None
    policy: CostPolicy | None = None  # the cost policy for quota and budget metrics (None: defaults)
    breaker: str = DEFAULT_BREAKER


def _connect(dsn: str) -> psycopg.Connection[TupleRow]:
    return psycopg.connect(
        dsn, autocommit=True, connect_timeout=PROBE_TIMEOUT_S, application_name=f"{APPLICATION_NAME}-collector"
    )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def token_matches(provided: str | None, expected: str | None) -> bool:
    """Constant-time comparison; no configured token means nothing matches."""
    if not provided or not expected:
        return False
    return hmac.compare_digest(provided.encode("utf-8"), expected.encode("utf-8"))


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {"error": "unauthorized: send Authorization: Bearer <admin token>"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="eia-collector"'},
    )


def metrics_registry(settings: CollectorSettings) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        EiaCollector(
            settings.dsn, settings.tenant_id, thresholds=settings.thresholds, policy=settings.policy or CostPolicy()
        )
    )
    return registry


def metrics_endpoint(registry: CollectorRegistry) -> Callable[[Request], Any]:
    async def metrics(_: Request) -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


def create_app(settings: CollectorSettings, *, registry: CollectorRegistry | None = None) -> Starlette:
    """The full service: /health, /ready, /metrics and the admin route."""
    registry = registry or metrics_registry(settings)

    def health_body() -> dict[str, Any]:
        try:
            with _connect(settings.dsn) as conn:
                status = breaker_status(conn, settings.breaker)
        except psycopg.Error as exc:
            return {"status": "ok", "database": "unreachable", "error": type(exc).__name__, "breaker": None}
        return {"status": "ok", "database": "up", "breaker": status.as_dict()}

    def ready_body() -> tuple[int, dict[str, Any]]:
        try:
            with _connect(settings.dsn) as conn:
                todo = pending(conn)
        except psycopg.Error as exc:
            return 503, {
                "ready": False,
                "reason": f"database {describe_dsn(settings.dsn)} unreachable ({type(exc).__name__})",
            }
        if todo:
            names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
            return 503, {"ready": False, "reason": f"migrations pending: {names}; run `eia init`"}
        return 200, {"ready": True}

    def reset() -> dict[str, Any]:
        with _connect(settings.dsn) as conn:
            return reset_breaker(conn, actor=ADMIN_ACTOR, name=settings.breaker).as_dict()

    async def health(_: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(health_body))

    async def ready(_: Request) -> JSONResponse:
        code, body = await run_in_threadpool(ready_body)
        return JSONResponse(body, status_code=code)

    async def reset_circuit_breaker(request: Request) -> JSONResponse:
        if not token_matches(_bearer(request), settings.admin_token):
            logger.warning(
                "admin: refused breaker reset from %s (missing or wrong token)",
                request.client.host if request.client else "?",
            )
            return _unauthorized()
        try:
            state = await run_in_threadpool(reset)
        except psycopg.Error as exc:
            return JSONResponse({"error": f"database unreachable ({type(exc).__name__})"}, status_code=503)
        logger.info("admin: circuit breaker %s reset by %s", settings.breaker, ADMIN_ACTOR)
        return JSONResponse({"reset": True, "breaker": state})

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_endpoint(registry), methods=["GET"]),
            Route("/admin/reset-circuit-breaker", reset_circuit_breaker, methods=["POST"]),
        ]
    )


def create_metrics_app(registry: CollectorRegistry) -> Starlette:
    """Metrics only (the runbook's separate metrics port): no admin route, no probes."""
    return Starlette(routes=[Route("/metrics", metrics_endpoint(registry), methods=["GET"])])


class _Quiet(uvicorn.Server):
    """A second server in the same loop: the main one owns the signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _address(server: uvicorn.Server) -> str:
    """host:port a started server listens on (the port the OS chose when 0 was asked for)."""
    for listener in server.servers:
        for sock in listener.sockets:
            host, port = sock.getsockname()[:2]
            return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return f"{server.config.host}:{server.config.port}"


async def _announce(main: uvicorn.Server, side: uvicorn.Server | None) -> None:
    """One line saying where the service listens, once every listener is up."""
    servers = [s for s in (main, side) if s is not None]
    while not all(s.started for s in servers):
        if any(s.should_exit for s in servers):
            return
        await asyncio.sleep(0.05)
    metrics = f"/metrics also on http://{_address(side)}" if side is not None else "no separate metrics port"
    logger.info(
        "eia serve listening on http://%s (/health, /ready, /metrics, POST /admin/reset-circuit-breaker); %s",
        _address(main),
        metrics,
    )


async def serve(settings: CollectorSettings, *, host: str, port: int, metrics_port: int | None) -> None:
    """Runs the service on `port`, and /metrics alone on `metrics_port` too (None or same port: not)."""
    registry = metrics_registry(settings)
    if not settings.admin_token:
        logger.warning("admin endpoint disabled: no admin token (EIA_ADMIN_TOKEN or Secret block) is configured")
    main = uvicorn.Server(
        uvicorn.Config(create_app(settings, registry=registry), host=host, port=port, log_level="info", access_log=True)
    )
    side: uvicorn.Server | None = None
    if metrics_port is not None and metrics_port != port:
        side = _Quiet(
            uvicorn.Config(
                create_metrics_app(registry), host=host, port=metrics_port, log_level="warning", access_log=False
            )
        )
    announce = asyncio.create_task(_announce(main, side))
    side_task = asyncio.create_task(side.serve()) if side is not None else None
    try:
        await main.serve()
    finally:
        announce.cancel()
        if side is not None and side_task is not None:
            side.should_exit = True
            await side_task
