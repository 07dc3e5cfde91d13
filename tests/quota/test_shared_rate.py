"""One request budget for every worker: the shares of live workers add up to the global rate, and a 429
seen by one worker halves the rate of all of them (eia_throttle_state), then recovers with time.

Two ledgers with two clients in one process stand for two workers (each its own ledger connection,
worker id and limiter), against the stand-in; the Prefect-server tests are tests/deploy/test_scale_out.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from tasks.eia.client import EiaClient
from tasks.quota.budget import CostPolicy
from tasks.quota.ledger import UsageLedger
from tasks.quota.status import quota_status
from tasks.standin.server import EiaReplayServer
from tests.quota.conftest import TENANT, client_settings, one_request

BASE = 8.0  # each client's configured rate (requests/s)


@contextlib.asynccontextmanager
async def worker(
    db: str, served: EiaReplayServer, name: str, policy: CostPolicy
) -> AsyncIterator[tuple[EiaClient, UsageLedger]]:
    ledger = UsageLedger(db, TENANT, policy, worker=name, recovery_step_s=3600.0)  # no recovery within a test
    settings = client_settings(served, rate=BASE, burst=1)
    async with ledger, EiaClient(settings, reserve=ledger.reserve, on_request=ledger.record) as client:
        ledger.watch(client.limiter)
        yield client, ledger


def factor(db: str) -> float:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT factor FROM eia_throttle_state WHERE tenant_id = %s", (TENANT,)).fetchone()
    return 1.0 if row is None else float(row[0])


async def test_two_live_workers_each_run_at_half_the_global_rate_and_a_429_seen_by_one_halves_both(
    db: str, served: EiaReplayServer
) -> None:
    path, params = one_request()
    async with (
        worker(db, served, "w-a", CostPolicy()) as (a, ledger_a),
        worker(db, served, "w-b", CostPolicy()) as (b, ledger_b),
    ):
        await a.get_json(path, params)  # a alone: the whole base rate
        alone = a.limiter.rate
        await b.get_json(path, params)  # b's reservation sees a's heartbeat
        await a.get_json(path, params)  # and a's next one sees b's
        shared = (a.limiter.rate, b.limiter.rate)

        served.faults.burst_429 = 1
        served.faults.retry_after_s = 0
        await a.get_json(path, params)  # a gets the 429, then the answer
        await ledger_a.flush()  # the back-off is written now (the background writer would within 0.2 s)
        await b.get_json(path, params)  # b was never throttled itself
        await ledger_a.flush()
        await ledger_b.flush()
        with psycopg.connect(db) as conn:
            status = quota_status(conn, TENANT, CostPolicy(), datetime.now(UTC))

    assert alone == BASE
    assert shared == (BASE / 2, BASE / 2)
    assert factor(db) == 0.5
    assert b.limiter.rate == pytest.approx(BASE / 4, rel=1e-3)  # half its share, without a 429 of its own
    assert b.limiter.throttle_events == 0 and a.limiter.throttle_events == 1
    # `eia quota status` shows the factor recovering (0.1 per 5 s) since the halving, moments ago.
    assert 0.5 <= status.rate.global_factor < 0.55
    assert status.rate.global_per_s == pytest.approx(BASE * status.rate.global_factor)
    assert status.rate.throttled_at is not None
    assert {s.worker: s.reason for s in status.rate.shares} == {"w-a": "throttled", "w-b": "throttled"}


async def test_the_live_workers_together_never_exceed_the_quota_spread(db: str, served: EiaReplayServer) -> None:
    path, params = one_request()
    # Past 50 % of the daily quota, with 2 requests/s left to spread over the rest of the UTC day.
    now = datetime.now(UTC)
    left = ((now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0) - now).total_seconds()
    remaining = int(2 * left)
    policy = CostPolicy(daily_request_limit=4 * remaining, warning_percent=Decimal(50), eia_guidance_override=True)
    with psycopg.connect(db, autocommit=True) as conn:  # counted today, not against this hour's quota
        conn.execute(
            """INSERT INTO eia_usage_ledger (tenant_id, hour_bucket, requests, hour_quota_offset)
               VALUES (%s, %s, %s, %s)""",
            (TENANT, now.replace(minute=0, second=0, microsecond=0), 3 * remaining, 3 * remaining),
        )
    async with worker(db, served, "w-a", policy) as (a, _), worker(db, served, "w-b", policy) as (b, _):
        for client in (a, b, a, b):
            await client.get_json(path, params)
        together = a.limiter.rate + b.limiter.rate
        with psycopg.connect(db) as conn:
            status = quota_status(conn, TENANT, policy, datetime.now(UTC))

    spread = status.rate.quota_spread_per_s
    assert spread == pytest.approx(2.0, rel=0.01)
    assert together == pytest.approx(spread, rel=0.01)  # not twice it
    assert status.rate.global_per_s == pytest.approx(spread, rel=0.01)
    assert [s.worker for s in status.rate.shares] == ["w-a", "w-b"]
