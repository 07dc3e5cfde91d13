"""The bulk parent's Prefect side: start one child flow run per dataset, wait, collect their reports.

Why it exists: `ingest_eia_bulk` in a deployment spreads its datasets over the work pool (README,
"Scale out"). The rules (names, tags, what a retry re-runs, the artifact) are plain functions in
`tasks.bulk.fanout`; this module makes the calls: `arun_deployment` per dataset, a poll until every
child is final, and the children's eia_run_log rows for the artifact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import arun_deployment
from prefect.runtime import deployment, flow_run
from prefect.utilities.urls import url_for
from psycopg.rows import dict_row

from tasks.bulk.fanout import (
    PARENT_TAG,
    ChildOutcome,
    ChildRun,
    apply_run_log,
    child_tags,
    dataset_of,
    idempotency_key,
    still_to_run,
)
from tasks.store.tables import RUN_LOG

Log = logging.Logger | logging.LoggerAdapter[Any]
POLL_S = 2.0  # how often the parent looks at its children's states (one API call for all of them)


def in_deployment() -> bool:
    """True in a run of a deployment (a worker started it): only there does the parent fan out."""
    return flow_run.get_id() is not None and deployment.get_id() is not None


def _child(run: FlowRun) -> ChildRun | None:
    code = dataset_of(run.tags or [])
    if code is None:
        return None
    created = run.created.timestamp() if run.created else 0.0
    state = str(run.state.name) if run.state else "Pending"
    return ChildRun(code, str(run.id), state, bool(run.state and run.state.is_completed()), created)


async def _children_of(parent_id: str) -> list[ChildRun]:
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"{PARENT_TAG}{parent_id}"]))
        )
    return [c for c in (_child(r) for r in runs) if c is not None]


async def _wait(ids: Sequence[str], log: Log) -> dict[str, FlowRun]:
    """Polls until every child run is final; logs each as it ends."""
    final: dict[str, FlowRun] = {}
    async with get_client() as client:
        while len(final) < len(ids):
            pending = [UUID(i) for i in ids if i not in final]
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=pending)))
            for run in runs:
                if run.state is not None and run.state.is_final():
                    final[str(run.id)] = run
                    log.info("child %s (%s) ended %s", run.name, dataset_of(run.tags or []), run.state.name)
            if len(final) < len(ids):
                await asyncio.sleep(POLL_S)
    return final


def _run_log_rows(dsn: str, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        rows = conn.execute(
            f"""SELECT run_id, status, received, inserted, updated, unchanged, quarantined, skipped, message,
                    details, host, pid FROM {RUN_LOG} WHERE run_id = ANY(%s)""",
            (list(run_ids),),
        ).fetchall()
    return {str(r["run_id"]): r for r in rows}


async def fan_out(
    codes: Sequence[str], child_parameters: Mapping[str, Any], child_deployment: str, dsn: str, log: Log
) -> list[ChildOutcome]:
    """One child run per dataset not finished by an earlier attempt of this parent; their outcomes, in order."""
    parent_id = str(flow_run.get_id())
    attempt = int(flow_run.get_run_count() or 1)
    todo, done = still_to_run(codes, await _children_of(parent_id) if attempt > 1 else [])
    if done:
        log.info("retry %d: %s finished in an earlier attempt; not run again", attempt, ", ".join(sorted(done)))
    started: dict[str, str] = {}
    for code in todo:
        child = await arun_deployment(
            child_deployment,
            parameters={**child_parameters, "datasets": [code], "fan_out": False},
            tags=child_tags(parent_id, code),
            idempotency_key=idempotency_key(parent_id, code, attempt),
            flow_run_name=f"{code.lower()}-{parent_id[:8]}-{attempt}",
            timeout=0,  # start, do not wait here: the children run side by side
            as_subflow=True,
        )
        started[code] = str(child.id)
        log.info("started child run %s for %s on deployment %s", child.name, code, child_deployment)
    final = await _wait(list(started.values()), log) if started else {}

    outcomes: list[ChildOutcome] = []
    for code in codes:
        if code in done:
            child_id, state, reused = done[code].flow_run_id, done[code].state, True
        else:
            child_id, reused = started[code], False
            run = final[child_id]
            state = str(run.state.name) if run.state else "Unknown"
        outcome = ChildOutcome(code, child_id, state, url_for("flow-run", obj_id=child_id), reused=reused)
        if not outcome.ok and not reused:
            run_state = final[child_id].state
            outcome.message = run_state.message if run_state is not None else None
        outcomes.append(outcome)
    rows = await asyncio.to_thread(_run_log_rows, dsn, [o.flow_run_id for o in outcomes])
    for o in outcomes:
        apply_run_log(o, rows.get(o.flow_run_id))
    return outcomes
