"""Fixtures for the cost controls: the EIA stand-in, configured blocks, and ledger history."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from prefect.testing.fixtures import asserting_events_worker  # noqa: F401  (Prefect's own events fixture)

from tasks.eia.client import ClientSettings
from tasks.eia.requests import route_query
from tasks.standin.server import EiaReplayServer
from tests.flows.conftest import API_KEY, Setup, eia_server, setup, standin  # noqa: F401  (shared fixtures)
from tests.flows.series_data import SEVEN, add_series

TENANT = "aurum-prod"
SPEC = SEVEN[0]  # one small daily route: one page per request


def client_settings(server: EiaReplayServer, rate: float = 1000.0, burst: int = 4) -> ClientSettings:
    """A client straight at the stand-in, without Prefect's global limits (no server needed)."""
    return ClientSettings(
        api_url=server.api_url, api_key=API_KEY, requests_per_second=rate, burst=burst, use_prefect_limits=False
    )


def one_request() -> tuple[str, list[tuple[str, str]]]:
    """The path and query of one small data request the stand-in answers with 200."""
    entry = SPEC.entry()
    facets = {k: tuple(v) for k, v in entry["facets"].items()}
    return route_query(SPEC.route, frequency=SPEC.frequency, data=[SPEC.column], facets=facets, start=None, end=None)


@pytest.fixture
def served(standin: EiaReplayServer) -> EiaReplayServer:  # noqa: F811
    add_series(standin.dataset, SPEC)
    return standin


@pytest.fixture(autouse=True)
async def default_cost_policy(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Tests that save a cost policy (a small quota or budget) must not leave it to later tests."""
    yield
    if "setup" in request.fixturenames:
        from blocks import COST_POLICY_BLOCK, EiaCostPolicy

        with contextlib.suppress(ValueError):
            await EiaCostPolicy.adelete(COST_POLICY_BLOCK)


def insert_history(dsn: str, hours: dict[datetime, int], tenant: str = TENANT) -> None:
    """Ledger rows as if these requests had been sent in these UTC hours."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for hour, requests in hours.items():
            conn.execute(
                """INSERT INTO eia_usage_ledger (tenant_id, hour_bucket, requests, requests_2xx, latency_count)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (tenant_id, hour_bucket) DO UPDATE SET requests = eia_usage_ledger.requests
                       + EXCLUDED.requests""",
                (tenant, hour, requests, requests, requests),
            )


def ledger_sum(dsn: str, column: str, tenant: str = TENANT) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            f"SELECT coalesce(sum({column}), 0) FROM eia_usage_ledger WHERE tenant_id = %s", (tenant,)
        ).fetchone()
    assert row is not None
    return row[0]
