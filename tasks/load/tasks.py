"""Prefect side of the load step: a gated batch's quality artifact, and publishing the outbox.

`x_task = task(...)(x)` over plain functions: `quality_artifact_task` and `publish_outbox_task` (the
Kafka drain of what the merges and the quarantine wrote, shared by the series and bulk flows).

Why it exists: the flows publish one quality artifact per gated batch that failed or warned (issue
7); its key, Markdown and table come from `tasks.load.artifact`, this module only hands them to
Prefect. The loaders stay plain: they take `report_batch_quality` as their `on_batch` callback.
"""

from __future__ import annotations

import logging
from uuid import UUID

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext
from prefect.runtime import flow_run

from tasks.load.artifact import batch_quality_report
from tasks.load.batch import BatchOutcome
from tasks.publish.outbox import drain_outbox
from tasks.quality.gate import GateResult

log = logging.getLogger(__name__)


def create_quality_artifact(batch_id: str, result: GateResult, flow_name: str) -> UUID | None:
    """Creates the batch's table artifact (key `eia-<flow>-batch-quality`) when a check failed, warned or
    errored. Returns the artifact's id, or None for a batch whose checks all passed (nothing to report).
    """
    report = batch_quality_report(batch_id, result, flow_name)
    if report is None:
        return None
    created = create_table_artifact(table=report.rows, key=report.key, description=report.markdown)
    if not isinstance(created, UUID):  # only an async caller gets a coroutine: use it from sync code
        raise TypeError("create_quality_artifact must be called from synchronous code")
    return created


def report_batch_quality(outcome: BatchOutcome) -> UUID | None:
    """The loaders' `on_batch` callback: publishes the artifact of a batch already committed (or quarantined).

    The data is safe by the time this runs, so a Prefect API hiccup here is logged, never raised: it
    must not fail (and retry) a load that has succeeded.
    """
    run = FlowRunContext.get()
    if outcome.gate is None or not (run or TaskRunContext.get()):
        return None  # outside a run (a library call, a test) there is no UI page to attach it to
    flow_name = run.flow.name if run is not None and run.flow is not None else (flow_run.get_flow_name() or "flow")
    try:
        return create_quality_artifact(outcome.batch_id, outcome.gate, flow_name)
    except Exception as exc:
        log.warning("quality artifact for batch %s not published: %s", outcome.batch_id, exc)
        return None


# -- Prefect tasks -----------------------------------------------------------------------------

quality_artifact_task = task(name="quality-artifact", task_run_name="quality report {batch_id}", cache_policy=NO_CACHE)(
    create_quality_artifact
)
publish_outbox_task = task(name="publish-outbox", cache_policy=NO_CACHE)(drain_outbox)
