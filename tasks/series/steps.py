"""The steps of a series run as plain functions: plan, fetch a page, normalize, and where rows go.

Why it exists: the flow reads like the runbook (plan → fetch → normalize → gate and load → publish),
and each step is a plain function, wrapped as a Prefect task in `tasks.series.tasks` with its name
and retries: these, `tasks.load.batch.load_batch` (gate and load) and `drain_outbox` (publish).
Here they are plain, so tests call them without Prefect (`x_task.fn` is `x`).
"""

from __future__ import annotations

from collections.abc import Sequence

from tasks.core.catalog import load_catalog
from tasks.eia.client import EiaClient
from tasks.eia.paging import FetchOutcome
from tasks.eia.responses import EiaPage
from tasks.load.batch import LoadTargets
from tasks.normalize.api_rows import normalize_route_rows, normalize_seriesid_rows
from tasks.normalize.observation import SOURCE_API, NormalizeResult
from tasks.publish.producer import KafkaSettings
from tasks.series.plan import FetchRequest, plan_requests
from tasks.store.database import connect
from tasks.store.watermarks import read_watermarks


def plan_series_requests(
    dsn: str,
    tenant_id: str,
    catalog_path: str | None,
    entry_ids: Sequence[str] | None,
    series_ids: Sequence[str] | None,
    start: str | None,
    end: str | None,
) -> list[FetchRequest]:
    """The run's requests: the named catalog entries and series ids (default: the catalog's), from their watermarks."""
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


async def fetch_page(client: EiaClient, request: FetchRequest, offset: int, length: int) -> EiaPage:
    return await client.fetch_page(request.path, list(request.params), offset=offset, length=length)


def normalize_fetched(request: FetchRequest, outcome: FetchOutcome) -> NormalizeResult:
    if request.kind == "route" and request.entry is not None:
        return normalize_route_rows(outcome.rows, request.entry, frequency=request.frequency)
    return normalize_seriesid_rows(
        request.key,
        outcome.rows,
        frequency=outcome.frequency or request.frequency,
        description=outcome.description,
    )


def api_targets(kafka: KafkaSettings | None, dataset: str | None) -> LoadTargets:
    return LoadTargets(
        outbox_topic=kafka.series_topic if kafka else None,
        dlq_topic=kafka.dlq_topic if kafka else None,
        source=SOURCE_API,
        dataset=dataset,
    )
