"""Worker processes for the concurrency tests (separate processes: importable, top-level functions)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import psycopg

from tasks.core.errors import QuotaExhausted
from tasks.eia.client import ClientSettings, EiaClient
from tasks.quota.budget import CostPolicy, EffectiveLimits
from tasks.quota.ledger import UsageLedger
from tasks.quota.reserve import reserve_request_sync


def send_until_refused(
    settings: ClientSettings,
    request: tuple[str, list[tuple[str, str]]],
    dsn: str,
    tenant: str,
    hourly: int,
    attempts: int,
    start: Barrier,
    results: Queue[Any],
) -> None:
    """Sends requests through EiaClient with the ledger's hooks until the quota refuses one."""
    path, params = request

    async def run() -> tuple[int, int, str]:
        policy = CostPolicy(hourly_request_limit=hourly)
        async with (
            UsageLedger(dsn, tenant, policy) as ledger,
            EiaClient(settings, reserve=ledger.reserve, on_request=ledger.record) as client,
        ):
            start.wait(120)  # every process imported and connected: all start at once
            message = ""
            for _ in range(attempts):
                try:
                    await client.get_json(path, params)
                except QuotaExhausted as exc:
                    message = str(exc)
                    break
            return client.requests_sent, ledger.refused, message

    results.put(asyncio.run(run()))


def reserve_many(
    dsn: str, tenant: str, hourly: int, daily: int, moments: list[datetime], start: Barrier, results: Queue[Any]
) -> None:
    """Reserves once per moment (bare reservations, no HTTP) and reports how many were granted."""
    limits = EffectiveLimits(hourly, daily, False, False)
    granted = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        start.wait(120)
        for moment in moments:
            granted += reserve_request_sync(conn, tenant, limits, moment).granted
    results.put(granted)
