"""The flow process killed with SIGKILL while batches merge (a pod killed mid-merge): every batch is in
the table in full or not at all, the run stays 'running' in eia_run_log and Running in Prefect, where
monitoring finds it (`eia_flow_runs_stuck`), and a rerun leaves exactly the table of a clean run.

`eia run series` runs in a subprocess against the session's Prefect test server (no second
ephemeral server to start), the EIA stand-in of this process and the session database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_URL

from tasks.eia.limits import SLOT_LIMIT
from tests.flows.conftest import API_KEY, Setup
from tests.flows.series_data import SeriesSpec, add_series
from tests.reliability.support import (
    batches_are_all_or_nothing,
    batches_logged,
    loaded_plus_quarantined,
    no_duplicates,
    own_routes,
    runs_reconcile,
    scalar,
    snapshot,
    wait_until,
)
from tests.reliability.test_eia_faults import clean_run, run
from tests.support.services import reset_database

pytestmark = pytest.mark.slow

EIA = Path(sys.executable).with_name("eia")


def hourly_specs(count: int, points: int) -> list[SeriesSpec]:
    return [
        SeriesSpec(
            f"h{i}",
            "electricity/rto/fuel-type-data",
            "hourly",
            "value",
            "megawatthours",
            {"respondent": f"R{i:02d}", "fueltype": "NG"},
            points,
            "2026-06-01T00",
            unit_column="value-units",
        )
        for i in range(count)
    ]


def running_run_ids(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT run_id FROM eia_run_log WHERE status = 'running'").fetchall()]


async def free_stranded_slots() -> None:
    """What an operator does after a pod kill: the dead process's `api_eia` slots would otherwise stay
    taken until their leases expire (300 s): `prefect gcl update api_eia --active-slots 0`."""
    async with get_client() as client:
        await client.update_global_concurrency_limit(SLOT_LIMIT, GlobalConcurrencyLimitUpdate(active_slots=0))


async def test_a_flow_killed_mid_merge_leaves_whole_batches_a_detectable_run_and_a_rerun_matches_a_clean_run(
    setup: Setup, tmp_path: Path
) -> None:
    specs = own_routes(hourly_specs(5, 3000))  # five batches of 3,000 rows: merges take a noticeable time
    catalog, served, clean = await clean_run(setup, specs)
    reset_database(setup.dsn)

    setup.server.faults.latency_s = 0.5  # the process is still fetching and merging when it is killed
    setup.server.stats.reset()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONUNBUFFERED": "1"}
    env.pop("EIA_DATABASE_URL", None)
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            str(EIA), "run", "series", "--catalog", catalog, stdout=stdout, stderr=stderr, env=env
        )
        try:
            await asyncio.to_thread(wait_until, batches_logged(setup.dsn, 2), 90.0, "two merged batches")
            proc.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    # No partial batch: each logged batch is whole in the table, nothing else is.
    batches_are_all_or_nothing(setup.dsn)
    no_duplicates(setup.dsn)
    loaded = int(scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries"))
    assert 0 < loaded < served
    # The killed run is detectable: 'running' in eia_run_log, and Running in Prefect.
    (run_id,) = running_run_ids(setup.dsn)
    async with get_client() as client:
        flow_run = await client.read_flow_run(run_id)  # type: ignore[arg-type]
    assert flow_run.state is not None and flow_run.state.type == StateType.RUNNING
    # The key never reached the process's output either.
    assert API_KEY not in out.read_text(errors="replace") + err.read_text(errors="replace")

    await free_stranded_slots()
    setup.server.faults.latency_s = 0.0
    state, _ = await run(catalog)
    assert state.is_completed(), state.message
    assert snapshot(setup.dsn) == clean
    assert loaded_plus_quarantined(setup.dsn) == served
    batches_are_all_or_nothing(setup.dsn)
    runs_reconcile(setup.dsn)
    assert running_run_ids(setup.dsn) == [run_id]  # stays for monitoring to report (and an operator to close)


async def test_a_rerun_loads_the_whole_history_of_an_entry_the_crashed_run_never_reached(setup: Setup) -> None:
    first, second = hourly_specs(2, 200)  # two catalog entries on the same route, as EIA-930 catalogs have
    for spec in (first, second):
        add_series(setup.server.dataset, spec)
    catalog = setup.catalog([first.entry(), second.entry()])
    state, _ = await run(catalog, entries=[first.entry_id])  # what the killed run got through
    assert state.is_completed(), state.message

    state, _ = await run(catalog)

    assert state.is_completed(), state.message
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries WHERE series_id LIKE '%%R01'") == 200
