"""The Prefect tasks of the series flow: `x_task = task(...)(x)` over plain functions.

The steps are `tasks.series.steps` (plan, fetch a page, normalize), `tasks.load.batch.load_batch`
(gate and load; its task also publishes the batch's quality artifact); the outbox is published by
`tasks.load.tasks.publish_outbox_task`.
Each is testable with `x_task.fn(...)` and no Prefect server. Only the page fetch retries, with
exponential backoff and jitter, and only on EIA faults a retry can fix. The retry condition is
Prefect-only and lives here too.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.states import Cancelled
from prefect.tasks import Task, exponential_backoff

from tasks.core.errors import EiaRunStopped, is_transient
from tasks.eia import EiaClient, EiaPage
from tasks.load.batch import DEFAULT_MAX_QUARANTINE_SHARE, BatchOutcome, LoadTargets, load_batch
from tasks.load.tasks import report_batch_quality
from tasks.normalize.observation import NormalizeResult
from tasks.series.plan import FetchRequest
from tasks.series.steps import fetch_page, normalize_fetched, plan_series_requests
from tasks.store.staging import BatchContext


async def retry_if_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect retry condition: only EIA errors that retrying can fix (5xx, timeouts, bad JSON)."""
    try:
        await state.aresult()
    except Exception as exc:
        return is_transient(exc)
    return False


def load_batch_reporting_quality(
    dsn: str,
    ctx: BatchContext,
    result: NormalizeResult,
    targets: LoadTargets,
    retention_years: int,
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE,
) -> BatchOutcome:
    """One request's rows as one batch through `load_batch`, then the batch's quality artifact."""
    outcome = load_batch(
        dsn, ctx, result, targets, retention_years=retention_years, max_quarantine_share=max_quarantine_share
    )
    report_batch_quality(outcome)
    return outcome


async def fetch_page_unless_stopped(
    client: EiaClient, request: FetchRequest, offset: int, length: int
) -> EiaPage | State[Any]:
    """`fetch_page`, ending Cancelled (naming the cause) when the run stopped before it was sent.

    A fetch another request's fatal fault kept from sending was not run: Cancelled says so in the UI,
    where a task cancelled from outside would show Crashed, which reads as an infrastructure failure.
    """
    try:
        return await fetch_page(client, request, offset, length)
    except EiaRunStopped as stopped:
        return Cancelled(message=f"not run: {stopped.cause}")


# -- Prefect tasks -----------------------------------------------------------------------------

plan_series_requests_task = task(name="plan-requests", cache_policy=NO_CACHE)(plan_series_requests)
fetch_page_task = task(
    name="fetch-eia-page",
    task_run_name="fetch {request.key} offset {offset}",
    cache_policy=NO_CACHE,
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
)(fetch_page_unless_stopped)
normalize_fetched_task = task(name="normalize", task_run_name="normalize {request.key}", cache_policy=NO_CACHE)(
    normalize_fetched
)
load_batch_task = task(name="load-batch", task_run_name="load {ctx.batch_id}", cache_policy=NO_CACHE)(
    load_batch_reporting_quality
)
