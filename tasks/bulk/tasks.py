"""The Prefect tasks of the bulk flow: thin wrappers over the plain functions of `tasks/bulk/`.

Each is testable with `task.fn(...)` and no server. Only the two HTTP tasks retry, and only on
transient faults (5xx, timeouts, dropped connections); everything else fails at once with a
clear message. The load is one task per dataset, not one per batch: a dataset has hundreds of
batches, and a task run each would cost more than the batches' own bookkeeping.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import State, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.tasks import Task

from tasks.bulk.archive import ArchiveInfo, ArchiveLimits, verify_archive
from tasks.bulk.checkpoints import (
    ArchiveVersion,
    Checkpoint,
    LoadedVersion,
    VersionRecord,
    last_loaded_version,
    mark_loaded,
    read_checkpoint,
)
from tasks.bulk.download import Download, Validators, download_archive, file_sha256
from tasks.bulk.errors import BulkError
from tasks.bulk.load import ArchiveLoad, BulkLoadConfig, load_archive
from tasks.bulk.manifest import Manifest, fetch_manifest
from tasks.bulk.progress import LoadProgress
from tasks.store.database import connect, transaction
from tasks.store.runlog import Counts


async def retry_if_transient_bulk(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect retry condition: only faults a retry can fix."""
    try:
        await state.aresult()
    except BulkError as exc:
        return exc.transient
    except Exception:
        return False
    return False


@dataclass(frozen=True, slots=True)
class DatasetState:
    """What the database knows about a dataset before this run touches it."""

    loaded: LoadedVersion | None
    checkpoint: Checkpoint | None


@task(name="fetch-bulk-manifest", cache_policy=NO_CACHE, retries=3, retry_condition_fn=retry_if_transient_bulk)
def fetch_bulk_manifest(bulk_url: str, timeout_s: float) -> Manifest:
    return fetch_manifest(bulk_url, timeout_s=timeout_s)


@task(name="read-bulk-state", task_run_name="state of {dataset}", cache_policy=NO_CACHE)
def read_bulk_state(dsn: str, tenant_id: str, dataset: str) -> DatasetState:
    with connect(dsn) as conn:
        return DatasetState(last_loaded_version(conn, tenant_id, dataset), read_checkpoint(conn, tenant_id, dataset))


@task(
    name="download-bulk-archive",
    task_run_name="download {dataset}",
    cache_policy=NO_CACHE,
    retries=3,
    retry_condition_fn=retry_if_transient_bulk,
)
def download_bulk_archive(
    dataset: str,
    url: str,
    dest: Path,
    *,
    manifest: str,
    allowed_hosts: Collection[str],
    max_bytes: int,
    timeout_s: float,
    validators: Validators | None,
) -> Download:
    return download_archive(
        url,
        dest,
        manifest=manifest,
        allowed_hosts=allowed_hosts,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        validators=validators,
    )


@task(name="hash-bulk-archive", task_run_name="hash {path.name}", cache_policy=NO_CACHE)
def hash_bulk_archive(path: Path) -> str:
    return file_sha256(path)


@task(name="verify-bulk-archive", task_run_name="verify {dataset}", cache_policy=NO_CACHE)
def verify_bulk_archive(path: Path, dataset: str, limits: ArchiveLimits) -> ArchiveInfo:
    return verify_archive(path, dataset, limits)


@task(name="load-bulk-archive", task_run_name="load {config.dataset}", cache_policy=NO_CACHE)
def load_bulk_archive(
    dsn: str,
    archive: ArchiveInfo,
    version: ArchiveVersion,
    config: BulkLoadConfig,
    outbox_topic: str | None,
    dlq_topic: str | None,
    progress: LoadProgress | None,
) -> ArchiveLoad:
    return load_archive(
        dsn, archive, version, config, outbox_topic=outbox_topic, dlq_topic=dlq_topic, progress=progress
    )


@task(name="record-unchanged-bulk-version", task_run_name="{dataset} unchanged", cache_policy=NO_CACHE)
def record_unchanged_version(
    dsn: str, tenant_id: str, dataset: str, last_updated: str, previous: LoadedVersion, run_id: str
) -> None:
    """A new manifest stamp for the very archive already loaded (HTTP 304): recorded, nothing loaded."""
    with transaction(dsn) as conn:
        mark_loaded(
            conn,
            tenant_id,
            VersionRecord(
                dataset=dataset,
                version=ArchiveVersion(
                    last_updated, previous.archive_sha256 or "", previous.etag, previous.last_modified
                ),
                archive_bytes=None,
                member_bytes=None,
                lines=0,
                batches=0,
                counts=Counts(),
                run_id=run_id,
                started_at=None,
            ),
        )
