"""The series use case: which requests a run makes, its steps, and what it reports.

What it does: `plan_requests` turns catalog entries and v1 series ids into `FetchRequest`s with
incremental windows (`plan`); `plan_series_requests`, `fetch_page`, `normalize_fetched` and
`api_targets` are the run's plain steps (`steps`); `EntryReport`, `markdown_summary` and `table_rows`
build the `eia-series-run` artifact (`report`). Its Prefect wrappers are `tasks.series.tasks`
(`plan_series_requests_task`, `fetch_page_task`, `normalize_fetched_task`, `load_batch_task`), the
one module of the package that imports Prefect.

What it never does: send HTTP itself (the EIA adapter does), or write rows (the load does).
"""

from tasks.series.plan import FetchRequest, plan_requests
from tasks.series.report import EntryReport, markdown_summary, merged_reasons, table_rows
from tasks.series.steps import api_targets, fetch_page, normalize_fetched, plan_series_requests

__all__ = [
    "EntryReport",
    "FetchRequest",
    "api_targets",
    "fetch_page",
    "markdown_summary",
    "merged_reasons",
    "normalize_fetched",
    "plan_requests",
    "plan_series_requests",
    "table_rows",
]
