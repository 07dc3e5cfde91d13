"""How every ingestion run starts and ends, in one place so the series and bulk flows cannot drift.

Start: check the schema, say whether Kafka is off, open the run-log row, remove staged rows a killed
earlier run left. End: refresh the monthly aggregate when rows changed, close the run-log row, publish
the run's report, and end Completed or Failed with the message. The monitoring and cost flows use the
schema check.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_table_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from flows.settings import RunSettings
from tasks.core import scrub
from tasks.store import (
    BatchContext,
    RunSummary,
    connect,
    drop_abandoned_staging,
    finish_run,
    in_production,
    pending,
    refresh_monthly_aggregates,
    start_run,
)

R = TypeVar("R")
Log = logging.Logger | logging.LoggerAdapter[Any]


class SchemaNotCurrent(RuntimeError):
    """Migrations are pending: the fix is `eia init`, never a half-migrated run."""


def ensure_schema_current(dsn: str) -> None:
    with connect(dsn) as conn:
        todo = pending(conn)
    if todo:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
        raise SchemaNotCurrent(f"the database schema is not current (pending: {names}); run `eia init`")


def begin_ingestion_run(settings: RunSettings, flow_name: str, kafka_block: str, log: Log) -> RunSummary:
    """Checks the schema, says whether Kafka is off, records the run as started; returns its summary."""
    ensure_schema_current(settings.dsn)
    run_id = str(flow_run.get_id() or BatchContext.new("", "", "").batch_id)
    if settings.kafka is None and in_production():
        # The block exists (a missing one is an error in production): Kafka is off on purpose, but say so loudly.
        log.warning(
            "Kafka publishing is off: block %r has an empty bootstrap_servers (EIA_KAFKA_BOOTSTRAP); "
            "no observations are published",
            kafka_block,
        )
    elif settings.kafka is None:
        log.info("Kafka publishing is off: EIA_KAFKA_BOOTSTRAP / block %r is not set", kafka_block)
    with connect(settings.dsn, autocommit=True) as conn:
        start_run(conn, run_id, flow_name, settings.tenant_id, host=socket.gethostname(), pid=os.getpid())
        if abandoned := drop_abandoned_staging(conn):
            log.info("removed %d staged row(s) left by a killed earlier run (never merged)", abandoned)
    return RunSummary(run_id, flow_name, settings.tenant_id)


async def end_ingestion_run(
    settings: RunSettings,
    summary: RunSummary,
    *,
    failure: str | None,
    success: str,
    report: Callable[[str], Awaitable[None]],
    result: Callable[[str, str], R],
    log: Log,
    refresh: bool = True,
) -> State[R]:
    """Ends the run: Failed with `failure` when there is one, else Completed with `success`.

    `report(status)` publishes the run's artifacts; `result(status, message)` builds the state's data.
    `refresh=False`: the rows were merged by other runs (a bulk parent's children), which refreshed.
    """
    status, message = ("failed", failure) if failure is not None else ("completed", success)
    if refresh and (summary.counts.inserted or summary.counts.updated):
        with connect(settings.dsn, autocommit=True) as conn:
            refresh_monthly_aggregates(conn)
    with connect(settings.dsn, autocommit=True) as conn:
        finish_run(conn, summary, status=status, message=message)
    await report(status)
    data = result(status, message)
    if failure is not None:
        log.error("run failed: %s", message)
        return Failed(message=message, data=data)
    log.info("run completed: %s", message)
    return Completed(message=message, data=data)


async def publish_report(key: str, markdown: str, rows: list[dict[str, Any]], description: str) -> None:
    """A run's markdown artifact `key` and its table `key-table`, scrubbed once more on the way out."""
    await acreate_markdown_artifact(key=key, markdown=scrub(markdown), description=description)
    await acreate_table_artifact(key=f"{key}-table", table=scrub(rows), description=description)


class ProgressArtifact:
    """A Prefect progress artifact (0-100 %) under a stable key, updated at most every `every_s` seconds.

    Long runs show their progress in the UI, not only in the logs: bulk runs by compressed bytes read,
    series runs by entries done. Safe from worker threads; a Prefect API hiccup is logged, never raised
    (it must not fail a load).
    """

    def __init__(self, key: str, description: str, *, every_s: float = 5.0) -> None:
        self.key, self.description, self.every_s = key, description, every_s
        self._id: Any = None
        self._last = 0.0
        self._shown = -1.0
        self._lock = threading.Lock()

    def update(self, percent: float, *, force: bool = False) -> None:
        percent = max(0.0, min(100.0, percent))
        with self._lock:
            now = time.monotonic()
            if not force and (now - self._last < self.every_s or percent == self._shown):
                return
            self._last, self._shown = now, percent
            try:
                # `_sync=True`: the same call from the flow's event loop and from a loader's worker thread.
                if self._id is None:
                    self._id = create_progress_artifact(  # type: ignore[call-arg]
                        progress=percent, key=self.key, description=self.description, _sync=True
                    )
                else:
                    update_progress_artifact(artifact_id=self._id, progress=percent, _sync=True)  # type: ignore[call-arg]
            except Exception as exc:
                logging.getLogger(__name__).warning("progress artifact %s not updated: %s", self.key, exc)

    def done(self) -> None:
        with contextlib.suppress(Exception):
            self.update(100.0, force=True)
