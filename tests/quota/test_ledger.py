"""The usage ledger: atomic reservations across processes, what each request cost, resets."""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tasks.core.errors import EXCHANGE_ERRORS, EiaNotFound, EiaTimeout, QuotaExhausted
from tasks.eia.client import EiaClient
from tasks.quota.budget import CostPolicy
from tasks.quota.ledger import UsageLedger
from tasks.quota.reset import reset_quota
from tasks.quota.status import ledger_totals, quota_status
from tasks.standin.server import EiaReplayServer
from tasks.store.usage import COUNTER_COLUMNS, ERROR_KINDS, LE_COLUMNS
from tests.quota import workers
from tests.quota.conftest import TENANT, client_settings, insert_history, ledger_sum, one_request


def _spawn(target: Any, args_of: list[tuple[Any, ...]]) -> list[Any]:
    """Runs target in one worker process per argument tuple, released together by a barrier."""
    # A fork server imports the worker module (and Prefect) once; each worker is a fresh fork of it.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.quota.workers"])
    results = ctx.Queue()
    start = ctx.Barrier(len(args_of))
    procs = [ctx.Process(target=target, args=(*args, start, results)) for args in args_of]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return out


def test_the_error_columns_are_the_error_classes_kinds_in_the_tables_order_then_other(db: str) -> None:
    with psycopg.connect(db) as conn:
        columns = [
            str(r[0])
            for r in conn.execute(
                """SELECT column_name FROM information_schema.columns
                   WHERE table_name = 'eia_usage_ledger' ORDER BY ordinal_position"""
            ).fetchall()
        ]
    errors = [c.removeprefix("errors_") for c in columns if c.startswith("errors_")]
    assert errors == list(ERROR_KINDS) == [*(e.kind for e in EXCHANGE_ERRORS), "other"]
    assert set(COUNTER_COLUMNS) <= set(columns)


def test_four_worker_processes_with_an_hourly_limit_of_50_send_exactly_50_requests(
    db: str, served: EiaReplayServer
) -> None:
    settings, request = client_settings(served), one_request()
    outcomes = _spawn(workers.send_until_refused, [(settings, request, db, TENANT, 50, 40) for _ in range(4)])

    assert sum(sent for sent, _, _ in outcomes) == 50
    assert served.stats.api_requests == 50
    assert ledger_sum(db, "requests") == 50
    assert ledger_sum(db, "requests_2xx") == 50
    assert all(refused == 1 for _, refused, _ in outcomes), outcomes  # each worker was stopped by the quota
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    messages = {m for _, _, m in outcomes}
    assert any(m.startswith("hourly quota of 50 requests exhausted: 50 used; resets at ") for m in messages)
    assert any(hour.strftime("%Y-%m-%dT%H:%MZ") in m for m in messages)


def test_the_daily_quota_holds_across_an_hour_boundary_under_contention(db: str) -> None:
    # Half the reservations land in 19:00, half in 20:00 (two different rows): only the per-tenant
    # lock keeps the daily sum exact, since no single row lock covers both hours.
    before, after = datetime(2026, 3, 10, 19, 59, 59, 999000, tzinfo=UTC), datetime(2026, 3, 10, 20, tzinfo=UTC)
    moments = [before, after] * 60
    granted = _spawn(workers.reserve_many, [(db, TENANT, 10_000, 100, moments) for _ in range(4)])

    assert sum(granted) == 100
    assert ledger_sum(db, "requests") == 100


async def test_every_request_is_recorded_by_status_class_error_kind_retry_bytes_and_latency(
    db: str, served: EiaReplayServer
) -> None:
    served.faults.burst_429 = 2
    served.faults.retry_after_s = 0
    path, params = one_request()
    async with (
        UsageLedger(db, TENANT, CostPolicy()) as ledger,
        EiaClient(client_settings(served), reserve=ledger.reserve, on_request=ledger.record) as client,
    ):
        await client.get_json(path, params)  # 429, 429, 200
        with pytest.raises(EiaNotFound):
            await client.get_json("/no/such/route/data/", [])  # 404
        sizes = sum(r.bytes for r in client.records)

    with psycopg.connect(db) as conn:
        totals = ledger_totals(conn, TENANT)
    assert totals.requests == 4 == served.stats.api_requests
    assert totals.requests_by_status_class == {"2xx": 1, "3xx": 0, "4xx": 3, "5xx": 0, "no_status": 0}
    assert totals.errors_by_kind["rate_limited"] == 2 and totals.errors_by_kind["not_found"] == 1
    assert sum(totals.errors_by_kind.values()) == 3
    assert totals.retries == 2  # the two re-sends after a 429
    assert totals.bytes == sizes > 0
    assert totals.latency_count == 4 and totals.latency_sum_s > 0
    counts = [c for _, c in totals.latency_buckets]
    assert counts == sorted(counts) and counts[-1] == 4  # cumulative; a local answer takes < 60 s
    assert [b for b, _ in totals.latency_buckets] == [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0]
    assert len(LE_COLUMNS) == 10


