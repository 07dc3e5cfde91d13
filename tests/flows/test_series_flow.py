"""The daily series flow end to end: stand-in EIA → normalize → Soda gate → PostgreSQL → Kafka."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import psycopg
import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.states import State

from flows.series import SeriesRunResult, ingest_eia_series_timescale, run_result
from tasks.load.artifact import artifact_key
from tasks.standin.data import DATE_FORMATS
from tests.flows.conftest import Setup
from tests.flows.series_data import SEVEN, SeriesSpec, add_series, seven_series_dataset
from tests.support.services import scalar

pytestmark = pytest.mark.slow


async def run(setup: Setup, catalog: str, **params: Any) -> tuple[State[Any], SeriesRunResult]:
    state = await ingest_eia_series_timescale(catalog_path=catalog, return_state=True, **params)
    result = run_result(state)
    assert result is not None, state
    return state, result


async def test_seven_frequencies_load_exactly_the_served_rows_and_a_rerun_inserts_nothing(setup: Setup) -> None:
    dataset, entries, served = seven_series_dataset()
    setup.server.dataset = dataset
    catalog = setup.catalog(entries)

    state, result = await run(setup, catalog)

    assert state.is_completed(), state.message
    assert result.counts.received == served
    assert result.counts.inserted == served
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries") == served
    assert scalar(setup.dsn, "SELECT count(DISTINCT series_id) FROM eia_series_timeseries") == 7
    hourly = next(r for r in result.entries if r.key == "eia930-hourly")
    assert hourly.pages == 3 and hourly.fetched == 12_500
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_quarantine") == 0

    state, again = await run(setup, catalog)
    assert state.is_completed(), state.message
    assert again.counts.inserted == 0 and again.counts.updated == 0
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries") == served


async def test_a_revised_value_updates_its_row_and_keeps_the_old_value_in_history(setup: Setup) -> None:
    spec = SEVEN[2]  # monthly retail price
    rows = add_series(setup.server.dataset, spec)
    catalog = setup.catalog([spec.entry()])
    await run(setup, catalog)
    revised = next(r for r in rows if r["period"] == "2025-06")
    old = revised["price"]
    revised["price"] = "99.99"

    state, result = await run(setup, catalog, start="2022-01")

    assert state.is_completed(), state.message
    assert (result.counts.inserted, result.counts.updated) == (0, 1)
    assert scalar(setup.dsn, "SELECT value FROM eia_series_timeseries WHERE raw_period = '2025-06'") == 99.99
    assert scalar(setup.dsn, "SELECT old_raw_value FROM eia_series_revisions") == old
    assert scalar(setup.dsn, "SELECT revision FROM eia_series_timeseries WHERE raw_period = '2025-06'") == 1


async def test_a_lying_total_still_loads_exactly_the_real_rows_once(setup: Setup) -> None:
    spec = SEVEN[5]  # hourly, three pages
    add_series(setup.server.dataset, spec)
    setup.server.faults.total_inflation = 777
    state, result = await run(setup, setup.catalog([spec.entry()]))

    assert state.is_completed(), state.message
    assert result.counts.inserted == spec.n_points
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries") == spec.n_points
    assert (
        scalar(
            setup.dsn,
            "SELECT count(*) FROM (SELECT 1 FROM eia_series_timeseries GROUP BY series_id, period "
            "HAVING count(*) > 1) d",
        )
        == 0
    )


def _bad_value_rows() -> tuple[SeriesSpec, list[dict[str, Any]]]:
    spec = SeriesSpec(
        "retail-monthly",
        "electricity/retail-sales",
        "monthly",
        "price",
        "cents per kilowatt-hour",
        {"stateid": "US", "sectorid": "RES"},
        8,
        "2024-01",
    )
    tokens = ["6.75", "w", "NA", None, "--", "abc", "7.10", "7.25"]
    from tasks.standin.data import synthetic_route_series

    rows = synthetic_route_series(
        spec.route,
        spec.frequency,
        n_points=8,
        facets=spec.facets,
        column="price",
        unit=spec.unit,
        start="2024-01",
        value_fn=lambda i: tokens[i],
    )
    bad_period = dict(rows[0], period="2024-13")
    duplicate = dict(rows[6])
    return spec, [*rows, bad_period, duplicate]


async def test_withheld_and_missing_values_keep_their_tokens_and_bad_rows_are_quarantined(setup: Setup) -> None:
    spec, rows = _bad_value_rows()
    setup.server.dataset.add_route_rows(spec.route, spec.frequency, DATE_FORMATS["monthly"], rows)

    state, result = await run(setup, setup.catalog([spec.entry()]))

    assert state.is_completed(), state.message  # flagged values are information, not failures
    assert result.counts.received == 10
    assert result.counts.inserted + result.counts.quarantined == 10
    with psycopg.connect(setup.dsn) as conn:
        loaded = dict(conn.execute("SELECT raw_period, value_flag FROM eia_series_timeseries").fetchall())
        values = dict(conn.execute("SELECT raw_period, value FROM eia_series_timeseries").fetchall())
        reasons = sorted(r[0] for r in conn.execute("SELECT reason FROM eia_series_quarantine").fetchall())
    assert loaded["2024-02"] == "w" and values["2024-02"] is None
    assert loaded["2024-03"] == "NA" and values["2024-03"] is None
    assert loaded["2024-04"] == "null"
    assert loaded["2024-05"] == "--"
    assert loaded["2024-06"] == "abc" and values["2024-06"] is None
    assert values["2024-01"] == 6.75
    assert "bad_period" in reasons and "duplicate_in_response" in reasons


async def test_the_slot_pool_never_lets_more_than_three_requests_reach_eia(setup: Setup) -> None:
    specs = [
        SeriesSpec(
            f"s{i}",
            "natural-gas/pri/fut",
            "daily",
            "value",
            "$/MMBTU",
            {"series": f"S{i:02d}"},
            5,
            "2026-10-01",
            unit_column="units",
        )
        for i in range(30)
    ]
    for spec in specs:
        add_series(setup.server.dataset, spec)
    setup.server.faults.latency_s = 0.3

    state, result = await run(setup, setup.catalog([s.entry() for s in specs]))

    assert state.is_completed(), state.message
    assert result.counts.inserted == 150
    assert 2 <= setup.server.stats.max_in_flight <= 3


async def test_a_missing_slot_limit_fails_the_run_naming_api_eia(setup: Setup) -> None:
    from prefect.client.orchestration import get_client

    add_series(setup.server.dataset, SEVEN[0])
    async with get_client() as client:
        await client.delete_global_concurrency_limit_by_name("api_eia")
    try:
        state, _ = await run(setup, setup.catalog([SEVEN[0].entry()]))
        assert state.is_failed()
        assert "api_eia" in (state.message or "")
        assert setup.server.stats.api_requests == 0
    finally:
        async with get_client() as client:
            await client.upsert_global_concurrency_limit_by_name("api_eia", 3)


async def test_server_errors_and_a_429_burst_are_retried_until_every_row_lands(setup: Setup) -> None:
    dataset, entries, served = seven_series_dataset()
    setup.server.dataset = dataset
    setup.server.faults.error_rate = 0.2
    setup.server.faults.seed = 7
    setup.server.faults.burst_429 = 3
    setup.server.faults.retry_after_s = 1
    await setup.configure(retries=8)

    state, result = await run(setup, setup.catalog(entries))

    assert state.is_completed(), state.message
    assert result.counts.inserted + result.counts.quarantined == served
    assert setup.server.stats.statuses[500] > 0 and setup.server.stats.statuses[429] == 3
    assert result.requests == setup.server.stats.api_requests


async def test_an_invalid_key_fails_at_once_naming_the_setting_without_retries(setup: Setup) -> None:
    add_series(setup.server.dataset, SEVEN[0])
    setup.server.faults.api_key_invalid = True

    state, result = await run(setup, setup.catalog([SEVEN[0].entry()]))

    assert state.is_failed()
    assert "EIA_API_KEY" in (state.message or "")
    assert setup.server.stats.api_requests == 1
    assert result.counts.received == 0


async def test_a_sustained_outage_opens_the_breaker_and_fails_fast(setup: Setup) -> None:
    from typer.testing import CliRunner

    from flows.cli.app import app

    add_series(setup.server.dataset, SEVEN[0])
    setup.server.faults.outage = True
    await setup.configure(retries=10, breaker_fail_max=3, breaker_reset_timeout_s=600)

    state, _ = await run(setup, setup.catalog([SEVEN[0].entry()]))

    assert state.is_failed()
    assert "circuit breaker" in (state.message or "")
    assert setup.server.stats.api_requests == 3  # fails fast once open: no more requests
    runner = CliRunner()
    status = await asyncio.to_thread(runner.invoke, app, ["breaker", "status"], env={"EIA_DATABASE_URL": setup.dsn})
    assert "open" in status.output, status.output
    reset = await asyncio.to_thread(runner.invoke, app, ["breaker", "reset"], env={"EIA_DATABASE_URL": setup.dsn})
    assert "closed" in reset.output, reset.output
    assert scalar(setup.dsn, "SELECT state FROM eia_breaker_state") == "closed"
    assert scalar(setup.dsn, "SELECT action FROM eia_audit_log") == "breaker.reset"


async def test_a_batch_breaking_the_contract_is_quarantined_and_the_table_is_unchanged(setup: Setup) -> None:
    spec = SeriesSpec(
        "odd-units",
        "electricity/retail-sales",
        "monthly",
        "price",
        "furlongs per fortnight",
        {"stateid": "US", "sectorid": "ALL"},
        12,
        "2025-01",
    )
    add_series(setup.server.dataset, spec)

    state, result = await run(setup, setup.catalog([spec.entry()]))

    assert state.is_failed()
    assert "unknown_unit" in (state.message or "")
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries") == 0
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_quarantine") == 12
    assert result.counts.quarantined == 12
    # The blocked batch has its quality artifact in the UI, naming the check and an offending row.
    batch_id = scalar(setup.dsn, "SELECT batch_id FROM eia_batch_log WHERE NOT gate_passed")
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[artifact_key("ingest_eia_series_timescale")]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(result.run_id)]),
            )
        )
    assert len(artifacts) == 1 and artifacts[0].type == "table"
    assert "unknown_unit" in str(artifacts[0].description) and "furlongs per fortnight" in str(artifacts[0].data)
    assert str(batch_id) in str(artifacts[0].description)
