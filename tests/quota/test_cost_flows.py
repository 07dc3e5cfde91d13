"""Cost controls end to end: series runs against the ledger, quota stops, the cost flow, the CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import psycopg
import pytest
from prefect.artifacts import Artifact
from prefect.events.worker import EventsWorker
from typer.testing import CliRunner, Result

from blocks import COST_POLICY_BLOCK, EiaCostPolicy
from flows.cli.app import app
from flows.cli.setup import ensure_blocks
from flows.cost import eia_cost_monitoring
from flows.series import ingest_eia_series_timescale, run_result
from tests.flows.conftest import Setup
from tests.flows.series_data import SEVEN, SeriesSpec, add_series, seven_series_dataset
from tests.quota.conftest import TENANT, insert_history, ledger_sum
from tests.support.services import scalar

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"


async def eia(dsn: str, *args: str) -> Result:
    """Runs the `eia` CLI in a thread (it starts its own event loop)."""
    env = {"EIA_DATABASE_URL": dsn, "EIA_ACTOR": "ops-carol"}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_after_a_series_run_the_ledger_counts_every_request_the_standin_received(setup: Setup) -> None:
    dataset, entries, _ = seven_series_dataset()
    setup.server.dataset = dataset
    setup.server.faults.error_rate = 0.2
    setup.server.faults.seed = 7
    setup.server.faults.burst_429 = 3
    setup.server.faults.retry_after_s = 0
    await setup.configure(retries=8)

    state = await ingest_eia_series_timescale(catalog_path=setup.catalog(entries), return_state=True)

    stats = setup.server.stats
    assert state.is_completed(), state.message
    assert ledger_sum(setup.dsn, "requests") == stats.api_requests == run_result(state).requests  # type: ignore[union-attr]
    assert ledger_sum(setup.dsn, "requests_2xx") == stats.statuses[200]
    assert ledger_sum(setup.dsn, "requests_5xx") == stats.statuses[500] > 0
    assert ledger_sum(setup.dsn, "requests_4xx") == stats.statuses[429] == 3
    assert ledger_sum(setup.dsn, "errors_rate_limited") == 3
    assert ledger_sum(setup.dsn, "errors_server_error") == stats.statuses[500]
    # A retry is a request sent again (same path and query): Prefect task retries and re-sends after a 429.
    # Route metadata requests (the catalog check) differ by path alone, so both are compared.
    distinct = len(set(zip((path for _, path in stats.api_arrivals), stats.seen_query_strings, strict=True)))
    assert ledger_sum(setup.dsn, "retries") == stats.api_requests - distinct > 0
    assert ledger_sum(setup.dsn, "latency_count") == stats.api_requests


async def test_an_exhausted_quota_stops_the_run_cleanly_and_a_reset_lets_the_rerun_complete(setup: Setup) -> None:
    retail, coal = SEVEN[2], SEVEN[4]  # one page each
    hourly = SeriesSpec(
        "hourly-1000",
        "electricity/rto/fuel-type-data",
        "hourly",
        "value",
        "megawatthours",
        {"respondent": "US48", "fueltype": "NG"},
        1_000,
        "2025-01-01T00",
        unit_column="value-units",
    )
    for spec in (retail, coal, hourly):
        add_series(setup.server.dataset, spec)
    setup.server.faults.latency_s = 0.3  # the hourly series pages on (11 pages) while the others merge
    await setup.configure(page_size=100)
    await EiaCostPolicy(hourly_request_limit=20).save(COST_POLICY_BLOCK, overwrite=True)
    insert_history(setup.dsn, {datetime.now(UTC).replace(minute=0, second=0, microsecond=0): 12})
    catalog = setup.catalog([retail.entry(), coal.entry(), hourly.entry()])

    state = await ingest_eia_series_timescale(catalog_path=catalog, return_state=True)

    assert state.is_failed()
    assert "hourly quota of 20 requests exhausted: 20 used; resets at " in (state.message or "")
    assert setup.server.stats.api_requests == 8  # not one request past the quota
    assert ledger_sum(setup.dsn, "requests") == 20
    with psycopg.connect(setup.dsn) as conn:
        loaded: dict[str, int] = dict(
            conn.execute("SELECT dataset, count(*) FROM eia_series_timeseries GROUP BY dataset").fetchall()
        )
        runs = conn.execute("SELECT status, message FROM eia_run_log").fetchall()
    assert loaded == {retail.route: retail.n_points, coal.route: coal.n_points}  # merged batches stay merged
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_staging") == 0  # nothing half-done
    assert [status for status, _ in runs] == ["failed"] and "hourly quota" in runs[0][1]

    reset = await eia(setup.dsn, "quota", "reset", "--hour")
    assert reset.exit_code == 0, reset.output
    assert "hour: 20 → 0 used" in reset.output
    audit = scalar(setup.dsn, "SELECT actor || ' ' || action FROM eia_audit_log")
    assert audit == "ops-carol quota.reset"

    state = await ingest_eia_series_timescale(catalog_path=catalog, return_state=True)

    assert state.is_completed(), state.message
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries") == (
        retail.n_points + coal.n_points + hourly.n_points
    )
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries WHERE revision > 0") == 0


async def test_the_cost_flow_records_a_snapshot_writes_artifacts_and_emits_events(
    setup: Setup, asserting_events_worker: EventsWorker
) -> None:
    now = datetime(2026, 11, 10, 14, 30, tzinfo=UTC)
    hour = now.replace(minute=0)
    history = {hour - timedelta(hours=h): 100 for h in range(1, 25)}
    history[hour] = 200  # a spike: 200% of the trailing average
    history[datetime(2026, 11, 3, 9, tzinfo=UTC)] = 85_000 - sum(history.values())
    insert_history(setup.dsn, history)
    await EiaCostPolicy(monthly_budget_usd=Decimal("0.50"), daily_request_limit=100_000).save(
        COST_POLICY_BLOCK, overwrite=True
    )

    result = await eia_cost_monitoring(now=now)

    assert result.state == "critical"
    assert result.events == ["eia.cost.budget.critical", "eia.cost.spike"]
    asserting_events_worker.drain()
    emitted = [e for e in asserting_events_worker._client.events if e.event.startswith("eia.cost.")]  # type: ignore[attr-defined]
    assert [e.event for e in emitted] == result.events
    assert {e.resource.id for e in emitted} == {f"eia.cost.{TENANT}"}
    assert emitted[0].payload["budget"]["spend_usd"] == "0.43"
    with psycopg.connect(setup.dsn) as conn:
        row = conn.execute(
            """SELECT month_requests, spend_usd, projected_usd, percent_of_budget, budget_state, spike,
                      spike_ratio_percent, details->'budget'->>'projected_usd' FROM eia_cost_snapshots"""
        ).fetchone()
    # 230.5 of November's 720 hours elapsed: 0.425 * 720 / 230.5 = 1.3275... → $1.33.
    assert row == (
        85_000,
        Decimal("0.43"),
        Decimal("1.33"),
        Decimal("85.00"),
        "critical",
        True,
        Decimal("200.00"),
        "1.33",
    )
    table = await Artifact.aget("eia-cost-monitoring")
    assert table is not None and "percent of budget" in str(table.data)
    summary = await Artifact.aget("eia-cost-monitoring-summary")
    assert summary is not None and "eia.cost.spike" in str(summary.data)


async def test_quota_status_json_has_exactly_the_documented_keys(setup: Setup) -> None:
    insert_history(setup.dsn, {datetime.now(UTC).replace(minute=0, second=0, microsecond=0): 7})
    schema = json.loads((DOCS / "quota-status.schema.json").read_text())
    documented = (DOCS.parent / "README.md").read_text()

    result = await eia(setup.dsn, "quota", "status", "--json")

    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    jsonschema.validate(status, schema)
    assert (status["hour"]["used"], status["hour"]["limit"], status["hour"]["configured_limit"]) == (7, 9000, 20000)
    assert status["day"]["remaining"] == 100_000 - 7

    def keys(node: dict[str, Any], prefix: str = "") -> list[str]:
        found = []
        for name, sub in node.get("properties", {}).items():
            found.append(prefix + name)
            found += keys(sub, f"{prefix}{name}.")
        return found

    missing = [k for k in keys(schema) if f"`{k}`" not in documented]
    assert missing == []  # every key in the schema is documented in README.md (Cost controls)

    human = await eia(setup.dsn, "quota", "status")
    assert human.exit_code == 0, human.output
    assert "spend $0.00 of $10000.00" in human.output


async def test_budget_set_updates_the_policy_block_and_is_audited(setup: Setup) -> None:
    outcome = await ensure_blocks({})
    assert outcome[COST_POLICY_BLOCK] in ("created", "unchanged")

    result = await eia(setup.dsn, "budget", "set", "8000")

    assert result.exit_code == 0, result.output
    assert "$10000.00 → $8000" in result.output
    block: EiaCostPolicy = await EiaCostPolicy.aload(COST_POLICY_BLOCK)  # type: ignore[assignment]
    assert block.monthly_budget_usd == Decimal("8000")
    details = scalar(setup.dsn, "SELECT details FROM eia_audit_log WHERE action = 'budget.set'")
    assert (details["old_usd"], details["new_usd"]) == ("10000.00", "8000")
    status = await eia(setup.dsn, "quota", "status", "--json")
    assert json.loads(status.output)["budget"]["monthly_budget_usd"] == "8000.00"
    bad = await eia(setup.dsn, "budget", "set", "-5")
    assert bad.exit_code != 0
