"""The Prefect tasks of the bulk flow: `x_task = task(...)(x)` over the plain functions of `tasks/bulk/`.

Each is testable with `x_task.fn(...)` and no server. Only the two HTTP tasks retry, and only on
transient faults (5xx, timeouts, dropped connections); everything else fails at once with a
clear message. The load is one task per dataset, not one per batch: a dataset has hundreds of
batches, and a task run each would cost more than the batches' own bookkeeping. The Prefect-only
parts live here too: the retry condition, and the run's artifacts (built by `tasks.bulk.report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from prefect import State, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.tasks import Task, exponential_backoff

from tasks.bulk.archive import ArchiveInfo, verify_archive
from tasks.bulk.checkpoints import ArchiveVersion
from tasks.bulk.download import download_archive, file_sha256
from tasks.bulk.errors import BulkError
from tasks.bulk.load import ArchiveLoad, BulkLoadConfig, load_archive, read_dataset_state, record_unchanged_version
from tasks.bulk.manifest import fetch_manifest
from tasks.bulk.progress import LoadProgress
from tasks.bulk.report import RUN_TABLE_KEY, DatasetReport, artifact_key, dataset_markdown, table_rows
from tasks.core.redact import scrub
from tasks.load.tasks import report_batch_quality


async def retry_if_transient_bulk(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect retry condition: only faults a retry can fix."""
    try:
        await state.aresult()
    except BulkError as exc:
        return exc.transient
    except Exception:
        return False
    return False


def load_archive_reporting_quality(
    dsn: str,
    archive: ArchiveInfo,
    version: ArchiveVersion,
    config: BulkLoadConfig,
    outbox_topic: str | None,
    dlq_topic: str | None,
    progress: LoadProgress | None,
) -> ArchiveLoad:
    """`load_archive`, publishing each gated batch's quality artifact as the batch is done."""
    return load_archive(
        dsn,
        archive,
        version,
        config,
        outbox_topic=outbox_topic,
        dlq_topic=dlq_topic,
        progress=progress,
        on_batch=report_batch_quality,
    )


async def publish_bulk_report(reports: Sequence[DatasetReport], *, description: str) -> None:
    """One markdown artifact per dataset (its own history in the UI), and the run's table."""
    for report in reports:
        await acreate_markdown_artifact(
            key=artifact_key(report.dataset), markdown=scrub(dataset_markdown(report)), description=description
        )
    if reports:
        await acreate_table_artifact(key=RUN_TABLE_KEY, table=scrub(table_rows(reports)), description=description)


# -- Prefect tasks -----------------------------------------------------------------------------

# The two HTTP tasks retry transient faults with exponential backoff (2, 4, 8 s) and jitter, so parallel
# runs that hit the same outage do not retry in step.
_HTTP_RETRIES: Final = 3
_HTTP_RETRY_DELAYS: Final = exponential_backoff(backoff_factor=2)
fetch_bulk_manifest_task = task(
    name="fetch-bulk-manifest",
    cache_policy=NO_CACHE,
    retries=_HTTP_RETRIES,
    retry_delay_seconds=_HTTP_RETRY_DELAYS,
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient_bulk,
)(fetch_manifest)
read_bulk_state_task = task(name="read-bulk-state", task_run_name="state of {dataset}", cache_policy=NO_CACHE)(
    read_dataset_state
)
# The flow names the archive `<dataset>.zip`: the run is named for its dataset.
download_bulk_archive_task = task(
    name="download-bulk-archive",
    task_run_name="download {dest.stem}",
    cache_policy=NO_CACHE,
    retries=_HTTP_RETRIES,
    retry_delay_seconds=_HTTP_RETRY_DELAYS,
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient_bulk,
)(download_archive)
hash_bulk_archive_task = task(name="hash-bulk-archive", task_run_name="hash {path.name}", cache_policy=NO_CACHE)(
    file_sha256
)
verify_bulk_archive_task = task(name="verify-bulk-archive", task_run_name="verify {dataset}", cache_policy=NO_CACHE)(
    verify_archive
)
load_bulk_archive_task = task(name="load-bulk-archive", task_run_name="load {config.dataset}", cache_policy=NO_CACHE)(
    load_archive_reporting_quality
)
record_unchanged_version_task = task(
    name="record-unchanged-bulk-version", task_run_name="{dataset} unchanged", cache_policy=NO_CACHE
)(record_unchanged_version)
