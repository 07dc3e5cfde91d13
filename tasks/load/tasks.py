"""Prefect tasks of the quality area: thin wrappers over plain functions (testable with `task.fn`).

Why it exists: the flows publish one quality artifact per gated batch that failed or warned (issue
7); the Markdown and table come from `tasks.load.artifact`, this module only hands them to Prefect.
"""

from __future__ import annotations

import logging
from uuid import UUID

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, TaskRunContext

from tasks.load.artifact import artifact_key, quality_artifact
from tasks.quality.gate import GateResult

log = logging.getLogger(__name__)


def create_quality_artifact(batch_id: str, result: GateResult) -> UUID | None:
    """Creates the batch's table artifact `eia-quality-<batch>` when a check failed, warned or errored.

    Returns the artifact's id, or None for a batch whose checks all passed (nothing to report).
    """
    if not (result.failed or result.warned):
        return None
    markdown, rows = quality_artifact(result, result.examples, batch_id=batch_id)
    created = create_table_artifact(table=rows, key=artifact_key(batch_id), description=markdown)
    if not isinstance(created, UUID):  # only an async caller gets a coroutine: use it from sync code
        raise TypeError("create_quality_artifact must be called from synchronous code")
    return created


@task(name="quality-artifact", task_run_name="quality report {batch_id}", cache_policy=NO_CACHE)
def quality_artifact_task(batch_id: str, result: GateResult) -> UUID | None:
    """Publishes the batch's quality artifact (see `create_quality_artifact`)."""
    return create_quality_artifact(batch_id, result)


def report_batch_quality(batch_id: str, result: GateResult | None) -> UUID | None:
    """Publishes the artifact of a batch that is already committed (or quarantined).

    The data is safe by the time this runs, so a Prefect API hiccup here is logged, never raised: it
    must not fail (and retry) a load that has succeeded.
    """
    if result is None or not (FlowRunContext.get() or TaskRunContext.get()):
        return None  # outside a run (a library call, a test) there is no UI page to attach it to
    try:
        return create_quality_artifact(batch_id, result)
    except Exception as exc:
        log.warning("quality artifact for batch %s not published: %s", batch_id, exc)
        return None
