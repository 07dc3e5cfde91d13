"""The Prefect tasks the flows call. Each is a thin wrapper over a plain function elsewhere in
`tasks/`, so its logic is testable with `task.fn(...)` and no Prefect server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task, exponential_backoff

from tasks.core.catalog import load_catalog
from tasks.core.errors import is_transient
from tasks.eia.client import EiaClient
from tasks.eia.paging import FetchOutcome
from tasks.eia.responses import EiaPage
from tasks.load.batch import DEFAULT_MAX_QUARANTINE_SHARE, BatchOutcome, LoadTargets, load_batch
from tasks.load.tasks import report_batch_quality
from tasks.normalize.api_rows import normalize_route_rows, normalize_seriesid_rows
from tasks.normalize.observation import SOURCE_API, NormalizeResult
from tasks.publish.outbox import DrainResult, drain_outbox
from tasks.publish.producer import KafkaSettings
from tasks.series.plan import FetchRequest, plan_requests
from tasks.store.database import connect
from tasks.store.staging import BatchContext
from tasks.store.watermarks import read_watermarks


async def retry_if_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect retry condition: only EIA errors that retrying can fix (5xx, timeouts, bad JSON)."""
    try:
        await state.aresult()
    except Exception as exc:
        return is_transient(exc)
    return False


@task(name="plan-requests", cache_policy=NO_CACHE)
def plan_series_requests(
    dsn: str,
    tenant_id: str,
    catalog_path: str | None,
    entry_ids: Sequence[str] | None,
    series_ids: Sequence[str] | None,
    start: str | None,
    end: str | None,
) -> list[FetchRequest]:
    catalog = load_catalog(catalog_path)
    if series_ids:  # explicit series ids: just those, unless entries were named too
        entries = [catalog.entry(e) for e in entry_ids or ()]
        ids = list(series_ids)
    else:
        entries = [catalog.entry(e) for e in entry_ids] if entry_ids else list(catalog.entries)
        ids = [] if entry_ids else list(catalog.series_ids)
    with connect(dsn) as conn:
        marks = read_watermarks(conn, tenant_id, entries, ids)
    return plan_requests(entries, ids, watermarks=marks, start=start, end=end)


@task(
    name="fetch-eia-page",
    task_run_name="fetch {request.key} offset {offset}",
    cache_policy=NO_CACHE,
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
)
async def fetch_page(client: EiaClient, request: FetchRequest, offset: int, length: int) -> EiaPage:
    return await client.fetch_page(request.path, list(request.params), offset=offset, length=length)


@task(name="normalize", task_run_name="normalize {request.key}", cache_policy=NO_CACHE)
def normalize_fetched(request: FetchRequest, outcome: FetchOutcome) -> NormalizeResult:
    if request.kind == "route" and request.entry is not None:
        result = normalize_route_rows(outcome.rows, request.entry, frequency=request.frequency)
    else:
        result = normalize_seriesid_rows(
            request.key,
            outcome.rows,
            frequency=outcome.frequency or request.frequency,
            description=outcome.description,
        )
    return result


@task(name="load-batch", task_run_name="load {ctx.batch_id}", cache_policy=NO_CACHE)
def load_batch_task(
    dsn: str,
    ctx: BatchContext,
    result: NormalizeResult,
    targets: LoadTargets,
    retention_years: int,
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE,
) -> BatchOutcome:
    outcome = load_batch(
        dsn, ctx, result, targets, retention_years=retention_years, max_quarantine_share=max_quarantine_share
    )
    report_batch_quality(outcome.batch_id, outcome.gate)
    return outcome


@task(name="publish-outbox", cache_policy=NO_CACHE)
def publish_outbox(dsn: str, kafka: KafkaSettings) -> DrainResult:
    return drain_outbox(dsn, kafka)


def api_targets(kafka: KafkaSettings | None, dataset: str | None) -> LoadTargets:
    return LoadTargets(
        outbox_topic=kafka.series_topic if kafka else None,
        dlq_topic=kafka.dlq_topic if kafka else None,
        source=SOURCE_API,
        dataset=dataset,
    )