async def test_a_timeout_counts_as_a_request_without_status_and_an_error(db: str, served: EiaReplayServer) -> None:
    served.faults.timeout_rate = 1.0
    served.faults.timeout_sleep_s = 1.0
    settings = dataclasses.replace(client_settings(served), timeout_s=0.2)
    path, params = one_request()
    async with (
        UsageLedger(db, TENANT, CostPolicy()) as ledger,
        EiaClient(settings, reserve=ledger.reserve, on_request=ledger.record) as client,
    ):
        with pytest.raises(EiaTimeout):
            await client.get_json(path, params)

    assert ledger_sum(db, "requests") == 1
    assert ledger_sum(db, "requests_no_status") == 1
    assert ledger_sum(db, "errors_timeout") == 1


async def test_a_refused_reservation_sends_nothing_and_names_the_daily_quota(db: str, served: EiaReplayServer) -> None:
    now = datetime.now(UTC)
    insert_history(db, {now.replace(minute=0, second=0, microsecond=0): 30})
    path, params = one_request()
    policy = CostPolicy(daily_request_limit=30)
    async with (
        UsageLedger(db, TENANT, policy) as ledger,
        EiaClient(client_settings(served), reserve=ledger.reserve, on_request=ledger.record) as client,
    ):
        with pytest.raises(QuotaExhausted) as refused:
            await client.get_json(path, params)

    assert served.stats.api_requests == 0
    tomorrow = (now + timedelta(days=1)).strftime("%Y-%m-%dT00:00Z")
    assert str(refused.value).startswith(f"daily quota of 30 requests exhausted: 30 used; resets at {tomorrow}")
    assert (refused.value.quota, refused.value.limit, refused.value.used) == ("daily", 30, 30)
    assert not refused.value.transient


def test_reset_restarts_the_hour_or_the_day_keeps_the_counts_and_is_audited(db: str) -> None:
    now = datetime(2026, 3, 10, 20, 30, tzinfo=UTC)
    insert_history(db, {now.replace(hour=19, minute=0): 40, now.replace(minute=0): 25})
    policy = CostPolicy(hourly_request_limit=25, daily_request_limit=1000)
    with psycopg.connect(db, autocommit=True) as conn:
        assert quota_status(conn, TENANT, policy, now).hour.remaining == 0

        hour = reset_quota(conn, TENANT, hour=True, day=False, actor="ops-alice", now=now)
        assert (hour.hour_used_before, hour.hour_used_after) == (25, 0)
        assert (hour.day_used_before, hour.day_used_after) == (65, 65)  # the day keeps its usage

        day = reset_quota(conn, TENANT, hour=False, day=True, actor="ops-bob", now=now)
        assert (day.day_used_before, day.day_used_after) == (65, 0)

        status = quota_status(conn, TENANT, policy, now)
        assert (status.hour.used, status.hour.requests, status.day.used, status.day.requests) == (0, 25, 0, 65)
        assert status.budget.requests == 65  # cost and history intact
        audit = conn.execute("SELECT actor, action, details FROM eia_audit_log ORDER BY id").fetchall()
    assert [(a, b) for a, b, _ in audit] == [("ops-alice", "quota.reset"), ("ops-bob", "quota.reset")]
    assert audit[0][2]["scopes"] == ["hour"] and audit[0][2]["hour_used_before"] == 25
    assert audit[1][2]["day"] == "2026-03-10" and audit[1][2]["day_used_before"] == 65


async def test_the_ledger_connection_never_blocks_the_event_loop_for_long(db: str, served: EiaReplayServer) -> None:
    # A ticker on the same loop must keep ticking while requests are reserved and recorded.
    path, params = one_request()
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    async with (
        UsageLedger(db, TENANT, CostPolicy()) as ledger,
        EiaClient(client_settings(served), reserve=ledger.reserve, on_request=ledger.record) as client,
    ):
        await asyncio.gather(*(client.get_json(path, params) for _ in range(30)))
    ticker.cancel()
    assert ledger_sum(db, "requests") == 30 == ledger_sum(db, "requests_2xx")
    assert max(gaps) < 0.1
