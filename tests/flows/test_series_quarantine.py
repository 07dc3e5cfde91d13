"""Valid data always flows: a few bad rows are quarantined under their rules and never hold the rest
back; only a systematic break blocks an entry; a run right after an outage waits for the breaker's
trial instead of failing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

from tasks.standin.data import DATE_FORMATS, synthetic_route_series
from tests.flows.conftest import Setup
from tests.flows.series_data import SEVEN, add_series
from tests.flows.test_series_flow import run
from tests.support.services import scalar

pytestmark = pytest.mark.slow

ROUTE = "electricity/rto/region-data"
FACETS = {"respondent": "PJM", "type": "D"}


def _entry(entry_id: str) -> dict[str, Any]:
    return {
        "id": entry_id,
        "route": ROUTE,
        "frequency": "hourly",
        "data": ["value"],
        "facets": {k: [v] for k, v in FACETS.items()},
        "series_facets": sorted(FACETS),
        "area_facet": "respondent",
    }


def _hourly(n_points: int, start: str, unit: str = "megawatthours", **overrides: Any) -> list[dict[str, Any]]:
    return synthetic_route_series(
        ROUTE,
        "hourly",
        n_points=n_points,
        facets=FACETS,
        unit=unit,
        unit_column="value-units",
        start=start,
        value_fn=lambda i: f"{90_000 + (i % 24) * 100}",
        **overrides,
    )


def _serve(setup: Setup, rows: list[dict[str, Any]]) -> None:
    setup.server.dataset.add_route_rows(ROUTE, "hourly", DATE_FORMATS["hourly"], rows)


async def _months_in_table(setup: Setup) -> int:
    return int(
        scalar(
            setup.dsn,
            """SELECT count(*) FROM (SELECT DISTINCT tenant_id, series_id, frequency, sector, area,
                   date_trunc('month', period, 'UTC') FROM eia_series_timeseries) m""",
        )
    )


async def test_nine_bad_rows_among_12000_are_quarantined_under_their_rules_and_the_run_completes(
    setup: Setup,
) -> None:
    valid = _hourly(12_000, "2025-06-01T00")
    future = _hourly(3, f"{datetime.now(UTC).year + 1}-06-01T00")  # a parse error would look like this
    # Four hours EIA reported in a power unit: a different canonical unit from the series' MWh.
    changed = _hourly(4, "2026-11-20T00", unit="megawatts")
    duplicate = dict(valid[100])
    bad_period = {**valid[0], "period": "2025-02-30T05"}
    rows = [*valid[:5_000], *future, *changed, duplicate, bad_period, *valid[5_000:]]
    _serve(setup, rows)

    state, result = await run(setup, setup.catalog([_entry("pjm-demand")]))

    assert state.is_completed(), state.message
    (entry,) = result.entries
    assert entry.pages == 3 and entry.fetched == 12_009
    c = result.counts
    assert (c.received, c.inserted, c.quarantined) == (12_009, 12_000, 9)
    assert entry.quarantined_by_reason == {
        "period_not_in_future": 3,
        "series_single_canonical_unit": 4,
        "duplicate_in_response": 1,
        "bad_period": 1,
    }
    assert entry.status == "quarantined 9"
    assert "9 quarantined (series_single_canonical_unit 4, period_not_in_future 3, bad_period 1, " in (
        state.message or ""
    )
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries") == 12_000
    with_reasons = Counter(
        r for (r,) in await asyncio.to_thread(_rows, setup.dsn, "SELECT reason FROM eia_series_quarantine")
    )
    assert with_reasons == {
        "period_not_in_future": 3,
        "series_single_canonical_unit": 4,
        "duplicate_in_response": 1,
        "bad_period": 1,
    }
    # The merged rows passed the contract a second time, and the batch log says so.
    assert await asyncio.to_thread(
        _rows, setup.dsn, "SELECT gate_passed, recheck_passed, quarantined FROM eia_batch_log"
    ) == [(True, True, 9)]
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["eia-series-run"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(result.run_id)]),
            )
        )
    assert len(artifacts) == 1 and "9 quarantined" in str(artifacts[0].data)
    # On plain PostgreSQL the monthly aggregate is refreshed after the run: readable, with every new month.
    if scalar(setup.dsn, "SELECT flavor FROM eia_schema_migrations ORDER BY version LIMIT 1") == "postgres":
        assert scalar(setup.dsn, "SELECT count(*) FROM eia_monthly_aggregates") == await _months_in_table(setup) > 0


def _rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


async def test_an_unknown_unit_in_most_rows_blocks_the_entry_naming_the_rule_and_the_share(setup: Setup) -> None:
    rows = [*_hourly(80, "2026-10-01T00", unit="furlongs per fortnight"), *_hourly(20, "2026-10-05T00")]
    _serve(setup, rows)
    add_series(setup.server.dataset, SEVEN[0])  # another entry of the same run still loads

    state, result = await run(setup, setup.catalog([_entry("pjm-demand"), SEVEN[0].entry()]))

    assert state.is_failed()
    assert state.message == (
        "pjm-demand: the quality gate blocked the batch: 80 of the batch's 100 rows (80%) fail row rules "
        "(unknown_unit), more than max_quarantine_share=50%: a systematic break"
    )
    blocked, loaded = sorted(result.entries, key=lambda e: e.key != "pjm-demand")
    assert blocked.status == "blocked" and blocked.quarantined_by_reason == {"unknown_unit": 80, "batch_blocked": 20}
    assert loaded.status == "ok" and loaded.counts.inserted == SEVEN[0].n_points
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries") == SEVEN[0].n_points


async def test_after_an_outage_a_run_started_while_the_breaker_is_open_waits_for_the_trial_and_loads(
    setup: Setup,
) -> None:
    add_series(setup.server.dataset, SEVEN[0])
    catalog = setup.catalog([SEVEN[0].entry()])
    setup.server.faults.outage = True
    await setup.configure(retries=10, breaker_fail_max=3, breaker_reset_timeout_s=4)

    state, _ = await run(setup, catalog)
    assert state.is_failed() and "circuit breaker" in (state.message or "")
    assert scalar(setup.dsn, "SELECT state FROM eia_breaker_state") == "open"

    setup.server.faults.outage = False  # EIA is back; the rerun starts at once, inside the 4 s
    started = time.monotonic()
    state, result = await run(setup, catalog)

    assert state.is_completed(), state.message
    assert result.counts.inserted == SEVEN[0].n_points
    assert time.monotonic() - started >= 1  # it waited for the half-open trial instead of failing
    assert scalar(setup.dsn, "SELECT state FROM eia_breaker_state") == "closed"


async def test_a_run_during_which_the_breaker_opens_still_stops_at_once(setup: Setup) -> None:
    add_series(setup.server.dataset, SEVEN[0])
    setup.server.faults.outage = True
    await setup.configure(retries=10, breaker_fail_max=3, breaker_reset_timeout_s=600)

    started = time.monotonic()
    state, _ = await run(setup, setup.catalog([SEVEN[0].entry()]))

    assert state.is_failed() and "circuit breaker" in (state.message or "")
    assert setup.server.stats.api_requests == 3
    assert time.monotonic() - started < 60  # no waiting for a 600 s trial once it opened mid-run
