"""`python -m tests.deploy.local_pool_probe OUT.json`: what the README's local-pool steps left behind.

tests/deploy/test_local_pool.py runs the README's shell blocks as written, in one shell, and runs this
between the last step and the stop step (while the server and the database are still up). It reads
the same variables the README exports (PREFECT_API_URL, EIA_DATABASE_URL) and writes what the test
asserts: the work pool, the `local` deployments with their pull steps, the series run and its rows.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import psycopg
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
)
from prefect.client.schemas.sorting import FlowRunSort

from tests.deploy.spec import ALL_FLOWS

SERIES = "ingest_eia_series_timescale"
POOL = "eia-local"


async def _prefect(api_url: str) -> dict[str, Any]:
    async with PrefectClient(api_url) as client:
        pool = await client.read_work_pool(POOL)
        flows = {
            f.id: f.name
            for f in await client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=list(ALL_FLOWS))))
        }
        deployments = await client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(ALL_FLOWS))),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["local"])),
        )
        series = await client.read_deployment_by_name(f"{SERIES}/local")
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[series.id])),
            sort=FlowRunSort.START_TIME_DESC,
        )
    return {
        "pool": {"name": pool.name, "type": pool.type},
        "deployments": {
            flows[d.flow_id]: {
                "entrypoint": d.entrypoint,
                "work_pool_name": d.work_pool_name,
                "pull_steps": d.pull_steps,
                "job_variables": d.job_variables,
            }
            for d in deployments
        },
        "runs": [
            {
                "id": str(r.id),
                "state_type": r.state.type.value if r.state else None,
                "message": r.state.message if r.state else None,
                "parameters": r.parameters,
            }
            for r in runs
        ],
    }


def _database(dsn: str, run_ids: list[str]) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        observations = conn.execute("SELECT count(*) FROM eia_series_timeseries").fetchone()
        logs = conn.execute(
            "SELECT run_id, status, received, inserted, quarantined FROM eia_run_log WHERE run_id = ANY(%s)",
            (run_ids,),
        ).fetchall()
    return {
        "observations": observations[0] if observations else None,
        "run_log": {str(run_id): list(counts) for run_id, *counts in logs},
    }


def main(out: Path) -> None:
    found = asyncio.run(_prefect(os.environ["PREFECT_API_URL"]))
    found["database"] = _database(os.environ["EIA_DATABASE_URL"], [r["id"] for r in found["runs"]])
    out.write_text(json.dumps(found, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
