"""What a series run shows in the Prefect UI: every planned entry with its status, one vocabulary (API
rows and observations) whose totals are the sums of the table, fetches stopped by a fatal fault ended
Cancelled (never Crashed), and a progress artifact."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import Artifact

from tests.flows.conftest import Setup
from tests.flows.series_data import SEVEN, add_series, seven_series_dataset
from tests.flows.test_series_flow import run

pytestmark = pytest.mark.slow

TABLE_TOTALS = ("api_rows", "observations", "inserted", "updated", "unchanged", "quarantined", "skipped")


def _table(artifact: Artifact) -> list[dict[str, Any]]:
    data = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert isinstance(data, list)
    return data


async def _artifacts(run_id: str, key: str) -> list[Artifact]:
    async with get_client() as client:
        return list(
            await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run_id)])
                )
            )
        )


async def test_a_run_stopped_by_an_open_breaker_lists_every_planned_entry_and_cancels_what_it_did_not_send(
    setup: Setup,
) -> None:
    dataset, entries, _ = seven_series_dataset()
    setup.server.dataset = dataset
    setup.server.faults.outage = True
    await setup.configure(retries=10, breaker_fail_max=3, breaker_reset_timeout_s=600)

    state, result = await run(setup, setup.catalog(entries))

    assert state.is_failed() and "circuit breaker" in (state.message or "")
    assert [e.key for e in result.entries] == [s.entry_id for s in SEVEN]  # every planned entry, in plan order
    statuses = {e.key: e.status for e in result.entries}
    not_run = [k for k, status in statuses.items() if status == "not run: breaker open"]
    assert not_run and all(status in ("error", "not run: breaker open") for status in statuses.values()), statuses
    (table,) = await _artifacts(result.run_id, "eia-series-run-table")
    rows = _table(table)
    assert [r["entry"] for r in rows] == [s.entry_id for s in SEVEN]
    assert {r["entry"]: r["status"] for r in rows} == statuses
    (markdown,) = await _artifacts(result.run_id, "eia-series-run")
    assert f"**Entries planned:** 7 ({7 - len(not_run)} run, {len(not_run)} not run)" in str(markdown.data)
    async with get_client() as client:
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(result.run_id)]))
        )
    states = [
        (t.name, t.state.type.value if t.state else None, t.state.message if t.state else None) for t in task_runs
    ]
    assert not [s for s in states if s[1] == "CRASHED"], states
    cancelled = [s for s in states if s[1] == "CANCELLED"]
    assert all(message == "not run: breaker open" for _, _, message in cancelled), cancelled


async def test_api_rows_and_observations_are_counted_apart_and_the_summary_is_the_sum_of_its_table(
    setup: Setup,
) -> None:
    coal = SEVEN[4]  # two data columns would make observations double the API rows
    two_columns = {**coal.entry(), "data": ["price", "quantity"]}
    rows = add_series(setup.server.dataset, coal, extra={"quantity": "12.5", "quantity-units": "thousand short tons"})
    add_series(setup.server.dataset, SEVEN[0])

    state, result = await run(setup, setup.catalog([two_columns, SEVEN[0].entry()]))

    assert state.is_completed(), state.message
    by_key = {e.key: e for e in result.entries}
    assert (by_key[coal.entry_id].fetched, by_key[coal.entry_id].counts.received) == (len(rows), 2 * len(rows))
    (table,) = await _artifacts(result.run_id, "eia-series-run-table")
    table_rows = _table(table)
    totals = {column: sum(int(r[column]) for r in table_rows) for column in TABLE_TOTALS}
    (markdown,) = await _artifacts(result.run_id, "eia-series-run")
    expected = " | ".join(str(totals[c]) for c in TABLE_TOTALS)
    assert f"| {expected} |" in str(markdown.data)
    assert totals["api_rows"] == len(rows) + SEVEN[0].n_points
    assert totals["observations"] == result.counts.received == 2 * len(rows) + SEVEN[0].n_points
    assert f"from {result.counts.received} observations ({totals['api_rows']} API rows)" in (state.message or "")


async def test_a_series_run_keeps_a_progress_artifact_that_ends_at_100_percent(setup: Setup) -> None:
    add_series(setup.server.dataset, SEVEN[0])

    state, result = await run(setup, setup.catalog([SEVEN[0].entry()]))

    assert state.is_completed(), state.message
    (progress,) = await _artifacts(result.run_id, "eia-series-progress")
    assert progress.type == "progress" and float(progress.data) == 100.0  # type: ignore[arg-type]
