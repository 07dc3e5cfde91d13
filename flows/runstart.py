"""What every flow run does before its work: check the schema, open its run-log row, and clean up
what a killed earlier run could not.

One place, so the series and bulk flows (and the monitoring and cost flows, for the schema check)
cannot drift apart.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.runtime import flow_run

from tasks.ops.runlog import RunSummary, start_run
from tasks.settings import RunSettings
from tasks.store.database import connect, in_production
from tasks.store.migrations import pending
from tasks.store.staging import BatchContext, drop_abandoned_staging


class SchemaNotCurrent(RuntimeError):
    """Migrations are pending: the fix is `eia init`, never a half-migrated run."""


def ensure_schema_current(dsn: str) -> None:
    with connect(dsn) as conn:
        todo = pending(conn)
    if todo:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
        raise SchemaNotCurrent(f"the database schema is not current (pending: {names}); run `eia init`")


def begin_ingestion_run(
    settings: RunSettings, flow_name: str, kafka_block: str, log: logging.Logger | logging.LoggerAdapter[Any]
) -> RunSummary:
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
        start_run(conn, run_id, flow_name, settings.tenant_id)
        if abandoned := drop_abandoned_staging(conn):
            log.info("removed %d staged row(s) left by a killed earlier run (never merged)", abandoned)
    return RunSummary(run_id, flow_name, settings.tenant_id)
